"""The real-time building blocks used directly: publishing, once-only publishing, presence, positions."""

from __future__ import annotations

import time
import uuid

from geo.positions import expire_positions, get_position, set_position, users_within
from solomo.core.events import event_key
from solomo.core.keys import BUCKETS, POSITIONS, bucket_of, bucket_tag, proc_users
from solomo.core.keys import event_history as history_key
from solomo.core.presence import Presence, sweep
from tests.support import offset, online, random_point


def uid() -> str:
    return uuid.uuid4().hex[:24]


async def test_publish_records_bounded_ordered_history(services):
    user = uid()
    ids = []
    for n in range(5):
        ids += await services.events.publish([user, user], "feed.new", {"n": n})  # duplicates collapse
    assert len(ids) == 5 and [event_key(i) for i in ids] == sorted(event_key(i) for i in ids)
    entries = await services.redis.xrange(history_key(user))
    assert [e[0] for e in entries] == ids and entries[0][1]["type"] == "feed.new"
    assert 0 < await services.redis.ttl(history_key(user))
    for n in range(services.settings.event_history * 2):
        await services.events.publish([user], "x", {"n": n})
    assert await services.redis.xlen(history_key(user)) < services.settings.event_history * 1.5


async def test_publish_each_once_skips_users_already_reached(services):
    a, b, name = uid(), uid(), uuid.uuid4().hex

    def key(bucket: int) -> str:
        return f"test:once:{bucket_tag(bucket)}:{name}"

    first = await services.events.publish_each("offer", [(a, {"d": 1}), (b, {"d": 2})], once_key=key)
    assert sorted(u for u, _ in first) == sorted([a, b])
    again = await services.events.publish_each("offer", [(a, {"d": 1}), (b, {"d": 2})], once_key=key)
    assert again == []
    assert await services.redis.xlen(history_key(a)) == 1
    assert 0 < await services.redis.ttl(key(bucket_of(a))) <= 86400


async def test_publish_each_spans_every_bucket_once(services):
    """Many users land in every bucket (one script call each, one pipeline): each gets exactly
    their own payload once, and a repeat reaches nobody."""
    users = [uid() for _ in range(BUCKETS * 4)]
    assert len({bucket_of(u) for u in users}) > BUCKETS // 2
    name = uuid.uuid4().hex

    def key(bucket: int) -> str:
        return f"test:once:{bucket_tag(bucket)}:{name}"

    sent = await services.events.publish_each("offer", [(u, {"for": u}) for u in users], once_key=key)
    assert sorted(u for u, _ in sent) == sorted(users)
    assert await services.events.publish_each("offer", [(u, {"for": u}) for u in users], once_key=key) == []
    for u in users[:20]:
        [(_, fields)] = await services.redis.xrange(history_key(u))
        assert u in fields["data"]


def test_event_key_rejects_garbage():
    assert event_key("12-3") == (12, 3)
    most = 2**64 - 1  # Redis reads each half as an unsigned 64-bit integer
    assert event_key(f"{most}-{most}") == (most, most) and event_key("00-007") == (0, 7)
    for bad in ["", "12", "-3", "a-b", "1-2-3", "$", "0" * 50 + "-1", "\u0661\u0662\u0663-0", "1-\u0661",
                "\xb2-1", f"{most + 1}-0", f"0-{most + 1}", "0" * 21 + "-1", "+1-2", " 1-2"]:
        try:
            event_key(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_presence_counts_processes_and_sweeps_dead_ones(services):
    user, shared = uid(), uid()
    p1, p2 = Presence(services.redis, "test-" + uid()), Presence(services.redis, "test-" + uid())
    await p1.apply({user: True, shared: True})
    await p2.apply({shared: True})
    assert await online(services, user, shared) == [True, True]
    await p1.apply({shared: False})
    assert await online(services, shared) == [True]  # p2 still holds it
    await p2.apply({shared: False})
    assert await online(services, shared) == [False]
    # p1 "crashes": it stops heartbeating; a sweep after the staleness bound removes its users
    assert await sweep(services.redis, now_ms=int(time.time() * 1000)) == 0
    assert await online(services, user) == [True]
    await services.redis.zadd("rt:procs", {p1.pid: int(time.time() * 1000) - 120_000})  # its last heartbeat
    assert await sweep(services.redis, stale_after_ms=60_000) == 1
    assert await online(services, user) == [False]
    assert not await services.redis.exists(proc_users(p1.pid, bucket_of(user)))


async def test_live_positions_expire(services):
    lat, lng = random_point()
    near, far, stale = uid(), uid(), uid()
    now = time.time()
    await set_position(services.redis, near, *offset(lat, lng, north_m=100), now=now)
    await set_position(services.redis, far, *offset(lat, lng, east_m=3000), now=now)
    await set_position(services.redis, stale, *offset(lat, lng, east_m=50), now=now - 10_000)
    found = await users_within(services.redis, lat, lng, 1000, max_age_s=900, now=now)
    assert [u for u, _ in found] == [near] and 95 < found[0][1] < 105
    assert await get_position(services.redis, stale, 900, now=now) is None
    assert await expire_positions(services.redis, 900, now=now) >= 1
    assert await services.redis.zscore(POSITIONS, stale) is None
    assert await services.redis.zscore(POSITIONS, near) is not None


async def test_a_live_frame_the_replay_already_sent_is_not_sent_again():
    """Pub/sub can lag behind the history read: after go_live, a frame at or below the last
    replayed id arrives live and must be dropped as a duplicate; newer ones pass."""
    from solomo.realtime.connection import Connection

    conn = Connection(None, "u1", 8, live=False)  # type: ignore[arg-type]
    conn.deliver((10, 0), "parked-old")
    conn.deliver((12, 0), "parked-new")
    conn.go_live((11, 0))  # the replay sent everything up to 11-0
    assert conn.deliver((11, 0), "late-duplicate") is False
    assert conn.deliver((13, 0), "fresh") is True
    sent = [conn.queue.get_nowait() for _ in range(conn.queue.qsize())]
    assert sent == ["parked-new", "fresh"]
