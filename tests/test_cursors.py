"""Every list route refuses a bad cursor with 400 ``invalid_cursor`` — garbage, oversized, tampered,
or validly signed but forged (a huge number, a non-ObjectId id, the wrong shape) — and never answers
500. The routes are discovered from the OpenAPI document, so a new list is covered automatically.
Also the keyset helpers of :mod:`solomo.core.pagination` on their own."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from solomo.core.errors import BadRequest
from solomo.core.pagination import (
    MAX_CURSOR_CHARS,
    MAX_SCORE,
    CursorCodec,
    Position,
    cut_page,
    datetime_ms,
    keyset_page,
    ms_datetime,
)
from tests.support import Account, make_account, random_point, register

# --- every list route over HTTP ----------------------------------------------------------------


@dataclass
class World:
    """Real objects, so the path parameters resolve and only the cursor can be refused."""

    user: Account
    merchant: Account
    moderator: Account
    path: dict[str, str]
    query: dict[str, Any]

    def account_for(self, op: dict[str, Any]) -> Account:
        roles = op.get("x-roles") or []
        if "moderator" in roles:
            return self.moderator
        if "merchant" in roles:
            return self.merchant
        return self.user


@pytest.fixture(scope="module")
async def world(client, services) -> World:
    user = await register(client)
    merchant = await register(client, role="merchant")
    moderator = await make_account(services, "moderator")
    lat, lng = random_point()
    store = await client.post("/v1/stores", json={"name": "Cursor Cafe", "lat": lat, "lng": lng},
                              headers=merchant.headers)
    assert store.status_code == 201, store.text
    topic = f"cursors{uuid.uuid4().hex[:8]}"
    post = await client.post("/v1/posts", json={"text": f"paging #{topic}#", "lat": lat, "lng": lng},
                             headers=user.headers)
    assert post.status_code == 201, post.text
    return World(user, merchant, moderator,
                 path={"user_id": user.id, "store_id": store.json()["id"], "post_id": post.json()["id"],
                       "topic": topic},
                 query={"lat": lat, "lng": lng, "q": "paging"})


async def list_routes(client) -> list[tuple[str, dict[str, Any]]]:
    doc = (await client.get("/openapi.json")).json()
    return [(path, op) for path, ops in sorted(doc["paths"].items()) for method, op in ops.items()
            if method == "get" and any(p["name"] == "cursor" and p["in"] == "query" for p in op.get("parameters", []))]


def route_request(world: World, path: str, op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The route's URL with real ids and its required query parameters (an unknown one fails loudly:
    give it a real value in :func:`world`)."""
    url = path
    query: dict[str, Any] = {}
    for param in op.get("parameters", []):
        name = param["name"]
        if param["in"] == "path":
            assert name in world.path, f"{path}: no real value for path parameter {name}"
            url = url.replace("{" + name + "}", world.path[name])
        elif param["in"] == "query" and param.get("required"):
            assert name in world.query, f"{path}: no value for required query parameter {name}"
            query[name] = world.query[name]
    return url, query


def signed(services: Any, value: Any) -> str:
    """A cursor signed with the app's own secret (stdlib json: any integer, NaN, Infinity)."""
    return services.cursors.sign(json.dumps(value).encode())


def tampered(token: str) -> str:
    return token[:-2] + ("BB" if token.endswith("AA") else "AA")


def bad_cursors(services: Any) -> dict[str, str]:
    oid = str(ObjectId())
    garbage = {
        "punctuation": "!!!",
        "empty": "",
        "random base64": base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("="),
        "oversized": "a" * (MAX_CURSOR_CHARS + 1),
        "oversized but signed": signed(services, [1.0, oid, "x" * 600]),
        "tampered": tampered(services.cursors.encode([1.0, oid])),
    }
    forged = {
        "1e300": [1e300, oid],
        "2**70": [2**70, oid],
        "-2**70": [-(2**70), oid],
        "2**53 + 1": [MAX_SCORE + 1, oid],
        "NaN": [float("nan"), oid],
        "Infinity": [float("inf"), oid],
        "bool score": [True, oid],
        "string score": ["1", oid],
        "null score": [None, oid],
        "non-ObjectId id": [1.0, "not-an-object-id"],
        "short id": [1.0, oid[:-1]],
        "numeric id": [1.0, 12345],
        "null id": [1.0, None],
        "one element": [1.0],
        "three elements": [1.0, oid, 3],
        "object": {"score": 1.0, "id": oid},
        "string": oid,
        "null": None,
    }
    return {**garbage, **{f"forged {name}": signed(services, value) for name, value in forged.items()}}


async def test_every_list_route_refuses_every_bad_cursor_with_400(client, services, world):
    routes = await list_routes(client)
    assert len(routes) >= 12, [p for p, _ in routes]
    cursors = bad_cursors(services)
    failures = []
    for path, op in routes:
        url, query = route_request(world, path, op)
        headers = world.account_for(op).headers
        first = await client.get(url, params=query, headers=headers)
        assert first.status_code == 200, (path, first.text)  # the route itself answers: only the cursor is bad
        for name, cursor in cursors.items():
            resp = await client.get(url, params={**query, "cursor": cursor}, headers=headers)
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
            if resp.status_code != 400 or body.get("error", {}).get("code") != "invalid_cursor":
                failures.append(f"{path} [{name}]: {resp.status_code} {resp.text[:200]}")
    assert not failures, "\n".join(failures)


async def test_extreme_but_well_formed_positions_never_fail(client, services, world):
    """Signed positions at the edges of the accepted range (far past or future times, huge distances)
    give an empty page or a 400 invalid_cursor (a time beyond the datetime range), never a 5xx."""
    oid = str(ObjectId())
    edges = [[MAX_SCORE, oid], [-MAX_SCORE, oid], [1e15, oid], [-1e15, oid], [0, oid], [0.5, "f" * 24]]
    failures = []
    for path, op in await list_routes(client):
        url, query = route_request(world, path, op)
        headers = world.account_for(op).headers
        for value in edges:
            resp = await client.get(url, params={**query, "cursor": signed(services, value)}, headers=headers)
            ok = resp.status_code == 200 or (resp.status_code == 400
                                              and resp.json()["error"]["code"] == "invalid_cursor")
            if not ok:
                failures.append(f"{path} {value}: {resp.status_code} {resp.text[:200]}")
    assert not failures, "\n".join(failures)


# --- the codec and the helpers on their own ---------------------------------------------------


def test_decode_position_validates_everything():
    codec, oid = CursorCodec("unit"), ObjectId()
    assert codec.decode_position(None) is None
    token = codec.encode_position(Position(1700000000000.0, oid))
    assert codec.decode_position(token) == Position(1700000000000.0, oid)
    assert codec.decode_position(codec.encode([MAX_SCORE, str(oid)])) == Position(float(MAX_SCORE), oid)
    for value in ([MAX_SCORE + 1, str(oid)], [True, str(oid)], [1, str(oid).upper()[:-1]], [1, "g" * 24]):
        with pytest.raises(BadRequest) as err:
            codec.decode_position(codec.encode(value))
        assert (err.value.status, err.value.code) == (400, "invalid_cursor")


def test_page_dict_carries_an_encoded_cursor():
    codec, oid = CursorCodec("unit"), ObjectId()
    assert codec.page([1, 2], None) == {"items": [1, 2], "next_cursor": None}
    page = codec.page([1], Position(5.0, oid))
    assert list(page) == ["items", "next_cursor"]
    assert codec.decode_position(page["next_cursor"]) == Position(5.0, oid)


def _rows(pairs: list[tuple[float, int]]) -> list[dict[str, Any]]:
    return [{"score": score, "_id": ObjectId(f"{n:024x}")} for score, n in pairs]


def _position(row: dict[str, Any]) -> Position:
    return Position(row["score"], row["_id"])


def test_cut_page_keeps_limit_and_names_the_last_row():
    rows = _rows([(1, 1), (2, 2), (3, 3)])
    assert cut_page(rows, 2, _position) == (rows[:2], Position(2, rows[1]["_id"]))
    assert cut_page(rows, 3, _position) == (rows, None)  # nothing beyond: the last page
    assert cut_page(rows[:2], 3, _position) == (rows[:2], None)
    assert cut_page([], 3, _position) == ([], None)


def test_ms_datetime_round_trips_and_refuses_what_no_datetime_holds():
    at = datetime(2026, 12, 2, 9, 30, 15, 123000, tzinfo=UTC)
    assert ms_datetime(datetime_ms(at)) == at
    for ms in (float(MAX_SCORE), -float(MAX_SCORE), 1e15):
        with pytest.raises(BadRequest) as err:
            ms_datetime(ms)
        assert err.value.code == "invalid_cursor"


@pytest.mark.parametrize("descending", [False, True])
async def test_keyset_page_walks_every_row_once_in_order_with_ties_broken_by_id(services, descending):
    coll = services.db[f"test_keyset_{uuid.uuid4().hex[:8]}"]
    # scores with ties: three rows at 10, two at 20; ids deliberately not in score order
    rows = _rows([(10, 5), (20, 1), (10, 2), (30, 9), (20, 7), (10, 8), (5, 3)])
    for row in rows:
        row["group"] = "g"
    await coll.insert_many([dict(r) for r in rows] + [{"score": 1, "group": "other"}])
    expected = sorted(rows, key=lambda r: (r["score"], r["_id"]), reverse=descending)
    try:
        seen: list[ObjectId] = []
        position = None
        for _ in range(10):
            docs, position = await keyset_page(coll, {"group": "g"}, score_field="score", descending=descending,
                                               position=position, limit=2)
            assert len(docs) <= 2
            seen += [d["_id"] for d in docs]
            if position is None:
                break
            assert position == Position(docs[-1]["score"], docs[-1]["_id"])
        assert seen == [r["_id"] for r in expected]
        # ordered by _id alone (score_field None): the position's score is 0
        docs, position = await keyset_page(coll, {"group": "g"}, score_field=None, descending=descending,
                                           position=None, limit=3)
        by_id = sorted((r["_id"] for r in rows), reverse=descending)
        assert [d["_id"] for d in docs] == by_id[:3] and position == Position(0.0, by_id[2])
        docs, _ = await keyset_page(coll, {"group": "g"}, score_field=None, descending=descending,
                                    position=position, limit=10)
        assert [d["_id"] for d in docs] == by_id[3:]
    finally:
        await coll.drop()
