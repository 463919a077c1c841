"""OWASP API6:2023 (sensitive business flows) and API9:2023 (inventory); why API7 and API10 do not apply.

- **API6 Unrestricted Access to Sensitive Business Flows** — the flows worth automating against
  are claiming vouchers and gaming check-ins/reports. Checked: concurrent claims by one account give
  one voucher; a limited offer is never oversold under concurrent claimers; one report per user and
  post; throwaway accounts (fresh, or never active) queue a post but cannot hide it; the check-in
  cooldown holds.
- **API7 Server Side Request Forgery** — does not apply: no route takes a URL or fetches anything
  on a client's behalf (no avatars by URL, no webhooks, no link previews); geodesy is local math.
- **API9 Improper Inventory Management** — checked: every route the app serves is either in the
  OpenAPI document or one of the few known non-API routes (health, metrics, the web app), so there
  is no undocumented ``/v1`` surface and no debug route; one API version is served.
- **API10 Unsafe Consumption of APIs** — does not apply: the service consumes no third-party APIs;
  its only peers are its own MongoDB and Redis (their outages are drilled in ``tests/faults``).
- API1-5 and API8 have their own modules in this package.
"""

from __future__ import annotations

import asyncio

from bson import ObjectId
from starlette.routing import Route, WebSocketRoute

from tests.offers.helpers import in_minutes
from tests.security.conftest import World, account, error_code, openapi

NON_API_ROUTES = {"/healthz", "/readyz", "/openapi.json", "/metrics", "/v1/ws"}


async def test_concurrent_claims_by_one_account_give_one_voucher(api, world: World, services, leak_scanner):
    claimer = await account(services, leak_scanner)
    answers = await asyncio.gather(*[api.post(f"/v1/offers/{world.offer['id']}/claim", headers=claimer.headers)
                                     for _ in range(8)])
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    assert await services.db.vouchers.count_documents({"user_id": ObjectId(claimer.id)}) == 1


async def test_limited_offer_is_never_oversold(api, world: World, services, leak_scanner):
    resp = await api.post(f"/v1/stores/{world.store['id']}/offers", headers=world.merchant.headers,
                          json={"title": "Only three", "radius_m": 500, "expires_at": in_minutes(30), "stock": 3})
    offer = resp.json()
    claimers = [await account(services, leak_scanner) for _ in range(8)]
    answers = await asyncio.gather(*[api.post(f"/v1/offers/{offer['id']}/claim", headers=c.headers)
                                     for c in claimers])
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 3 + [409] * 5, codes
    assert all(error_code(r) == "sold_out" for r in answers if r.status_code == 409)
    assert await services.db.vouchers.count_documents({"offer_id": ObjectId(offer["id"])}) == 3


async def test_one_report_per_user_and_post(api, world: World, services):
    url = f"/v1/posts/{world.bob_post['id']}/reports"
    first = await api.post(url, json={"reason": "spam"}, headers=world.merchant.headers)
    answers = await asyncio.gather(*[api.post(url, json={"reason": "abuse"}, headers=world.merchant.headers)
                                     for _ in range(4)])
    assert first.status_code == 201 and [r.status_code for r in answers] == [409] * 4
    # the record, not only the answers: one report document for this reporter and post
    stored = await services.db.reports.count_documents({"post_id": ObjectId(world.bob_post["id"]),
                                                        "reporter_id": ObjectId(world.merchant.id)})
    assert stored == 1



async def test_throwaway_accounts_cannot_hide_a_post(api, world: World, services, leak_scanner):
    from tests.moderation.helpers import establish, make_post

    post = await make_post(services, world.bob)
    url = f"/v1/posts/{post['_id']}/reports"
    threshold = services.settings.report_threshold
    for _ in range(threshold):
        fresh = await account(services, leak_scanner)
        assert (await api.post(url, json={"reason": "abuse"}, headers=fresh.headers)).status_code == 201
    doc = await services.db.posts.find_one({"_id": post["_id"]})
    assert doc["status"] == "published" and "queued_ms" in doc  # queued for a moderator, still visible
    for _ in range(threshold):
        established = await establish(services, await account(services, leak_scanner))
        assert (await api.post(url, json={"reason": "abuse"}, headers=established.headers)).status_code == 201
    assert (await services.db.posts.find_one({"_id": post["_id"]}))["status"] == "hidden"

async def test_checkin_cooldown_cannot_be_raced(api, world: World, services, leak_scanner):
    visitor = await account(services, leak_scanner)
    body = {"store_id": world.rival_store["id"], "lat": world.rival_store["lat"], "lng": world.rival_store["lng"]}
    answers = await asyncio.gather(*[api.post("/v1/checkins", json=body, headers=visitor.headers) for _ in range(5)])
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [429] * 4, codes
    assert await services.db.checkins.count_documents({"user_id": ObjectId(visitor.id)}) == 1


async def test_every_served_route_is_documented(api, app):
    doc = await openapi(api)
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    undocumented = []
    for route in app.router.routes:
        if isinstance(route, WebSocketRoute):
            assert route.path in NON_API_ROUTES, route.path
            continue
        if not isinstance(route, Route):
            assert not route.path.startswith("/v1"), route.path  # mounts (static files) stay off /v1
            continue
        if route.path in NON_API_ROUTES or not route.path.startswith("/v1"):
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            if (route.path, method) not in documented:
                undocumented.append((method, route.path))
    assert undocumented == [], undocumented
    assert all(p.startswith("/v1/") or p in NON_API_ROUTES for p in doc["paths"]), sorted(doc["paths"])
