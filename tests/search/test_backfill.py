"""The start-up backfill: documents without keys get them, published posts their topic counts;
running it again changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

from bson import ObjectId

from search.backfill import backfill_search
from solomo.core.searchkeys import post_keys, store_keys
from tests.checkins.helpers import new_store
from tests.feed.helpers import fanned_out, post
from tests.search.test_search_api import random_point
from tests.support import register


async def test_backfill_gives_old_documents_their_keys_once(client: Any, services: Any, celery_worker: Any) -> None:
    t = "zq" + uuid.uuid4().hex[:8]
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant, *random_point(), name=f"人民广场咖啡 {t}")
    written = await post(client, merchant, f"#{t}旧话题# 老咖啡")
    # the post's fan-out counts its topic: done before the count is taken away below, or (with a
    # worker left running by an earlier test of this process) it could land between the two writes
    await fanned_out(services, written["id"])
    sid, pid = ObjectId(store["id"]), ObjectId(written["id"])
    # as written before search existed: no keys, topics never counted
    await services.db.stores.update_one({"_id": sid}, {"$unset": {"search_keys": ""}})
    await services.db.users.update_one({"_id": ObjectId(merchant.id)}, {"$unset": {"search_keys": ""}})
    await services.db.posts.update_one({"_id": pid}, {"$unset": {"search_keys": "", "topics_counted": ""}})
    await services.db.topic_counts.delete_many({"key": f"{t}旧话题"})

    assert await backfill_search(services, force=True) >= 3
    assert (await services.db.stores.find_one({"_id": sid}))["search_keys"] == store_keys(f"人民广场咖啡 {t}")
    assert (await services.db.posts.find_one({"_id": pid}))["search_keys"] == post_keys(written["text"])
    user = await services.db.users.find_one({"_id": ObjectId(merchant.id)})
    assert "u:" + merchant.username.lower() in user["search_keys"]
    topic = await services.db.topic_counts.find_one({"key": f"{t}旧话题"})
    assert topic["post_count"] == 1
    resp = await client.get("/v1/search/stores", params={"q": f"rmgc {t}"}, headers=merchant.headers)
    assert [s["id"] for s in resp.json()["items"]] == [store["id"]]

    await backfill_search(services, force=True)  # idempotent: nothing counted twice
    assert (await services.db.topic_counts.find_one({"key": f"{t}旧话题"}))["post_count"] == 1
    assert await backfill_search(services) == 0  # the marker: later start-ups skip the scans


async def test_topic_counts_converge_under_concurrent_syncs(client: Any, services: Any) -> None:
    """The fan-out may run twice or concurrently: the count moves once per status change."""
    import asyncio

    from search.topics import sync_post

    t = "zq" + uuid.uuid4().hex[:8]
    author = await register(client)
    written = await post(client, author, f"#{t}并发#")
    pid = ObjectId(written["id"])
    await asyncio.gather(*(sync_post(services, pid) for _ in range(6)))
    assert (await services.db.topic_counts.find_one({"key": f"{t}并发"}))["post_count"] == 1
    await services.db.posts.update_one({"_id": pid}, {"$set": {"status": "removed"}})
    await asyncio.gather(*(sync_post(services, pid) for _ in range(6)))
    assert (await services.db.topic_counts.find_one({"key": f"{t}并发"}))["post_count"] == 0
    resp = await client.get("/v1/search/topics", params={"q": t}, headers=author.headers)
    assert resp.json()["items"] == []  # a topic with no published post is not offered


async def test_a_sync_trusts_its_callers_read_and_the_next_read_corrects_it(client: Any, services: Any,
                                                                             celery_worker: Any) -> None:
    """The fan-out passes the post it read at the start of its round: when that read's flag agrees
    with its status nothing is read or written (a status change after it is met by the fan-out's
    next round, which reads the post again)."""
    from search.topics import sync_post

    t = "zr" + uuid.uuid4().hex[:8]
    author = await register(client)
    written = await post(client, author, f"#{t}旧读#")
    await fanned_out(services, written["id"])  # counted by the fan-out, which is then out of the way
    pid = ObjectId(written["id"])
    as_read = await services.db.posts.find_one({"_id": pid})
    assert as_read["topics_counted"] is True
    await services.db.posts.update_one({"_id": pid}, {"$set": {"status": "removed"}})
    assert await sync_post(services, pid, as_read) is False  # the caller's read: nothing to do
    assert (await services.db.topic_counts.find_one({"key": f"{t}旧读"}))["post_count"] == 1
    assert await sync_post(services, pid) is True  # read again: uncounted
    assert (await services.db.topic_counts.find_one({"key": f"{t}旧读"}))["post_count"] == 0
