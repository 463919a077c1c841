"""The client's files and its two small routes (QR code, the merchant's stores) over HTTP, and
static checks on the client's source: no markup built from strings, nothing from the internet."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from solomo.api.web import STATIC_DIR
from tests.support import make_account, random_point, register


async def test_index_and_static_files(client):
    resp = await client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in resp.text
    for path in ("/static/js/app.js", "/static/css/app.css", "/static/js/views/posts.js", "/static/icon.svg"):
        got = await client.get(path)
        assert got.status_code == 200, path
    js = await client.get("/static/js/app.js")
    assert "javascript" in js.headers["content-type"]
    missing = await client.get("/static/nope.js")
    assert missing.status_code == 404
    traversal = await client.get("/static/../api/web.py")
    assert traversal.status_code == 404


def _client_sources() -> list[tuple[str, str]]:
    files = sorted(p for p in STATIC_DIR.rglob("*") if p.suffix in {".js", ".html", ".css"})
    assert len(files) >= 10
    return [(str(p.relative_to(STATIC_DIR)), p.read_text(encoding="utf-8")) for p in files]


def test_client_never_builds_markup_from_strings():
    for name, text in _client_sources():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{name} uses {sink}"


def test_client_fetches_nothing_from_the_internet():
    url = re.compile(r"""(?:src|href|url\(|import|from|fetch\()\s*=?\s*["']?\s*(?:https?:)?//""")
    for name, text in _client_sources():
        text = text.replace("http://www.w3.org/2000/svg", "")
        assert not url.search(text), f"{name} refers to another host"


async def test_qr_svg_encodes_the_text(client):
    resp = await client.get("/web/qr.svg", params={"text": "SOLO-1234-ABCD"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("image/svg+xml")
    body = resp.text
    assert body.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in body
    other = await client.get("/web/qr.svg", params={"text": "SOLO-9999-ZZZZ"})
    assert other.text != body  # the drawing depends on the text
    import segno

    expected = segno.make_qr("SOLO-1234-ABCD", error="m")
    assert f'width="{(expected.symbol_size(scale=6, border=4))[0]}"' in body


@pytest.mark.parametrize("params", [{}, {"text": ""}, {"text": "x" * 257}, {"text": "a\u0001b"},
                                    {"text": "ok", "scale": "0"}, {"text": "ok", "scale": "abc"},
                                    {"text": "ok", "evil": "1"}])
async def test_qr_svg_rejects_bad_input(client, params):
    resp = await client.get("/web/qr.svg", params=params)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"


async def _insert_store(services, owner_id: str, name: str) -> ObjectId:
    lat, lng = random_point()
    doc = {"_id": ObjectId(), "name": name, "category": "cafe", "address": "1 Test Rd",
           "owner_id": ObjectId(owner_id), "location": {"type": "Point", "coordinates": [lng, lat]},
           "checkin_radius_m": 200, "checkins_count": 0, "unique_visitors": 0, "followers_count": 0,
           "mayor_id": None, "created_at": datetime.now(UTC)}
    await services.db.stores.insert_one(doc)
    return doc["_id"]


async def test_my_stores_lists_only_mine_in_pages(client, services):
    merchant = await register(client, role="merchant")
    other = await register(client, role="merchant")
    mine = [await _insert_store(services, merchant.id, f"Mine {i}") for i in range(3)]
    await _insert_store(services, other.id, "Not mine")
    first = await client.get("/v1/me/stores", params={"limit": 2}, headers=merchant.headers)
    assert first.status_code == 200
    page1 = first.json()
    assert [s["id"] for s in page1["items"]] == [str(i) for i in mine[:2]]
    assert page1["items"][0]["name"] == "Mine 0" and page1["items"][0]["category"] == "cafe"
    assert page1["next_cursor"]
    second = await client.get("/v1/me/stores", params={"limit": 2, "cursor": page1["next_cursor"]},
                              headers=merchant.headers)
    page2 = second.json()
    assert [s["id"] for s in page2["items"]] == [str(mine[2])] and page2["next_cursor"] is None
    bad = await client.get("/v1/me/stores", params={"cursor": page1["next_cursor"] + "x"}, headers=merchant.headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_my_stores_is_for_merchants(client, services):
    user = await register(client)
    resp = await client.get("/v1/me/stores", headers=user.headers)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    moderator = await make_account(services, "moderator")
    assert (await client.get("/v1/me/stores", headers=moderator.headers)).status_code == 403
    assert (await client.get("/v1/me/stores")).status_code == 401
    merchant = await register(client, role="merchant")
    resp = await client.get("/v1/me/stores", params={"limit": 0}, headers=merchant.headers)
    assert resp.status_code == 422


async def test_openapi_documents_my_stores(client):
    doc = (await client.get("/openapi.json")).json()
    assert "get" in doc["paths"]["/v1/me/stores"]
