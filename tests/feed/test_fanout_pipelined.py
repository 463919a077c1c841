"""The fan-out sends a batch's feed writes while the previous batch's are still in Redis, and its
checkpoint never runs ahead of writes that have not completed: held writes of one batch leave the
checkpoint before it while the next batch is already written; a failed batch fails the task with
nothing left running, and the re-run finishes every feed. A round's topic counts (a transaction on
the post) run beside its reads and writes, and no checkpoint is written before they are in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId

import feed.fanout
import search.topics
from feed.fanout import fanout_post
from feed.follows import follower_batches
from feed.timeline import Timelines
from solomo.core import tasknames
from tests.faults.fanout_drill import holders, make_ready, seed_audience
from tests.heldtasks import HeldTasks
from tests.support import register

CHUNK = 4
BATCHES = 5


@pytest.fixture
def held(hold_tasks) -> HeldTasks:
    return hold_tasks()


async def _posted(client, services, held: HeldTasks, monkeypatch) -> tuple[str, list[ObjectId], list[Any]]:
    monkeypatch.setattr(services.settings, "fanout_chunk", CHUNK)
    monkeypatch.setattr(feed.fanout, "CHECKPOINT_EVERY", 1)
    author = await register(client)
    followers = [ObjectId() for _ in range(CHUNK * BATCHES)]
    audience = await seed_audience(services, ObjectId(author.id), followers)
    created = await client.post("/v1/posts", json={"text": "pipelined"}, headers=author.headers)
    assert created.status_code == 201, created.text
    post_id = await held.take(tasknames.FANOUT_POST)
    return post_id, followers, audience.follow_ids


async def _progress(services, post_id: str) -> Any:
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    return (doc.get("fanout_progress") or {}).get("user"), doc["fanout"]


async def test_held_writes_hold_the_checkpoint_while_the_next_batch_is_written(client, services, held,
                                                                              monkeypatch):
    post_id, followers, follow_ids = await _posted(client, services, held, monkeypatch)
    real = Timelines.add_to_homes
    release, second_started = asyncio.Event(), asyncio.Event()
    calls = 0

    async def add_to_homes(self: Timelines, owners: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second batch's writes wait until the test lets them finish
            second_started.set()
            await release.wait()
        return await real(self, owners, *args)

    monkeypatch.setattr(Timelines, "add_to_homes", add_to_homes)
    run = asyncio.create_task(fanout_post(services, ObjectId(post_id)))
    await asyncio.wait_for(second_started.wait(), 10)
    third = followers[2 * CHUNK:3 * CHUNK]
    for _ in range(200):  # the third batch is written meanwhile (bounded wait)
        if await holders(services.redis, third, post_id) == CHUNK:
            break
        await asyncio.sleep(0.01)
    assert await holders(services.redis, third, post_id) == CHUNK
    assert await holders(services.redis, followers[CHUNK:2 * CHUNK], post_id) == 0
    assert await _progress(services, post_id) == (follow_ids[CHUNK - 1], "pending")  # not past batch 1
    assert calls == 3  # and no further: two batches' writes in flight at most
    release.set()
    assert await asyncio.wait_for(run, 10) == "published"
    assert await holders(services.redis, followers, post_id) == len(followers)
    assert await _progress(services, post_id) == (None, "done")


async def test_a_failed_batch_fails_the_run_behind_its_checkpoint_and_the_rerun_finishes(client, services, held,
                                                                                      monkeypatch):
    post_id, followers, follow_ids = await _posted(client, services, held, monkeypatch)
    real = Timelines.add_to_homes
    calls = 0
    finished: list[int] = []

    async def add_to_homes(self: Timelines, owners: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        mine = calls
        if mine == 2:
            raise ConnectionError("Redis went away")
        result = await real(self, owners, *args)
        finished.append(mine)
        return result

    monkeypatch.setattr(Timelines, "add_to_homes", add_to_homes)
    with pytest.raises(ConnectionError):
        await fanout_post(services, ObjectId(post_id))
    assert finished == [1, 3]  # the batch sent beside the failed one completed before the run ended
    assert await _progress(services, post_id) == (follow_ids[CHUNK - 1], "pending")
    monkeypatch.setattr(Timelines, "add_to_homes", real)
    assert await fanout_post(services, ObjectId(post_id)) == "published"
    assert await holders(services.redis, followers, post_id) == len(followers)
    assert await _progress(services, post_id) == (None, "done")


async def test_follower_batches_start_short_then_full_in_follow_order_and_resume(services):
    author = ObjectId()
    followers = [ObjectId() for _ in range(23)]
    audience = await seed_audience(services, author, followers)
    got = [(last, ids) async for last, ids in follower_batches(services, "user", author, 5, first=2)]
    assert [len(ids) for _, ids in got] == [2, 5, 5, 5, 5, 1]
    assert [i for _, ids in got for i in ids] == [str(f) for f in followers]  # strings, in follow order
    assert [last for last, _ in got] == [audience.follow_ids[i] for i in (1, 6, 11, 16, 21, 22)]
    resumed = [ids async for _, ids in follower_batches(services, "user", author, 5, after=got[1][0], first=2)]
    assert [len(ids) for ids in resumed] == [2, 5, 5, 4]
    assert [i for ids in resumed for i in ids] == [str(f) for f in followers[7:]]
    assert [ids async for _, ids in follower_batches(services, "user", ObjectId(), 5, first=2)] == []


async def test_a_rounds_checkpoints_wait_for_its_topic_counts_and_its_reads_and_writes_do_not(
        client, services, held, monkeypatch):
    monkeypatch.setattr(services.settings, "fanout_chunk", CHUNK)
    monkeypatch.setattr(feed.fanout, "CHECKPOINT_EVERY", 1)
    author = await register(client)
    followers = [ObjectId() for _ in range(CHUNK * BATCHES)]
    await seed_audience(services, ObjectId(author.id), followers)
    await make_ready(services.redis, [author.id])
    created = await client.post("/v1/posts", json={"text": "#咖啡# counted beside"}, headers=author.headers)
    assert created.status_code == 201, created.text
    post_id = await held.take(tasknames.FANOUT_POST)
    key = (await services.db.posts.find_one({"_id": ObjectId(post_id)}))["topic_keys"][0]
    real_sync = search.topics.sync_post
    counting, release = asyncio.Event(), asyncio.Event()

    async def sync_post(*args: Any) -> Any:  # the counts' transaction, held until the test lets it go
        counting.set()
        await release.wait()
        return await real_sync(*args)

    monkeypatch.setattr(search.topics, "sync_post", sync_post)
    run = asyncio.create_task(fanout_post(services, ObjectId(post_id)))
    await asyncio.wait_for(counting.wait(), 10)
    everyone = [author.id, *followers]
    written = 1 + 2 * CHUNK  # the author's feed and two batches: as many as may be in flight
    for _ in range(200):  # the reads and writes go on meanwhile (bounded wait)
        if await holders(services.redis, everyone, post_id) == written:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert await holders(services.redis, everyone, post_id) == written  # then the first checkpoint waits
    assert await _progress(services, post_id) == (None, "pending")  # and none is written
    assert not run.done()
    release.set()
    assert await asyncio.wait_for(run, 10) == "published"
    assert await holders(services.redis, everyone, post_id) == len(everyone)
    assert await _progress(services, post_id) == (None, "done")
    assert (await services.db.topic_counts.find_one({"key": key}))["post_count"] == 1
