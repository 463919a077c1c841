"""Drill (~30 s): two ``celery worker`` processes share the drill's queue; the one targeting a visitors
offer at 4,000 positioned users near the store is SIGKILLed mid-way; the other gets the
unacknowledged task back from the broker (short visibility timeout) and finishes from the
checkpoint (``targeting_progress``).

The users are written straight into Redis (positions, the online sets) and MongoDB (check-ins):
every other one checked in at the store 3 days ago (the audience, 2,000 users), a quarter checked
in 200 days ago (outside the 90-day window) and a quarter never did. The worker targets in chunks of
:data:`CHUNK` candidates. Proven: the kill landed mid-way (some but not all of the audience had the
offer); at the end every audience member holds exactly one ``offer`` event for it in their event
history and is in its dedupe sets, nobody outside the audience holds any, the offer is done, and
every event recorded after the kill went to a user past the checkpoint (the run resumed there rather
than starting over).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from solomo.core import tasknames
from solomo.core.keys import POSITIONS, POSITIONS_SEEN
from solomo.core.queue import TaskQueue
from solomo.core.settings import load_settings
from tests.faults.drill import report
from tests.faults.fanout_drill import clear_broker, drill_broker, event_times, log_tail, worker_env
from tests.offers.helpers import create_offer, merchant_with_store
from tests.support import WorkerProcess, delivered_to, mark_offline, mark_online, offset, wait_until
from workers.app import make_celery

USERS = 4000
CHUNK = 100
BROKER_DB = 11  # of the session's broker Redis: this drill's own (the other drills use 2 to 7)
VISIBILITY_S = 4
KILL_AFTER = 300  # audience members reached (about 6 chunks of the 40)
RECEIVED = re.compile(r"Task offers\.target\[([0-9a-f-]+)\] received")
pytestmark = pytest.mark.slow


async def test_killed_targeting_of_a_large_audience_finishes_once_each(client, services, settings, tmp_path,
                                                                       monkeypatch, hold_tasks):
    merchant, store = await merchant_with_store(client)
    users = [str(ObjectId()) for _ in range(USERS)]
    now = datetime.now(UTC)
    checkins = []
    for i, uid in enumerate(users):
        if i % 4 != 3:  # 0, 2: 3 days ago (the audience); 1: 200 days ago (outside the window)
            at = now - timedelta(days=200 if i % 4 == 1 else 3)
            checkins.append({"_id": ObjectId(), "user_id": ObjectId(uid), "store_id": ObjectId(store["id"]),
                             "day": at.strftime("%Y-%m-%d"), "created_at": at})
    await services.db.checkins.insert_many(checkins)
    audience = {uid for i, uid in enumerate(users) if i % 2 == 0}
    seen = time.time()
    async with services.redis.pipeline(transaction=False) as pipe:  # what set_position writes, in one round
        for i, uid in enumerate(users):
            lat, lng = offset(store["lat"], store["lng"], north_m=(i % 60) * 5, east_m=(i // 60) * 4)
            pipe.geoadd(POSITIONS, (lng, lat, uid))
            pipe.zadd(POSITIONS_SEEN, {uid: seen})
        await pipe.execute()
    await mark_online(services, *users)

    broker = drill_broker(settings, BROKER_DB)
    await clear_broker(broker)
    env = worker_env(broker, chunk=CHUNK, max_followers=USERS, SOLOMO_BROKER_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
                     SOLOMO_LOG_LEVEL="INFO")
    workers = [WorkerProcess(env, tmp_path, f"worker-{name}.log", beat=False) for name in ("a", "b")]
    queue = TaskQueue(make_celery(load_settings(broker_url=broker)))

    def received(worker: WorkerProcess) -> list[str]:
        return RECEIVED.findall(worker.log.read_text(errors="replace")) if worker.log.exists() else []

    try:
        for worker in workers:  # both up before the offer: the survivor is ready when the message returns
            worker.start()

        async def both_ready() -> bool:
            return all(w.log.exists() and " ready." in w.log.read_text(errors="replace") for w in workers)

        await wait_until(both_ready, timeout=60, interval=0.2)
        # the offer's creation sends its task to a queue no worker reads: the drill's own worker must
        # be the one to target it, so the task is sent again, on the drill's broker
        held = hold_tasks()
        offer = await create_offer(client, merchant, store["id"], audience="visitors", radius_m=600)
        monkeypatch.undo()
        assert (tasknames.OFFERS_TARGET, (offer["id"],)) in await held.sent()
        oid = ObjectId(offer["id"])
        assert await delivered_to(services, offer["id"]) == set()  # too large to target in the request
        await queue.send(tasknames.OFFERS_TARGET, offer["id"])

        async def under_way() -> bool:  # a few chunks in: past a checkpoint, well before the end
            doc = await services.db.offers.find_one({"_id": oid}, {"targeting_progress": 1, "pushed": 1})
            return bool(doc and doc.get("targeting_progress") and doc.get("pushed", 0) >= KILL_AFTER)

        await wait_until(under_way, timeout=30, interval=0.005)

        async def named() -> bool:  # the workers' log lines reach their file in batches, 0.2 s late at most
            return any(received(w) for w in workers)

        await wait_until(named, timeout=10, interval=0.005)
        holders = [w for w in workers if received(w)]
        assert len(holders) == 1, [(w.log.name, received(w)) for w in workers]
        victim = holders[0]
        survivor = next(w for w in workers if w is not victim)
        victim.kill()  # SIGKILL mid-task: its message stays unacknowledged on the broker
        killed, killed_ms = time.monotonic(), int(time.time() * 1000)
        at_kill = await services.db.offers.find_one({"_id": oid})
        partial = len(await delivered_to(services, offer["id"]))
        assert at_kill["targeting"] == "pending" and 0 < partial < len(audience), (
            f"the kill did not land mid-way ({partial} of {len(audience)} reached)")

        async def done() -> bool:
            return (await services.db.offers.find_one({"_id": oid}))["targeting"] == "done"

        try:
            await wait_until(done, timeout=VISIBILITY_S + 30, interval=0.2)
        except AssertionError:
            raise AssertionError(f"the survivor did not finish: {log_tail(survivor.log)}") from None
        done_s = time.monotonic() - killed
    finally:
        for worker in workers:
            worker.stop()
        await mark_offline(services, *users)

    assert received(survivor) == received(victim)  # the broker's redelivery of the very same message
    history = await event_times(services.redis, users, "offer", id=offer["id"])
    counts = {uid: len(times) for uid, times in history.items()}
    missing = [uid for uid in audience if counts[uid] == 0]
    twice = [uid for uid in audience if counts[uid] > 1]
    outsiders = [uid for uid in users if uid not in audience and counts[uid]]
    assert not missing and not twice and not outsiders, (len(missing), len(twice), len(outsiders))
    assert await delivered_to(services, offer["id"]) == audience
    # the second run resumed at the checkpoint: whoever it reached comes after it in user id order
    checkpoint = at_kill["targeting_progress"]
    late = [uid for uid, times in history.items() if times and max(times) >= killed_ms]
    assert late and all(uid > checkpoint for uid in late), "the second run redid users before the checkpoint"
    final = await services.db.offers.find_one({"_id": oid})
    assert final["pushed"] == len(audience)
    report(f"audience drill: visitors offer to {len(audience)} of {USERS} positioned users; {victim.log.stem} killed "
           f"after {partial} (checkpoint at {checkpoint[:8]}…); {survivor.log.stem} got the message back and "
           f"finished {done_s:.1f}s after the kill; 0 missing, 0 twice, 0 outside the audience")
