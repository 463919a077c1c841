"""Cross-process delivery, resume without gap or duplicate, presence, disconnects, slow clients."""

from __future__ import annotations

import asyncio
import json

from solomo.core.control import disconnect_user
from solomo.core.events import event_key
from solomo.embedded import free_port
from tests.realtime.wsclient import close_code, open_ws, quiet_for, recv_json, recv_type
from tests.support import LiveServer, online, register, wait_until


async def ready(ws) -> None:
    """A pong proves the socket has joined its process's hub."""
    await ws.send(json.dumps({"type": "ping"}))
    await recv_type(ws, "pong")


async def collect_events(ws, count: int, timeout: float = 10.0) -> list[dict]:
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            msg = json.loads(await ws.recv())
            if "id" in msg:
                out.append(msg)
    return out


async def test_resume_replays_missed_events_in_order_then_goes_live(live_server, client, services):
    acct = await register(client)
    ws = await open_ws(live_server, acct.token)
    await ready(ws)
    [first] = await services.events.publish([acct.id], "feed.new", {"post_id": "a"})
    assert (await recv_json(ws))["id"] == first
    await ws.close()
    missed = [(await services.events.publish([acct.id], "feed.new", {"post_id": f"m{i}"}))[0] for i in range(5)]
    async with await open_ws(live_server, acct.token, last_event_id=first) as ws:
        replayed = await collect_events(ws, 5)
        assert [m["id"] for m in replayed] == missed
        assert [m["data"]["post_id"] for m in replayed] == [f"m{i}" for i in range(5)]
        [live] = await services.events.publish([acct.id], "post.deleted", {"post_id": "m1"})
        assert (await recv_json(ws))["id"] == live
        assert await quiet_for(ws, 0.3) == []
    # resuming from the newest id replays nothing
    async with await open_ws(live_server, acct.token, last_event_id=live) as ws:
        await ready(ws)
        assert await quiet_for(ws, 0.3) == []


async def test_resume_during_a_burst_has_no_gap_and_no_duplicate(live_server, client, services):
    """Events keep arriving while the client reconnects: every id after last_event_id, once, in order."""
    acct = await register(client)
    [start] = await services.events.publish([acct.id], "feed.new", {"n": -1})
    published: list[str] = []

    async def burst() -> None:
        for n in range(150):
            published.extend(await services.events.publish([acct.id], "feed.new", {"n": n}))
            await asyncio.sleep(0.002)

    task = asyncio.create_task(burst())
    await asyncio.sleep(0.05)
    async with await open_ws(live_server, acct.token, last_event_id=start) as ws:
        await task
        got = await collect_events(ws, len(published))
        assert [m["id"] for m in got] == published
        assert [m["data"]["n"] for m in got] == list(range(150))
        assert await quiet_for(ws, 0.3) == []
    ids = [event_key(i) for i in published]
    assert ids == sorted(ids)


async def test_two_api_processes_deliver_to_sockets_on_either(live_server, client, services):
    second = LiveServer(port=free_port())
    second.start()
    try:
        a, b = await register(client), await register(client)
        ws_a = await open_ws(live_server, a.token)
        ws_b = await open_ws(second.base_url, b.token)
        ws_b2 = await open_ws(live_server, b.token)  # b holds sockets in both processes
        for ws in (ws_a, ws_b, ws_b2):
            await ready(ws)
        await wait_until(lambda: _all_online(services, [a.id, b.id]))
        ids = await services.events.publish([a.id, b.id], "notification", {"kind": "follow"})
        assert (await recv_json(ws_a))["id"] == ids[0]
        assert (await recv_json(ws_b))["id"] == ids[1]
        assert (await recv_json(ws_b2))["id"] == ids[1]
        assert await quiet_for(ws_a, 0.3) == []

        # presence spans processes: b stays online until its last socket (in either process) closes
        await ws_b2.close()
        await asyncio.sleep(0.3)
        assert (await online(services, b.id))[0]
        await ws_b.close()
        await wait_until(lambda: _not_online(services, b.id))
        assert (await online(services, a.id))[0]

        # a moderator's disconnect reaches sockets in every process
        c = await register(client)
        ws_c1 = await open_ws(live_server, c.token)
        ws_c2 = await open_ws(second.base_url, c.token)
        await ready(ws_c1)
        await ready(ws_c2)
        await disconnect_user(services, c.id)  # (PUBLISH's count is per node on a cluster: not asserted)
        assert (await close_code(ws_c1))[0] == 4403
        assert (await close_code(ws_c2))[0] == 4403
        await ws_a.close()
        await wait_until(lambda: _not_online(services, c.id))
    finally:
        second.stop()


async def _all_online(services, ids: list[str]) -> bool:
    return all(await online(services, *ids))


async def _not_online(services, uid: str) -> bool:
    return not (await online(services, uid))[0]


async def test_slow_client_is_closed_and_never_delays_others(client, services):
    """A client that stops reading fills its kernel buffers (megabytes on loopback), then its bounded
    queue: it is closed with 4408 while another client on the same process keeps getting events."""
    server = LiveServer(port=free_port(), extra_env={"SOLOMO_WS_QUEUE_SIZE": "8"})
    server.start()
    try:
        slow, fast = await register(client), await register(client)
        ws_slow = await open_ws(server.base_url, slow.token, rcvbuf=65536, max_queue=1)
        ws_fast = await open_ws(server.base_url, fast.token)
        await ready(ws_slow)
        await ready(ws_fast)
        blob = "x" * 16000
        for i in range(20):  # each answered while the slow socket's queue fills (no wall-clock bound)
            await services.events.publish_each("feed.new", [(slow.id, {"n": n, "blob": blob}) for n in range(40)])
            [eid] = await services.events.publish([fast.id], "feed.new", {"n": i})
            msg = await recv_json(ws_fast, timeout=2)
            assert msg["id"] == eid
        code, frames = await close_code(ws_slow, timeout=30)
        assert code == 4408
        assert len(frames) < 800
        await ws_fast.close()
    finally:
        server.stop()
