"""The domain's metrics move: a real fan-out (lag, entries per target) and real socket traffic
(connected sockets, events delivered and dropped, slow-client closes), read back from ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from bson import ObjectId

from feed.fanout import fanout_post
from feed.home import rebuild_home
from feed.posts import build_post, insert_post
from solomo.core.keys import home_key
from solomo.embedded import free_port
from tests.feed.helpers import principal
from tests.observability.test_observability import sample
from tests.realtime.wsclient import close_code, open_ws, recv_type
from tests.support import METRICS_HEADERS, LiveServer, make_account, offset, random_point, wait_until


async def test_fanout_updates_lag_and_entries(client, services):
    author, reader = await make_account(services, "user"), await make_account(services, "user")
    resp = await client.post(f"/v1/users/{author.id}/follow", headers=reader.headers)
    assert resp.status_code == 204
    await rebuild_home(services, ObjectId(reader.id))  # an active reader: the fan-out writes her feed
    await rebuild_home(services, ObjectId(author.id))
    before = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    lat, lng = offset(*random_point(), 10, 10)
    doc = await build_post(services, principal(author), "metrics #wiring", lat=lat, lng=lng)
    await insert_post(services, doc)
    await asyncio.sleep(0.2)
    assert await fanout_post(services, doc["_id"]) == "published"
    assert await services.redis.zscore(home_key(reader.id), str(doc["_id"])) is not None
    after = (await client.get("/metrics", headers=METRICS_HEADERS)).text

    def delta(name: str, **labels: str) -> float:
        return (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    # the author's feed and the reader's (topic and cell listings are written once someone built them)
    assert delta("solomo_fanout_entries_total", target="home") == 2
    assert delta("solomo_fanout_lag_seconds_count") == 1
    lag = delta("solomo_fanout_lag_seconds_sum")
    assert 0.2 <= lag < 30, lag
    # the post is done: running the task again (a retry) is not counted as lag a second time
    assert await fanout_post(services, doc["_id"]) == "published"
    again = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    assert sample(again, "solomo_fanout_lag_seconds_count") == sample(after, "solomo_fanout_lag_seconds_count")


def _metrics(base_url: str) -> str:
    with urllib.request.urlopen(urllib.request.Request(base_url + "/metrics", headers=METRICS_HEADERS),
                                timeout=10) as resp:
        return resp.read().decode()


async def test_socket_metrics_move(client, services):
    server = LiveServer(port=free_port(), extra_env={"SOLOMO_WS_QUEUE_SIZE": "8"})
    server.start()
    try:
        base = server.base_url
        fast, slow = await make_account(services, "user"), await make_account(services, "user")
        start = await asyncio.to_thread(_metrics, base)
        assert sample(start, "solomo_ws_connected_sockets") == 0
        ws_fast = await open_ws(base, fast.token)
        ws_slow = await open_ws(base, slow.token, rcvbuf=65536, max_queue=1)
        for ws in (ws_fast, ws_slow):
            await ws.send(json.dumps({"type": "ping"}))
            await recv_type(ws, "pong")
        connected = await asyncio.to_thread(_metrics, base)
        assert sample(connected, "solomo_ws_connected_sockets") == 2

        for n in range(3):
            await services.events.publish([fast.id], "notification", {"kind": "follow", "n": n})
        for _ in range(3):
            await recv_type(ws_fast, "notification")
        blob = "x" * 16000
        for _ in range(40):  # the slow client never reads: its buffers, then its queue of 8, fill up
            await services.events.publish_each("feed.new", [(slow.id, {"n": n, "blob": blob}) for n in range(40)])
            if sample(await asyncio.to_thread(_metrics, base), "solomo_ws_slow_client_closes_total") == 1:
                break
        code, _ = await close_code(ws_slow, timeout=30)  # what was written before the close, then the close
        assert code == 4408, code

        async def settled() -> str | None:
            text = await asyncio.to_thread(_metrics, base)
            return text if sample(text, "solomo_ws_connected_sockets") == 1 else None

        end = await wait_until(settled, timeout=10)
        assert (sample(end, "solomo_events_delivered_total", type="notification") or 0) >= 3
        assert (sample(end, "solomo_events_delivered_total", type="feed.new") or 0) >= 8
        assert (sample(end, "solomo_events_dropped_total", reason="slow_client") or 0) >= 1
        assert sample(end, "solomo_ws_slow_client_closes_total") == 1
        await ws_fast.close()
        await wait_until(lambda: asyncio.to_thread(
            lambda: sample(_metrics(base), "solomo_ws_connected_sockets") == 0), timeout=10)
    finally:
        server.stop()
