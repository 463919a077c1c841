"""Batched event messages: one pub/sub message per reader bucket carries what the frames share once;
each process builds frames only for the users it holds; a slow socket never holds up the others."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from bson import ObjectId

from solomo.core.closecodes import TOO_SLOW
from solomo.core.events import frame
from solomo.core.keys import EVENTS_CHANNEL, bucket_of
from solomo.realtime.connection import Connection
from solomo.realtime.hub import Hub


def _users_of_one_bucket(n: int) -> list[str]:
    """n fresh user ids sharing a reader bucket (so one script call, one message, carries them)."""
    first = str(ObjectId())
    out = [first]
    while len(out) < n:
        uid = str(ObjectId())
        if bucket_of(uid) == bucket_of(first):
            out.append(uid)
    return out


async def _next_event_message(pubsub: Any) -> str:
    async with asyncio.timeout(10):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message["channel"] == EVENTS_CHANNEL:
                return str(message["data"])


def _connection(user_id: str, queue_size: int = 8) -> Connection:
    return Connection(ws=None, user_id=user_id, queue_size=queue_size)  # type: ignore[arg-type]  # no pump runs


async def test_one_message_per_bucket_carries_the_shared_data_once_and_frames_are_exact(services):
    users = _users_of_one_bucket(4)
    body = {"title": "Half-price tea " + "x" * 300, "stock": None}
    text = orjson.dumps(body).decode()
    shared = (text[:-1] + ',"distance_m":', "}")
    parts = [(uid, str(10.5 + i)) for i, uid in enumerate(users)]
    pubsub = services.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(EVENTS_CHANNEL)
    try:
        recorded = dict(await services.events.publish_shared("offer", shared, parts))
        payload = await _next_event_message(pubsub)
    finally:
        await pubsub.aclose()
    assert payload.count("Half-price tea") == 1  # the shared body once, not once per user
    assert len(payload.split("\n")) == 2 + len(users)

    # this process holds two of the four users (one of them on two sockets)
    hub = Hub(services)
    held = [_connection(users[0]), _connection(users[0]), _connection(users[2])]
    for conn in held:
        hub.add(conn)
    assert hub.route(payload) == 3
    for conn, i in ((held[0], 0), (held[1], 0), (held[2], 2)):
        got = conn.queue.get_nowait()
        expected = frame(recorded[users[i]], "offer", text[:-1] + f',"distance_m":{10.5 + i}}}')
        assert got == expected
        assert orjson.loads(got)["data"] == {**body, "distance_m": 10.5 + i}
        assert conn.queue.empty()
    # the history holds the same event, for a resume
    [(eid, fields)] = await services.redis.xrange(f"events:{{b{bucket_of(users[2])}}}:{users[2]}")
    assert eid == recorded[users[2]] and orjson.loads(fields["data"])["distance_m"] == 12.5


async def test_the_same_data_for_everyone_rides_once_too(services):
    users = _users_of_one_bucket(3)
    pubsub = services.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(EVENTS_CHANNEL)
    try:
        ids = await services.events.publish(users, "feed.new", {"post_id": "p" * 24})
        payload = await _next_event_message(pubsub)
    finally:
        await pubsub.aclose()
    assert payload.count("p" * 24) == 1
    hub = Hub(services)
    conn = _connection(users[1])
    hub.add(conn)
    assert hub.route(payload) == 1
    assert conn.queue.get_nowait() == frame(ids[1], "feed.new", '{"post_id":"' + "p" * 24 + '"}')


def test_a_slow_socket_is_closed_and_the_others_still_get_every_frame(services):
    """Routing never waits on a socket: a full queue (the client stopped reading) closes that
    socket with 4408, the frame still reaches every other socket in the same message."""
    hub = Hub(services)
    slow, fast = _connection("slow", queue_size=2), _connection("fast", queue_size=2)
    hub.add(slow)
    hub.add(fast)
    head, tail = '","type":"feed.new","data":{"n":', "}}"
    for n in range(3):
        lines = [head, tail, f"slow 1-{n} {n}", f"fast 1-{n} {n}"]
        assert hub.route("\n".join(lines)) == 2
        fast.queue.get_nowait()  # the fast client keeps reading
    assert slow.done.is_set() and slow.close_code == TOO_SLOW
    assert not fast.done.is_set() and fast.queue.empty()
    assert slow.queue.qsize() == 2  # bounded: what it could not take was dropped, not buffered


def test_malformed_messages_are_ignored(services):
    hub = Hub(services)
    conn = _connection("u")
    hub.add(conn)
    assert hub.route("") == 0
    assert hub.route("only a head") == 0
    assert hub.route('","type":"x","data":\n}\nu not-an-id 1') == 0
    assert conn.queue.empty() and not conn.done.is_set()
