"""Rate limits in Redis (limits' moving window): per user and action, Retry-After, expiry."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from bson import ObjectId

from solomo.errors import RateLimited
from solomo.ratelimit import enforce, limits_for
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


def test_configured_defaults_are_humane(settings):
    for action in ("post", "comment", "like", "report", "checkin", "claim"):
        items = limits_for(type("S", (), {"settings": settings})(), action)
        assert items and min(i.amount for i in items) >= 20, action  # a burst of 20 always fits
    with pytest.raises(LookupError):
        limits_for(type("S", (), {"settings": settings})(), "nonexistent")


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
