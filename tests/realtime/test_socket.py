"""/v1/ws against a real uvicorn process: auth, the message protocol, bad input, floods."""

from __future__ import annotations

import json

from bson import ObjectId

from geo.positions import get_position
from tests.realtime.wsclient import close_code, open_ws, quiet_for, recv_json, recv_type
from tests.support import make_account, random_point, register


async def test_missing_or_bad_token_closes_4401_and_sends_nothing(live_server, services):
    for token in [None, "", "nope", "x" * 300]:
        ws = await open_ws(live_server, token)
        code, frames = await close_code(ws)
        assert code == 4401, (token, code)
        assert frames == []


async def test_revoked_token_is_refused(live_server, client):
    acct = await register(client)
    await client.post("/v1/auth/logout", headers=acct.headers)
    code, frames = await close_code(await open_ws(live_server, acct.token))
    assert code == 4401 and frames == []


async def test_suspended_account_closes_4403(live_server, services):
    acct = await make_account(services, "user")
    await services.db.users.update_one({"_id": ObjectId(acct.id)}, {"$set": {"status": "suspended"}})
    code, frames = await close_code(await open_ws(live_server, acct.token))
    assert code == 4403 and frames == []


async def test_malformed_last_event_id_closes_4400(live_server, client):
    acct = await register(client)
    code, _ = await close_code(await open_ws(live_server, acct.token, last_event_id="$gt"))
    assert code == 4400


async def test_last_event_id_redis_cannot_read_closes_4400_not_1011(live_server, client):
    acct = await register(client)
    most = 2**64 - 1  # each half of a stream id is an unsigned 64-bit integer
    # digits to str.isdigit and int(), not to Redis; a half past 64 bits (each an XRANGE error before)
    for bad in ["\u0661\u0662\u0663-0", "123-\u0661", f"{most + 1}-0", f"0-{most + 1}", "9" * 30 + "-0"]:
        code, frames = await close_code(await open_ws(live_server, acct.token, last_event_id=bad))
        assert (code, frames) == (4400, []), (bad, code, frames)
    # the greatest ids are ids: nothing follows them, and the socket works
    for edge in [f"{most}-{most}", f"{most}-0", f"0-{most}"]:
        async with await open_ws(live_server, acct.token, last_event_id=edge) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert await recv_json(ws) == {"type": "pong"}, edge


async def test_ping_pong_and_bad_messages(live_server, client, services):
    acct = await register(client)
    async with await open_ws(live_server, acct.token) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}
        for bad, code in [
            ("not json", "bad_request"),
            ("[1, 2]", "unknown_type"),
            (json.dumps({"type": "dance"}), "unknown_type"),
            (json.dumps({"nope": 1}), "unknown_type"),
            (json.dumps({"type": "location", "lat": 200, "lng": 10}), "invalid"),
            (json.dumps({"type": "location", "lat": "10", "lng": 10}), "invalid"),
            (json.dumps({"type": "location", "lat": 10}), "invalid"),
            (json.dumps({"type": "location", "lat": 10, "lng": 10, "x": 1}), "invalid"),
            ("x" * 5000, "payload_too_large"),
        ]:
            await ws.send(bad)
            msg = await recv_json(ws)
            assert msg["type"] == "error" and msg["data"]["code"] == code, (bad[:40], msg)
        await ws.send(b"\x00binary")
        assert (await recv_json(ws))["data"]["code"] == "bad_request"
        # the socket still works after bad input
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}
    assert await get_position(services.redis, acct.id, 60) is None


async def test_location_sets_live_position(live_server, client, services):
    acct = await register(client)
    lat, lng = random_point()
    async with await open_ws(live_server, acct.token) as ws:
        await ws.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
        await ws.send(json.dumps({"type": "ping"}))
        await recv_type(ws, "pong")
    pos = await get_position(services.redis, acct.id, 60)
    assert pos is not None and abs(pos[0] - lat) < 1e-4 and abs(pos[1] - lng) < 1e-4


async def test_flood_is_rate_limited_then_closed(live_server, client):
    acct = await register(client)
    ws = await open_ws(live_server, acct.token)
    for _ in range(200):
        await ws.send(json.dumps({"type": "ping"}))
    code, frames = await close_code(ws)
    assert code == 4429
    kinds = [json.loads(f).get("type") for f in frames]
    assert 0 < kinds.count("pong") <= 40
    assert any(json.loads(f).get("data", {}).get("code") == "rate_limited" for f in frames)


async def test_events_reach_the_socket(live_server, client, services):
    acct = await register(client)
    other = await register(client)
    async with await open_ws(live_server, acct.token) as ws, await open_ws(live_server, other.token) as ws2:
        await ws.send(json.dumps({"type": "ping"}))
        await recv_type(ws, "pong")
        await ws2.send(json.dumps({"type": "ping"}))
        await recv_type(ws2, "pong")
        [eid] = await services.events.publish([acct.id], "notification", {"kind": "like", "post_id": "p1"})
        msg = await recv_json(ws)
        assert msg == {"id": eid, "type": "notification", "data": {"kind": "like", "post_id": "p1"}}
        assert await quiet_for(ws2, 0.5) == []
