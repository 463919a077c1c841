"""What the fan-out drills share (tests/feed/test_fanout_kill.py, tests/faults/test_cluster_failover.py,
tests/faults/test_two_workers.py): a broker database of the drill's own, the environment of its
``celery worker`` processes, an author with N followers whose home feeds exist (READY), and reading
back, per follower, what its feed and its event history hold.

Feeds are sorted sets, so "the post is in every feed" cannot show a duplicate: the drills read each
feed whole (a READY feed that held nothing before must hold exactly ``[MARKER, post]``) and count
``feed.new`` events per online follower in their history streams, where a second announcement would
show.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import ObjectId
from redis.asyncio import Redis

from feed.timeline import MARKER, READY
from solomo.core.keys import event_history, home_key

BATCH = 2000  # commands per pipeline when seeding or reading back (a cluster pipeline splits per node)


def drill_broker(settings: Any, db: int) -> str:
    """Database ``db`` of the session's broker Redis: the drill's own queue, so the in-process test
    worker of other tests never takes its tasks (and its workers never take theirs)."""
    head, _, tail = settings.effective_broker_url.rpartition("/")
    assert tail.isdigit(), settings.effective_broker_url
    return f"{head}/{db}"


async def clear_broker(url: str) -> None:
    """Empties the drill's broker database: nothing left from an earlier drill of this session."""
    broker = Redis.from_url(url)
    try:
        await broker.flushdb()
    finally:
        await broker.aclose()


def worker_env(broker: str, *, chunk: int, max_followers: int, redis_url: str | None = None,
               cluster: bool = False, **extra: str) -> dict[str, str]:
    """A drill worker's environment: this session's (MongoDB, secret key …), the drill's broker, small
    fan-out batches (so a kill lands mid-way) and a 1 s sweep age (beat's sweep re-sends at once)."""
    env = {**os.environ, "SOLOMO_BROKER_URL": broker, "SOLOMO_FANOUT_CHUNK": str(chunk),
           "SOLOMO_FANOUT_MAX_FOLLOWERS": str(max_followers), "SOLOMO_FANOUT_SWEEP_AFTER_S": "1", **extra}
    if redis_url is not None:
        env["SOLOMO_REDIS_URL"] = redis_url
    if cluster:
        env["SOLOMO_REDIS_CLUSTER"] = "true"
    return env


@dataclass
class Audience:
    """An author's followers in fan-out order (their follow ids increase with the position)."""

    author: ObjectId
    followers: list[ObjectId]
    follow_ids: list[ObjectId]
    ready: set[int] = field(default_factory=set)  # positions whose home feed exists

    @property
    def position(self) -> dict[ObjectId, int]:
        """Follow id → position: a checkpoint (``fanout_progress.user``) is the last follow id done."""
        return {fid: i for i, fid in enumerate(self.follow_ids)}

    @property
    def keys(self) -> list[str]:
        return [home_key(f) for f in self.followers]


async def seed_audience(services: Any, author: ObjectId, followers: Sequence[ObjectId],
                        ready: Callable[[int], bool] = lambda i: True) -> Audience:
    """Each of ``followers`` follows ``author`` (straight into MongoDB: 20,000 API calls would be the
    drill's whole time) and, where ``ready(position)``, has an empty READY home feed (an active reader)."""
    # increasing, so the fan-out's order (follow ``_id``) is position order. Sorted: ``ObjectId()``
    # alone is not increasing when its 3-byte counter (random start) wraps within the second, and the
    # drills then took the order of the followers after the wrap for the fan-out's (1 in ~840 calls)
    follow_ids = sorted(ObjectId() for _ in followers)
    docs = [{"_id": fid, "follower_id": f, "target_type": "user", "target_id": author, "created_at": None,
             "created_ms": 0} for fid, f in zip(follow_ids, followers, strict=True)]
    for start in range(0, len(docs), BATCH * 5):
        await services.db.follows.insert_many(docs[start:start + BATCH * 5], ordered=False)
    await services.db.users.update_one({"_id": author}, {"$set": {"followers_count": len(followers)}})
    audience = Audience(author, list(followers), follow_ids, {i for i in range(len(followers)) if ready(i)})
    await make_ready(services.redis, [followers[i] for i in sorted(audience.ready)])
    return audience


async def make_ready(redis: Any, followers: Iterable[ObjectId | str]) -> None:
    """Empty READY home feeds (readers who are active, or come back now)."""
    keys = [home_key(f) for f in followers]
    for start in range(0, len(keys), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys[start:start + BATCH]:
                pipe.zadd(key, {MARKER: READY})
            await pipe.execute()


async def feeds(redis: Any, followers: Sequence[ObjectId | str]) -> list[list[str]]:
    """Each follower's home feed, whole (members in score order)."""
    out: list[list[str]] = []
    for start in range(0, len(followers), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for f in followers[start:start + BATCH]:
                pipe.zrange(home_key(f), 0, -1)
            out.extend(await pipe.execute())
    return out


async def holders(redis: Any, followers: Sequence[ObjectId | str], member: str) -> int:
    """How many of the followers' feeds hold ``member`` now."""
    held = 0
    for start in range(0, len(followers), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for f in followers[start:start + BATCH]:
                pipe.zscore(home_key(f), member)
            held += sum(s is not None for s in await pipe.execute())
    return held


def feed_faults(got: Sequence[list[str]], member: str) -> dict[str, list[int]]:
    """Positions of READY feeds (empty before the post) that do not hold exactly ``[MARKER, member]``:
    missing the post, or holding anything else."""
    missing = [i for i, m in enumerate(got) if member not in m]
    other = [i for i, m in enumerate(got) if member in m and m != [MARKER, member]]
    return {"missing": missing, "other": other}


async def event_times(redis: Any, uids: Sequence[str], type: str, **data: str) -> dict[str, list[int]]:
    """uid → the stream times (ms) of that user's recorded events of ``type`` matching ``data``."""
    out: dict[str, list[int]] = {}
    for start in range(0, len(uids), BATCH):
        chunk = uids[start:start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for uid in chunk:
                pipe.xrange(event_history(uid))
            streams = await pipe.execute()
        for uid, entries in zip(chunk, streams, strict=True):
            times = []
            for event_id, fields in entries:
                payload = json.loads(fields["data"])
                if fields["type"] == type and all(payload.get(k) == v for k, v in data.items()):
                    times.append(int(str(event_id).split("-")[0]))
            out[uid] = times
    return out


async def fanout_state(services: Any, post_id: ObjectId) -> dict[str, Any]:
    """The post's fan-out fields: ``fanout`` (pending/done), ``fanout_progress`` (the checkpoint),
    ``fanout_swept_at`` (set when beat's sweep re-sent it)."""
    doc = await services.db.posts.find_one(
        {"_id": post_id}, {"fanout": 1, "fanout_progress": 1, "fanout_swept_at": 1, "status": 1})
    assert doc is not None, post_id
    return dict(doc)


async def drop_keys(redis: Any, keys: Sequence[str]) -> None:
    """Deletes the drill's keys (one DEL each: on a cluster they live on every node)."""
    for start in range(0, len(keys), BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys[start:start + BATCH]:
                pipe.delete(key)
            await pipe.execute()


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"<no {path}>"
