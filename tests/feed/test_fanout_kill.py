"""SLOW (~30 s): a real ``celery worker`` process is SIGKILLed in the middle of a fan-out to 20,000
followers, restarted, and the sweeper (Celery beat, embedded with ``-B``) finishes the job: every
follower's feed then holds the post exactly once.

The worker listens on its own broker database (db 2), so the in-process test worker of other tests
cannot take the task; it fans out in small batches (``SOLOMO_FANOUT_CHUNK=20``) so the kill lands
mid-way, and with a 1 s sweep age so that beat's 15 s schedule picks the post up on its first run.
"""

from __future__ import annotations

import os
import time

import pytest
from bson import ObjectId

from feed.posts import build_post, insert_post
from feed.timeline import MARKER, READY
from solomo.core import tasknames
from solomo.core.keys import home_key
from solomo.core.queue import TaskQueue
from solomo.core.settings import load_settings
from tests.feed.helpers import principal
from tests.support import WorkerProcess, register, wait_until
from workers.app import make_celery

FOLLOWERS = 20_000
pytestmark = pytest.mark.slow


def _broker_db2(redis_url: str) -> str:
    head, _, _ = redis_url.rpartition("/")
    return f"{head}/2"


async def test_killed_worker_mid_fanout_loses_nothing(client, services, settings, tmp_path):
    author = await register(client)
    aid = ObjectId(author.id)
    followers = [ObjectId() for _ in range(FOLLOWERS)]
    await services.db.follows.insert_many(
        [{"follower_id": f, "target_type": "user", "target_id": aid, "created_at": None, "created_ms": 0}
         for f in followers], ordered=False)
    await services.db.users.update_one({"_id": aid}, {"$set": {"followers_count": FOLLOWERS}})
    async with services.redis.pipeline(transaction=False) as pipe:
        for f in followers:  # active readers: their feeds exist
            pipe.zadd(home_key(f), {MARKER: READY})
        await pipe.execute()

    broker = _broker_db2(settings.effective_redis_url)
    env = {**os.environ, "SOLOMO_BROKER_URL": broker, "SOLOMO_FANOUT_CHUNK": "20",
           "SOLOMO_FANOUT_MAX_FOLLOWERS": str(FOLLOWERS * 10), "SOLOMO_FANOUT_SWEEP_AFTER_S": "1"}
    worker = WorkerProcess(env, tmp_path)
    queue = TaskQueue(make_celery(load_settings(broker_url=broker)))
    doc = await build_post(services, principal(author), "to twenty thousand")
    await insert_post(services, doc)
    pid, member = doc["_id"], str(doc["_id"])

    async def holders() -> int:
        async with services.redis.pipeline(transaction=False) as pipe:
            for f in followers:
                pipe.zscore(home_key(f), member)
            return sum(s is not None for s in await pipe.execute())

    try:
        worker.start()
        await queue.send(tasknames.FANOUT_POST, member)

        async def under_way() -> bool:
            post = await services.db.posts.find_one({"_id": pid}, {"fanout_progress": 1})
            return bool(post and post.get("fanout_progress", {}).get("user"))

        await wait_until(under_way, timeout=30, interval=0.005)
        worker.kill()
        post = await services.db.posts.find_one({"_id": pid})
        partial = await holders()
        assert post["fanout"] == "pending", "the fan-out finished before the kill: nothing was proved"
        assert 0 < partial < FOLLOWERS
        started = time.monotonic()
        worker.start()  # the killed task's message is unacked; beat's sweeper re-sends the post

        async def done() -> bool:
            post = await services.db.posts.find_one({"_id": pid}, {"fanout": 1})
            return post["fanout"] == "done"

        await wait_until(done, timeout=45, interval=0.2)
        print(f"killed after {partial} of {FOLLOWERS} feeds; finished {time.monotonic() - started:.1f}s after restart")
    finally:
        worker.stop()
    assert await holders() == FOLLOWERS
    async with services.redis.pipeline(transaction=False) as pipe:
        for f in followers:
            pipe.zcard(home_key(f))
        sizes = await pipe.execute()
    assert set(sizes) == {2}  # the marker and the post, exactly once
    for start in range(0, FOLLOWERS, 1000):
        await services.redis.delete(*[home_key(f) for f in followers[start:start + 1000]])
