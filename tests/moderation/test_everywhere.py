"""End to end against real servers: a real uvicorn process (sockets), the real Celery worker,
MongoDB and Redis. A removed post leaves the follower's home feed, the local feed and the topic
feed, and the connected follower gets ``post.deleted``; restore puts it back. A suspended
user's open socket closes with 4403."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.moderation.helpers import has_route
from tests.support import make_account, random_point, register, wait_until

FEED_ROUTES = [("POST", "/v1/posts"), ("POST", "/v1/users/x/follow"), ("GET", "/v1/feed/home"),
               ("GET", "/v1/feed/local"), ("GET", "/v1/topics/x/posts")]


@pytest.fixture
def feed_routes(app):
    missing = [p for m, p in FEED_ROUTES if not has_route(app, p, m)]
    assert not missing, f"feed routes missing: {missing}"


def ws_url(base: str, token: str) -> str:
    return base.replace("http://", "ws://") + f"/v1/ws?token={token}"


async def ids(client: Any, url: str, acct: Any) -> list[str]:
    resp = await client.get(url, headers=acct.headers)
    assert resp.status_code == 200, resp.text
    return [p["id"] for p in resp.json()["items"]]


async def next_event(ws: Any, type_: str, timeout: float = 15.0) -> dict:
    async def read() -> dict:
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == type_:
                return msg

    return await asyncio.wait_for(read(), timeout)


async def test_removed_post_leaves_every_feed_and_socket(client, services, celery_worker, live_server, feed_routes):
    author, follower, stranger = await register(client), await register(client), await register(client)
    mod = await make_account(services, "moderator")
    resp = await client.post(f"/v1/users/{author.id}/follow", headers=follower.headers)
    assert resp.status_code == 204
    lat, lng = random_point()
    tag = f"mod{uuid.uuid4().hex[:10]}"
    home, topic = "/v1/feed/home?limit=50", f"/v1/topics/{tag}/posts"
    local = f"/v1/feed/local?lat={lat}&lng={lng}&radius_m=500"

    async with connect(ws_url(live_server, follower.token)) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        await next_event(ws, "pong", 10)
        resp = await client.post("/v1/posts", headers=author.headers,
                                 json={"text": f"hello #{tag}", "lat": lat, "lng": lng})
        assert resp.status_code == 201, resp.text
        pid = resp.json()["id"]

        async def everywhere() -> bool:
            return (pid in await ids(client, home, follower) and pid in await ids(client, local, stranger)
                    and pid in await ids(client, topic, stranger))

        # the follower's client has it: the fan-out reached their home feed (the worker may still be
        # busy with earlier tests' tasks, hence the generous timeout)
        new = await next_event(ws, "feed.new", 60)
        assert new["data"]["post_id"] == pid
        await wait_until(everywhere, timeout=20)
        resp = await client.post(f"/v1/moderation/posts/{pid}", headers=mod.headers,
                                 json={"action": "remove", "reason": "illegal content"})
        assert resp.status_code == 200 and resp.json()["status"] == "removed"

        async def nowhere() -> bool:
            return not any([pid in await ids(client, home, follower), pid in await ids(client, local, stranger),
                            pid in await ids(client, topic, stranger), pid in await ids(client, topic, follower)])

        await wait_until(nowhere, timeout=20)
        deleted = await next_event(ws, "post.deleted", 20)
        assert deleted["data"]["post_id"] == pid
        assert (await client.get(f"/v1/posts/{pid}", headers=follower.headers)).status_code == 404

        resp = await client.post(f"/v1/moderation/posts/{pid}", headers=mod.headers,
                                 json={"action": "restore", "reason": "appeal"})
        assert resp.status_code == 200 and resp.json()["status"] == "published"
        await wait_until(everywhere, timeout=20)
    actions = [a["action"] for a in (await client.get(
        f"/v1/moderation/audit?target_id={pid}", headers=mod.headers)).json()["items"]]
    assert actions == ["restore", "remove"]


async def test_suspended_users_socket_closes_with_4403(client, services, live_server):
    user = await register(client)
    mod = await make_account(services, "moderator")
    async with connect(ws_url(live_server, user.token)) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        await next_event(ws, "pong", 10)
        resp = await client.post(f"/v1/moderation/users/{user.id}", headers=mod.headers,
                                 json={"action": "suspend", "reason": "abuse"})
        assert resp.status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(_drain(ws), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert (await client.get("/v1/me", headers=user.headers)).json()["error"]["code"] == "account_suspended"
    # reconnecting is refused the same way: the handshake completes and the server closes with 4403
    async with connect(ws_url(live_server, user.token)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(_drain(ws), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def _drain(ws: Any) -> None:
    while True:
        await ws.recv()


async def test_logout_closes_only_the_sockets_of_that_token(client, services, live_server):
    user = await register(client)
    resp = await client.post("/v1/auth/login", json={"username": user.username, "password": "password123"})
    assert resp.status_code == 200
    other_token = resp.json()["token"]
    async with connect(ws_url(live_server, user.token)) as ws, connect(ws_url(live_server, other_token)) as keep:
        for sock in (ws, keep):
            await sock.send(json.dumps({"type": "ping"}))
            await next_event(sock, "pong", 10)
        assert (await client.post("/v1/auth/logout", headers=user.headers)).status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(_drain(ws), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        await keep.send(json.dumps({"type": "ping"}))  # the other token's socket stays open
        await next_event(keep, "pong", 10)
    assert (await client.get("/v1/me", headers=user.headers)).status_code == 401
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {other_token}"})).status_code == 200
