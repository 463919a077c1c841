"""Rate limits in Redis (limits' moving window): per user and action, Retry-After, expiry."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid

import pytest
from bson import ObjectId

from solomo.core.errors import RateLimited
from solomo.core.keys import hash_tag
from solomo.core.ratelimit import count, enforce, ensure_room, limits_for, windows
from tests.moderation.helpers import make_post
from tests.support import register


async def test_enforce_counts_per_user_and_action(services):
    alice, bob = ObjectId(), ObjectId()
    action = f"t{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        await enforce(services, action, alice, limit="3/minute")
    with pytest.raises(RateLimited) as exc:
        await enforce(services, action, alice, limit="3/minute")
    assert exc.value.status == 429 and exc.value.code == "rate_limited"
    assert 1 <= exc.value.retry_after <= 60 and exc.value.headers["Retry-After"] == str(exc.value.retry_after)
    await enforce(services, action, bob, limit="3/minute")  # other users are not affected
    await enforce(services, action + "x", alice, limit="3/minute")  # nor other actions
    keys = [k async for k in services.redis.scan_iter(match=f"rl*{action}*{alice}*")]
    assert keys, "the counters live in Redis"


async def test_window_moves(services):
    user, action = ObjectId(), f"t{uuid.uuid4().hex[:6]}"
    await enforce(services, action, user, limit="2/second")
    await enforce(services, action, user, limit="2/second")
    with pytest.raises(RateLimited) as exc:
        await enforce(services, action, user, limit="2/second")
    assert exc.value.retry_after == 1
    await asyncio.sleep(1.1)
    await enforce(services, action, user, limit="2/second")


async def test_all_limits_of_an_action_apply(services):
    user, action = ObjectId(), f"t{uuid.uuid4().hex[:6]}"
    await enforce(services, action, user, limit="5/second;2/hour")
    await enforce(services, action, user, limit="5/second;2/hour")
    with pytest.raises(RateLimited) as exc:
        await enforce(services, action, user, limit="5/second;2/hour")
    assert exc.value.retry_after > 3000  # the hourly limit is the one that bites


async def test_a_refused_request_counts_in_no_window(services):
    user, action = ObjectId(), f"t{uuid.uuid4().hex[:6]}"
    spec = "5/minute;2/second"  # the window that refuses is checked after one that has room
    minute, second = [key for _, key in windows(services, action, user, spec)]
    for _ in range(2):
        await enforce(services, action, user, limit=spec)
    for _ in range(3):
        with pytest.raises(RateLimited) as exc:
            await enforce(services, action, user, limit=spec)
        assert exc.value.retry_after == 1  # the per-second window's
    assert await services.redis.llen(minute) == 2 and await services.redis.llen(second) == 2
    await asyncio.sleep(1.05)
    await enforce(services, action, user, limit=spec)  # the minute still had room for three more
    assert await services.redis.llen(minute) == 3


async def test_room_is_checked_without_counting_and_counted_without_refusing(services):
    who, action = f"ip-{uuid.uuid4().hex[:6]}", f"t{uuid.uuid4().hex[:6]}"
    (_, key), = windows(services, action, who, "2/minute")
    for _ in range(3):
        await ensure_room(services, action, who, limit="2/minute")
    assert await services.redis.llen(key) == 0
    for _ in range(4):
        await count(services, action, who, limit="2/minute")  # never raises; a full window stays full
    assert await services.redis.llen(key) == 2
    with pytest.raises(RateLimited) as exc:
        await ensure_room(services, action, who, limit="2/minute")
    assert 55 <= exc.value.retry_after <= 60
    assert 55 <= await services.redis.ttl(key) <= 60


async def test_an_actions_windows_share_one_hash_tag(services):
    found = windows(services, "checkin", ObjectId(), "30/minute;300/hour;1000/day")
    assert len({hash_tag(key) for _, key in found}) == 1 and len({key for _, key in found}) == 3


async def test_an_empty_spec_limits_nothing(services, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "checkin", "")
    user = ObjectId()
    for _ in range(50):
        await enforce(services, "checkin", user)
    assert windows(services, "checkin", user) == []


def test_configured_defaults_are_humane(settings):
    for action in ("post", "comment", "like", "report", "checkin", "claim", "offer", "points_charge", "store_edit",
                   "profile_edit"):
        items = limits_for(type("S", (), {"settings": settings})(), action)
        assert items and min(i.amount for i in items) >= 20, action  # a burst of 20 always fits
    with pytest.raises(LookupError):
        limits_for(type("S", (), {"settings": settings})(), "nonexistent")


def test_every_idempotent_route_is_rate_limited(app):
    """An Idempotency-Key's answer is kept a day, refusals included: a route that keeps one per
    request without a per-caller limit lets one account grow that collection without bound."""
    from solomo.http import endpoint

    specs = [route.endpoint.spec for route in app.routes if hasattr(getattr(route, "endpoint", None), "spec")]
    keyed = {spec.path: spec.rate for spec in specs if spec.idempotent}
    assert "/v1/stores/{store_id}/offers" in keyed and "/v1/stores/{store_id}/points/charge" in keyed
    assert all(keyed.values()), keyed
    with pytest.raises(AssertionError, match="rate"):
        endpoint("POST /v1/nowhere", summary="x", idempotent=True)


async def test_report_route_is_rate_limited(client, services, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "report", "2/minute")
    author, reader = await register(client), await register(client)
    posts = [await make_post(services, author) for _ in range(3)]
    for p in posts[:2]:
        resp = await client.post(f"/v1/posts/{p['_id']}/reports", headers=reader.headers, json={"reason": "spam"})
        assert resp.status_code == 201
    resp = await client.post(f"/v1/posts/{posts[2]['_id']}/reports", headers=reader.headers, json={"reason": "spam"})
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert await services.db.reports.count_documents({"post_id": posts[2]["_id"]}) == 0
    other = await register(client)
    resp = await client.post(f"/v1/posts/{posts[2]['_id']}/reports", headers=other.headers, json={"reason": "spam"})
    assert resp.status_code == 201


async def test_openapi_documents_429(client):
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/posts/{post_id}/reports"]["post"]
    assert "429" in op["responses"]


# --- accounts and follows (no principal yet: per username and per client address) -------------

def random_ip() -> str:
    """A client address no other test uses, so its per-address windows start empty."""
    return "10." + ".".join(str(random.randrange(1, 255)) for _ in range(3))


@contextlib.asynccontextmanager
async def client_at(app, ip: str):
    import httpx2

    transport = httpx2.ASGITransport(app=app, client=(ip, 4242))
    async with httpx2.AsyncClient(transport=transport, base_url="http://solomo.test") as c:
        yield c


async def login(c, username: str, password: str):
    return await c.post("/v1/auth/login", json={"username": username, "password": password})


async def test_failed_logins_are_limited_per_username_and_address(app, client, services, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "login", "3/minute")
    victim, other = await register(client), await register(client)
    ip = random_ip()
    async with client_at(app, ip) as c:
        for _ in range(5):  # successful logins do not count
            assert (await login(c, victim.username, "password123")).status_code == 200
        for _ in range(3):
            resp = await login(c, victim.username.upper(), "wrong-password")
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_credentials"
        resp = await login(c, victim.username, "password123")  # this address is done guessing
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert (await login(c, other.username, "password123")).status_code == 200  # other accounts are fine
    async with client_at(app, random_ip()) as c:  # the owner, elsewhere, is not locked out
        assert (await login(c, victim.username, "password123")).status_code == 200
    tokens = await services.db.tokens.count_documents({"user_id": ObjectId(victim.id)})
    assert tokens == 1 + 5 + 1, "a refused login issued no token"


async def test_logins_are_limited_per_client_address(app, client, services, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "login_ip", "3/minute")
    acct = await register(client)
    ip = random_ip()
    async with client_at(app, ip) as c:
        statuses = [(await login(c, name, "password123")).status_code
                    for name in (acct.username, "nobody_" + uuid.uuid4().hex[:8], acct.username)]
        assert statuses == [200, 401, 200]
        resp = await login(c, acct.username, "password123")
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
        assert "Retry-After" in resp.headers
    async with client_at(app, random_ip()) as c:
        assert (await login(c, acct.username, "password123")).status_code == 200


async def test_registrations_are_limited_per_client_address(app, services, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "register", "2/minute")
    ip = random_ip()
    names = [f"rl_{uuid.uuid4().hex[:12]}" for _ in range(4)]
    async with client_at(app, ip) as c:
        for name in names[:2]:
            resp = await c.post("/v1/auth/register", json={"username": name, "password": "password123"})
            assert resp.status_code == 201, resp.text
        resp = await c.post("/v1/auth/register", json={"username": names[2], "password": "password123"})
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert await services.db.users.count_documents({"username": names[2]}) == 0
    async with client_at(app, random_ip()) as c:
        resp = await c.post("/v1/auth/register", json={"username": names[3], "password": "password123"})
        assert resp.status_code == 201


async def test_follow_and_unfollow_are_limited_per_user(client, services, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "follow", "3/minute")
    fan, other, target = await register(client), await register(client), await register(client)
    url = f"/v1/users/{target.id}/follow"
    assert (await client.post(url, headers=fan.headers)).status_code == 204
    assert (await client.delete(url, headers=fan.headers)).status_code == 204
    assert (await client.post(url, headers=fan.headers)).status_code == 204
    resp = await client.delete(url, headers=fan.headers)
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited"
    assert await services.db.follows.count_documents({"follower_id": ObjectId(fan.id)}) == 1  # not unfollowed
    assert (await client.post(url, headers=other.headers)).status_code == 204


def test_missing_actions_keep_their_defaults(settings):
    trimmed = settings.model_copy(update={"rate_limits": {"post": "1/minute"}})
    holder = type("S", (), {"settings": trimmed})()
    assert limits_for(holder, "post")[0].amount == 1
    for action in ("login", "login_failed_ip", "login_ip", "register", "follow"):
        assert limits_for(holder, action), action


async def test_openapi_documents_account_limits(client):
    doc = (await client.get("/openapi.json")).json()
    for path, method in (("/v1/auth/login", "post"), ("/v1/auth/register", "post"),
                         ("/v1/users/{user_id}/follow", "post"), ("/v1/stores/{store_id}/follow", "delete")):
        assert "429" in doc["paths"][path][method]["responses"], path
