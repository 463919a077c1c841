"""SLOW (~60 s each): a real ``celery worker`` process is SIGKILLed in the middle of a fan-out to 20,000
followers (read through the index, or from the audience's follower pages), restarted, and the
fan-out finishes from its checkpoint. Counted where a duplicate or a
loss would show (a sorted set holds a member once, so "every feed holds the post" alone cannot fail):

- ``feed.new`` events per online follower: in each one's history stream (``keys.event_history``) (2,000
  followers held online by a simulated API process) and as frames received by real WebSocket
  clients of the live uvicorn server (accounts spread over the first few hundred followers, where
  the kill lands), held open through the whole drill;
- mention notifications per mentioned user (history and frames), the topic's trend counts (posts
  per topic, posts per author), and the post's ``like_count`` against its like documents while
  followers like it during the outage and the resumed run;
- the resume: the checkpoint (``fanout_progress.user``) is read from MongoDB just before the restart; every
  50th follower had no feed (an inactive reader) and all of them get one (READY, empty) before the
  restart. A resumed run writes only past the checkpoint, so those before it stay without the post
  while those after it get it; a run that started over would fill them all. The ``feed.new`` events
  recorded after the restart are likewise only for online followers past the checkpoint.

The seeding, the worker's environment and the read-back are shared with the other fan-out drills
(tests/faults/fanout_drill.py). The worker listens on its own broker database (db 2 of the session's
broker Redis), so the in-process test worker of other tests cannot take the task; it fans out in
small batches (``SOLOMO_FANOUT_CHUNK=20``) so the kill lands mid-way, and with a 1 s sweep age so
that beat's 15 s schedule picks the post up on its first run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from bson import ObjectId

from feed import followerpages
from feed.fanout import CHECKPOINT_EVERY
from feed.posts import build_post, insert_post
from feed.timeline import MARKER
from feed.trends import bucket_of
from solomo.core import tasknames
from solomo.core.keys import event_history, trend_authors, trend_posts
from solomo.core.presence import Presence
from solomo.core.queue import TaskQueue
from solomo.core.settings import load_settings
from tests.faults.fanout_drill import (
    clear_broker,
    drill_broker,
    drop_keys,
    event_times,
    feeds,
    holders,
    make_ready,
    seed_audience,
    worker_env,
)
from tests.feed.helpers import principal
from tests.realtime.wsclient import open_ws
from tests.support import Account, WorkerProcess, make_account, register, wait_until
from tests.support import online as online_now
from workers.app import make_celery

BROKER_DB = 2

FOLLOWERS = 20_000
CHUNK = 20
ONLINE_EVERY = 10  # fake followers at positions 0, 10, 20 … are online (a simulated API process holds them)
PROBE_EVERY, PROBE_AT = 50, 25  # followers at 25, 75, 125 … have no feed until just before the restart
SOCKET_EVERY, SOCKET_AT, SOCKETS = 15, 7, 24  # real accounts with sockets at 7, 22, 37 … 352
KILL_AFTER = CHECKPOINT_EVERY * CHUNK + CHUNK // 2  # an online follower in the batch after the first checkpoint
PAGES_KILL_AFTER = 2200
"""From follower pages, a checkpoint is the last page wholly written (2,000 followers each): the
first one (page 0) is written some batches past follower 2,000, and this online follower is past it."""
MENTIONED = 3  # the first sockets' owners are mentioned in the post
LIKERS = 5
pytestmark = pytest.mark.slow


class Sockets:
    """Real WebSocket clients of the live server; every frame each one receives, in order."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: list[Any] = []

    async def open(self, base_url: str, accounts: list[Account]) -> None:
        for acct in accounts:
            ws = await open_ws(base_url, acct.token)
            self.frames[acct.id] = []
            self._conns.append(ws)
            self._tasks.append(asyncio.create_task(self._read(ws, self.frames[acct.id])))

    @staticmethod
    async def _read(ws: Any, into: list[dict[str, Any]]) -> None:
        async for raw in ws:
            into.append(json.loads(raw))

    def count(self, uid: str, type: str, **data: str) -> int:
        return sum(1 for f in self.frames[uid] if f.get("type") == type
                   and all(f.get("data", {}).get(k) == v for k, v in data.items()))

    async def close(self) -> None:
        for ws in self._conns:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.mark.parametrize("read", ["index", "pages"])
async def test_killed_worker_mid_fanout_resumes_and_counts_once(client, services, settings, live_server, tmp_path,
                                                                read):
    kill_after = KILL_AFTER if read == "index" else PAGES_KILL_AFTER
    author = await register(client)
    aid = ObjectId(author.id)
    real = [await make_account(services, "user") for _ in range(SOCKETS)]
    real_at = {SOCKET_AT + i * SOCKET_EVERY: acct for i, acct in enumerate(real)}
    followers = [ObjectId(real_at[i].id) if i in real_at else ObjectId() for i in range(FOLLOWERS)]
    probes = [i for i in range(FOLLOWERS) if i % PROBE_EVERY == PROBE_AT]
    online_fake = [i for i in range(FOLLOWERS) if i % ONLINE_EVERY == 0]
    online = {str(followers[i]): i for i in online_fake} | {a.id: i for i, a in real_at.items()}
    assert not set(probes) & (set(online_fake) | set(real_at)) and not set(online_fake) & set(real_at)
    assert kill_after in online_fake and kill_after not in probes
    probe_set = set(probes)
    # active readers: their feeds exist (the probes' do not, yet)
    audience = await seed_audience(services, aid, followers, ready=lambda i: i not in probe_set)
    position = audience.position
    if read == "pages":  # the audience's follower pages are read (and its checkpoints are page numbers)
        assert await followerpages.build(services, "user", aid)

    # 2,000 followers online in a simulated API process (heartbeating, so no sweep drops them)
    sim = Presence(services.redis, f"drill-{uuid.uuid4().hex[:8]}")
    await sim.apply({str(followers[i]): True for i in online_fake})

    async def heartbeat() -> None:
        while True:
            await sim.heartbeat()
            await asyncio.sleep(5)

    beating = asyncio.create_task(heartbeat())
    sockets = Sockets()
    await sockets.open(live_server, real)

    async def all_online() -> bool:
        return all(await online_now(services, *online))

    await wait_until(all_online, timeout=15)

    broker = drill_broker(settings, BROKER_DB)
    await clear_broker(broker)
    worker = WorkerProcess(worker_env(broker, chunk=CHUNK, max_followers=FOLLOWERS * 10), tmp_path)
    queue = TaskQueue(make_celery(load_settings(broker_url=broker)))
    mentioned = real[:MENTIONED]
    tag = f"drill{uuid.uuid4().hex[:8]}"
    text = f"to twenty thousand #{tag} " + " ".join(f"@{m.username}" for m in mentioned)
    doc = await build_post(services, principal(author), text)
    assert len(doc["mention_ids"]) == MENTIONED and len(doc["topics"]) == 1
    await insert_post(services, doc)
    pid, member = doc["_id"], str(doc["_id"])

    async def like(acct: Account) -> None:
        for _ in range(2):  # twice: a like is idempotent, the counter must not move the second time
            resp = await client.post(f"/v1/posts/{member}/like", headers=acct.headers)
            assert resp.status_code == 200, resp.text

    try:
        worker.start()
        await queue.send(tasknames.FANOUT_POST, member)

        async def under_way() -> bool:
            # the first batch after the first checkpoint has been announced: the kill lands between
            # two checkpoints, after work the resumed run will have to redo
            return bool(await services.redis.xlen(event_history(followers[kill_after])))

        await wait_until(under_way, timeout=30, interval=0.002)
        worker.kill()
        partial = await holders(services.redis, followers, member)
        await make_ready(services.redis, [followers[i] for i in probes])  # readers who come back now
        await asyncio.gather(*[like(a) for a in real[-LIKERS:-LIKERS + 2]])  # while no worker runs
        # the checkpoint the restarted worker will find, read only now: a checkpoint write the killed
        # worker sent just before the kill is still applied by mongod after it. Read right at the kill,
        # it once was behind the one the resumed run started from (a loaded CI run: followers between
        # the two were taken for skipped)
        post = await services.db.posts.find_one({"_id": pid})
        assert post["fanout"] == "pending", "the fan-out finished before the kill: nothing was proved"
        checkpoint = post["fanout_progress"]["user"]
        if read == "index":
            assert isinstance(checkpoint, ObjectId), checkpoint
            resume_at = position[checkpoint] + 1  # followers [0, resume_at) are done for good
        else:  # the last page wholly written (pages are full: built from the seeded follows)
            assert isinstance(checkpoint, int) and checkpoint >= 0, checkpoint
            resume_at = (checkpoint + 1) * followerpages.PAGE_SIZE
        assert resume_at <= partial + len([p for p in probes if p < resume_at]) and partial < FOLLOWERS
        restarted_ms = int(time.time() * 1000)
        started = time.monotonic()
        worker.start()  # the killed task's message is unacked; beat's sweeper re-sends the post
        await asyncio.gather(*[like(a) for a in real[-LIKERS + 2:]])  # during the resumed run

        async def done() -> bool:
            post = await services.db.posts.find_one({"_id": pid}, {"fanout": 1})
            return post["fanout"] == "done"

        await wait_until(done, timeout=45, interval=0.2)
        finished_s = time.monotonic() - started
        await asyncio.sleep(3)  # anything a second run would add (a re-delivered message) shows up too

        async def frames_in() -> bool:
            return all(sockets.count(a.id, "feed.new", post_id=member) for a in real)

        await wait_until(frames_in, timeout=15)
        await asyncio.sleep(1)
    finally:
        worker.stop()
        await sockets.close()
        beating.cancel()
        await sim.leave()

    # every active reader holds the post, once
    got = await feeds(services.redis, followers)
    active = [got[i] for i in range(FOLLOWERS) if i not in probe_set]
    assert all(Counter(m)[member] == 1 and len(m) == 2 for m in active), "a reader's feed lacks the post"

    # the resume started at the checkpoint: probes before it were not rewritten, those after it were
    before = [i for i in probes if i < resume_at]
    after = [i for i in probes if i >= resume_at]
    assert before and after
    assert all(got[i] == [MARKER] for i in before), "the resumed run redid followers before its checkpoint"
    assert all(got[i] == [MARKER, member] for i in after), "the resumed run skipped followers after its checkpoint"

    # feed.new, per online follower: recorded once in the history, delivered once to each socket
    history = await event_times(services.redis, list(online), "feed.new", post_id=member)
    per_user = {uid: len(times) for uid, times in history.items()}
    assert all(per_user.values()), [uid for uid, n in per_user.items() if not n][:5]
    after_restart = {uid for uid, times in history.items() if max(times) >= restarted_ms}
    assert all(online[uid] >= resume_at for uid in after_restart), "events re-sent to followers before the checkpoint"
    for acct in real:
        assert sockets.count(acct.id, "feed.new", post_id=member) == per_user[acct.id], acct.id
    # a run resumed at the checkpoint redoes the batches after it that the killed run had already done
    # (at most CHECKPOINT_EVERY); the readers there must still be told once (the per-post dedupe set)
    twice = {uid: online[uid] for uid, n in per_user.items() if n > 1}
    assert not twice, f"{len(twice)} online followers got feed.new twice, at {sorted(twice.values())[:10]}"

    # mentions: one notification each, in the history and on the socket (these accounts are
    # mentioned in this post only, so its kind names it)
    mentions = await event_times(services.redis, [m.id for m in mentioned], "notification", kind="mention")
    assert {uid: len(t) for uid, t in mentions.items()} == {m.id: 1 for m in mentioned}
    assert [sockets.count(m.id, "notification", kind="mention") for m in mentioned] == [1] * MENTIONED

    # trends: the post counted once for its topic and author
    key, bucket = doc["topics"][0]["key"], bucket_of(doc["created_ms"])
    assert await services.redis.hget(trend_posts(bucket), key) == "1"
    assert await services.redis.hgetall(trend_authors(bucket, key)) == {author.id: "1"}

    # counters: one like each, counted once
    stored = await services.db.posts.find_one({"_id": pid}, {"like_count": 1})
    assert stored["like_count"] == await services.db.likes.count_documents({"post_id": pid}) == LIKERS

    print(f"\nkilled after {partial} of {FOLLOWERS} feeds, checkpoint at follower {resume_at}; finished "
          f"{finished_s:.1f}s after restart; feed.new per online follower: {dict(Counter(per_user.values()))} "
          f"over {len(online)} ({len(after_restart)} recorded after the restart); "
          f"probes kept empty {len(before)}, filled {len(after)}; {len(twice)} duplicates in the redo window")
    await drop_keys(services.redis, [*audience.keys, *(event_history(u) for u in online)])

