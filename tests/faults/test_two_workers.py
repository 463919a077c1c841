"""Drill (~40 s): two ``celery worker`` processes share the fan-out queue; the one running a fan-out
to 20,000 followers is SIGKILLed mid-task and the other finishes it.

A fresh Redis Cluster holds the data; an in-process app on it takes the post (201) and enqueues its
fan-out on a broker database of the drill's own, consumed by both workers (solo pool, prefetch 1,
``acks_late``). Neither runs beat, so beat's sweep cannot re-send the post: the only way back is the
broker's — the killed worker never acknowledged its message, and once the message is older than the
visibility timeout (``SOLOMO_BROKER_VISIBILITY_TIMEOUT_S``, short here) the survivor's periodic scan
puts it back on the queue; the survivor's run resumes at the checkpoint in MongoDB.

The worker that holds the task is told by its log (the workers log at INFO: "Task fanout.post[id]
received", one line per delivery) once the post's progress checkpoint has moved; the drill asserts
exactly one worker received it before the kill and the survivor received the same task id after it.
Then: every READY feed holds the post exactly once, the post is marked done, and every online
follower (a simulated API process holds every 10th online) was told ``feed.new`` exactly once — once
in its event history, and once in the post's per-bucket dedupe sets.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from bson import ObjectId

from solomo.core.keys import BUCKETS, feed_new_sent
from solomo.core.presence import Presence
from tests.faults.drill import report
from tests.faults.fanout_drill import (
    event_times,
    fanout_state,
    feed_faults,
    feeds,
    holders,
    log_tail,
    seed_audience,
    worker_env,
)
from tests.support import WorkerProcess, register, wait_until
from tests.support import online as online_now

FOLLOWERS = 20_000
CHUNK = 200
ONLINE_EVERY = 10
VISIBILITY_S = 8  # > the time from delivery to the kill; the survivor scans every second
BROKER_DB = 4
APP_SETTINGS = {"fanout_max_followers": FOLLOWERS * 10}
DONE_S = VISIBILITY_S + 45.0
pytestmark = pytest.mark.slow
RECEIVED = re.compile(r"Task fanout\.post\[([0-9a-f-]+)\] received")


def _received(worker: WorkerProcess) -> list[str]:
    """Task ids of the fan-outs this worker was delivered, in order."""
    return RECEIVED.findall(worker.log.read_text(errors="replace")) if worker.log.exists() else []


async def test_killed_worker_mid_task_the_other_finishes(cluster_stack, tmp_path):
    st = cluster_stack
    services, client = st.services, st.client
    author = await register(client)
    followers = [ObjectId() for _ in range(FOLLOWERS)]
    audience = await seed_audience(services, ObjectId(author.id), followers)  # every feed READY
    position = audience.position
    online = [str(followers[i]) for i in range(0, FOLLOWERS, ONLINE_EVERY)]
    sim = Presence(services.redis, f"drill-{uuid.uuid4().hex[:8]}")
    await sim.apply(dict.fromkeys(online, True))

    async def heartbeat() -> None:
        while True:
            await sim.heartbeat()
            await asyncio.sleep(5)

    beating = asyncio.create_task(heartbeat())

    async def all_online() -> bool:
        return all(await online_now(services, *online))

    await wait_until(all_online, timeout=15)

    env = worker_env(st.broker, chunk=CHUNK, max_followers=FOLLOWERS * 10, redis_url=st.cluster.url, cluster=True,
                     SOLOMO_BROKER_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S), SOLOMO_LOG_LEVEL="INFO")
    workers = [WorkerProcess(env, tmp_path, f"worker-{name}.log", beat=False) for name in ("a", "b")]
    try:
        for w in workers:
            w.start()

        async def both_ready() -> bool:
            return all(" ready." in w.log.read_text(errors="replace") for w in workers)

        await wait_until(both_ready, timeout=60, interval=0.2)
        resp = await client.post("/v1/posts", json={"text": f"shared fan-out {uuid.uuid4().hex[:6]}"},
                                 headers=author.headers)
        assert resp.status_code == 201, resp.text
        member = resp.json()["id"]
        pid = ObjectId(member)

        async def under_way() -> bool:  # the checkpoint moved, and one worker's log says it has the task
            return bool((await fanout_state(services, pid)).get("fanout_progress")) and any(map(_received, workers))

        await wait_until(under_way, timeout=60, interval=0.01)
        got_it = [w for w in workers if _received(w)]
        assert len(got_it) == 1, [(w.log.name, _received(w)) for w in workers]
        victim, survivor = got_it[0], next(w for w in workers if w is not got_it[0])
        (task_id,) = _received(victim)
        victim.kill()  # SIGKILL, mid-task: its message stays unacknowledged on the broker
        killed = time.monotonic()
        at_kill = await fanout_state(services, pid)
        partial = await holders(services.redis, followers, member)
        assert at_kill["fanout"] == "pending" and partial < FOLLOWERS, "the fan-out finished before the kill"
        resume_at = position[at_kill["fanout_progress"]["user"]] + 1
        assert survivor.process is not None and survivor.process.poll() is None

        async def done() -> bool:
            return (await fanout_state(services, pid))["fanout"] == "done"

        try:
            await wait_until(done, timeout=DONE_S, interval=0.2)
        except AssertionError:
            raise AssertionError(f"the survivor did not finish: {log_tail(survivor.log)}") from None
        done_s = time.monotonic() - killed
        await asyncio.sleep(2)  # a second delivery would show up too
    finally:
        for w in workers:
            w.stop()
        beating.cancel()
        await sim.leave()

    # the broker's redelivery, not a re-send: the survivor got the very message the victim held
    assert _received(survivor) == [task_id], (_received(survivor), task_id)
    assert _received(victim) == [task_id]
    state = await fanout_state(services, pid)
    assert state["fanout"] == "done" and not state.get("fanout_swept_at")

    # every reader once
    got = await feeds(services.redis, followers)
    faults = feed_faults(got, member)
    assert not faults["missing"] and not faults["other"], (
        f"{len(faults['missing'])} feeds lack the post (first at {faults['missing'][:10]}), "
        f"{len(faults['other'])} hold something else")

    # feed.new: once per online follower, in its history and in the post's dedupe sets
    history = await event_times(services.redis, online, "feed.new", post_id=member)
    per_user = {uid: len(times) for uid, times in history.items()}
    missing = [uid for uid, n in per_user.items() if n == 0]
    twice = [uid for uid, n in per_user.items() if n > 1]
    assert not missing and not twice, f"{len(missing)} online followers never told, {len(twice)} told twice"
    told: set[str] = set()
    for bucket in range(BUCKETS):
        told |= set(await services.redis.smembers(feed_new_sent(member, bucket)))
    assert told == set(online), (len(told), len(online))
    report(f"two-worker drill: killed {victim.log.stem} (pid {victim.pid}) holding task {task_id[:8]} after "
          f"{partial} of {FOLLOWERS} feeds (checkpoint at follower {resume_at}); {survivor.log.stem} got the same "
          f"message back from the broker (visibility timeout {VISIBILITY_S}s) and finished {done_s:.1f}s after the "
          f"kill; feeds: 0 missing, 0 duplicates; feed.new: {len(online)} online followers told once each")
