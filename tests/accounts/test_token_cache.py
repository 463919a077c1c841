"""The token cache: a checked token is answered from Redis, and every write that could change the
answer — logout, revoking all tokens, deleting or suspending the user — takes effect at once, in
every API process (two authenticators on one Redis stand for two processes)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from solomo.accounts import TOKEN_CACHE_SPREAD, TOKEN_CACHE_TTL_S, Authenticator, Principal, TokenCache, hash_token
from solomo.core.errors import ApiError
from tests.realtime.wsclient import open_ws, recv_json
from tests.support import make_account, register


def _other_process(services) -> Authenticator:
    return Authenticator(services.db, TokenCache(services.redis))


async def _status(authenticator: Authenticator, token: str) -> str:
    try:
        await authenticator.principal_for_token(token)
    except ApiError as exc:
        return exc.code
    return "ok"


async def test_a_checked_token_is_cached_and_answers_without_mongodb(client, services):
    acct = await register(client)
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200
    key = TokenCache.PREFIX + hash_token(acct.token)
    assert await services.redis.exists(key)
    # at most the TTL, at least the spread's lower end (minus the test's own time)
    ttl_ms = TOKEN_CACHE_TTL_S * 1000
    assert ttl_ms * (1 - TOKEN_CACHE_SPREAD) - 5_000 < await services.redis.pttl(key) <= ttl_ms
    # the cached answer is the same principal MongoDB gives
    cached = await TokenCache(services.redis).get(hash_token(acct.token))
    assert cached == Principal(ObjectId(acct.id), acct.username, acct.username, "user")
    assert await services.redis.sismember(TokenCache.USER_PREFIX + acct.id, hash_token(acct.token))


async def test_logout_takes_effect_at_once_everywhere(client, services):
    acct = await register(client)
    other = _other_process(services)
    assert await _status(other, acct.token) == "ok"  # cached by the "other process"
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=acct.headers)).status_code == 204
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 401
    assert await _status(other, acct.token) == "unauthorized"
    assert not await services.redis.exists(TokenCache.PREFIX + hash_token(acct.token))


async def test_logout_of_one_token_keeps_the_others(client, services):
    acct = await register(client)
    login = await client.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    second = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await client.get("/v1/me", headers=second)).status_code == 200
    await client.post("/v1/auth/logout", headers=acct.headers)
    assert (await client.get("/v1/me", headers=second)).status_code == 200
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 401


async def test_suspension_and_deletion_take_effect_at_once(client, services):
    mod = await make_account(services, "moderator")
    user, gone = await register(client), await register(client)
    other = _other_process(services)
    for acct in (user, gone):
        assert await _status(other, acct.token) == "ok"
        assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200
    resp = await client.post(f"/v1/moderation/users/{user.id}", headers=mod.headers,
                             json={"action": "suspend", "reason": "spam"})
    assert resp.status_code == 200, resp.text
    me = await client.get("/v1/me", headers=user.headers)
    assert me.status_code == 401 and me.json()["error"]["code"] == "account_suspended"
    assert await _status(other, user.token) == "account_suspended"
    resp = await client.post(f"/v1/moderation/users/{user.id}", headers=mod.headers,
                             json={"action": "unsuspend", "reason": "appeal"})
    assert (await client.get("/v1/me", headers=user.headers)).status_code == 200

    await services.accounts.delete_user(ObjectId(gone.id))
    assert (await client.get("/v1/me", headers=gone.headers)).status_code == 401
    assert await _status(other, gone.token) == "unauthorized"


async def test_revoke_all_drops_every_cached_token(client, services):
    acct = await register(client)
    login = await client.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    tokens = [acct.token, login.json()["token"]]
    for token in tokens:
        assert await _status(services.authenticator, token) == "ok"
    await services.accounts.revoke_all(ObjectId(acct.id))
    for token in tokens:
        assert await _status(services.authenticator, token) == "unauthorized"


async def test_a_fill_that_raced_an_invalidation_is_not_stored(client, services):
    """A request read MongoDB before a suspension and tries to cache its (stale) answer after it."""
    acct = await register(client)
    cache = TokenCache(services.redis)
    hashed = hash_token(acct.token)
    generation = await cache.generation()  # read before the request's MongoDB reads
    stale = Principal(ObjectId(acct.id), acct.username, acct.username, "user")
    await cache.forget(ObjectId(acct.id))  # the suspension's invalidation
    await cache.put(hashed, stale, generation, datetime.now(UTC) + timedelta(days=1))
    assert await cache.get(hashed) is None
    # without an invalidation in between the same fill is stored
    await cache.put(hashed, stale, await cache.generation(), datetime.now(UTC) + timedelta(days=1))
    assert await cache.get(hashed) == stale


async def test_an_entry_never_outlives_its_token(client, services):
    acct = await register(client)
    cache = TokenCache(services.redis)
    hashed = hash_token(acct.token)
    who = Principal(ObjectId(acct.id), acct.username, acct.username, "user")
    await cache.put(hashed, who, await cache.generation(), datetime.now(UTC) + timedelta(milliseconds=300))
    assert 0 < await services.redis.pttl(TokenCache.PREFIX + hashed) <= 300
    await asyncio.sleep(0.4)
    assert await cache.get(hashed) is None
    await cache.put(hashed, who, await cache.generation(), datetime.now(UTC) - timedelta(seconds=1))
    assert await cache.get(hashed) is None


async def test_without_redis_tokens_are_checked_in_mongodb(client, services):
    acct = await register(client)
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)
    try:
        authenticator = Authenticator(services.db, TokenCache(dead))
        assert await _status(authenticator, acct.token) == "ok"
        await services.accounts.revoke_token(acct.token)
        assert await _status(authenticator, acct.token) == "unauthorized"
    finally:
        await dead.aclose()


async def test_a_new_session_is_cached_when_its_token_is_issued(client, services):
    """Registration and login cache the token they hand out: the session's first request is answered
    from Redis. Only the principal MongoDB had is stored, and only if nothing was invalidated since."""
    acct = await register(client)
    login = await client.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    assert login.status_code == 200, login.text
    who = Principal(ObjectId(acct.id), acct.username, acct.username, "user")
    for token in (acct.token, login.json()["token"]):
        assert await TokenCache(services.redis).get(hash_token(token)) == who  # no request was made with it

    # an invalidation between the login's read of the user and its fill: the fill is skipped
    cache = services.accounts.token_cache
    generation = await cache.generation()
    doc = await services.db.users.find_one({"_id": ObjectId(acct.id)})
    await cache.forget(ObjectId(acct.id))  # e.g. a suspension, after the read
    token = await services.accounts.issue_token(doc["_id"], user=doc, generation=generation)
    assert await cache.get(hash_token(token)) is None
    assert await _status(services.authenticator, token) == "ok"  # checked in MongoDB instead


async def test_an_account_keeps_its_newest_tokens_and_older_ones_stop_at_once(client, services, live_server,
                                                                              monkeypatch):
    """Every sign-in adds a 30-day token (and its cache entries): an account keeps its newest
    ``max_tokens_per_user``, and a sign-in past them revokes the oldest as a logout would — refused
    at once, also by another process that had them cached, and their sockets closed."""
    cap, extra = 4, 3
    monkeypatch.setattr(services.accounts, "max_tokens", cap)
    acct = await register(client)
    other = _other_process(services)
    tokens = [acct.token]
    for _ in range(cap - 1 + extra):
        login = await client.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
        assert login.status_code == 200, login.text
        tokens.append(login.json()["token"])
        if len(tokens) == 2:  # the oldest: cached by the "other process", a socket open with it
            assert await _status(other, tokens[0]) == "ok"
            ws_oldest = await open_ws(live_server, tokens[0])
            await ws_oldest.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws_oldest))["type"] == "pong"
    oldest, newest = tokens[:extra], tokens[extra:]
    for token in oldest:
        assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
        assert await _status(other, token) == "unauthorized"
    for token in newest:
        assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert await services.db.tokens.count_documents({"user_id": ObjectId(acct.id)}) == cap
    cached = await services.redis.smembers(TokenCache.USER_PREFIX + acct.id)
    assert {str(h) for h in cached} <= {hash_token(t) for t in newest}
    with pytest.raises(ConnectionClosed) as closed:
        await recv_json(ws_oldest, timeout=5)
    assert closed.value.rcvd.code == 4401
