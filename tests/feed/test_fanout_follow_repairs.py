"""The author's own feed keeps their held posts, a retried follow repairs its backfill, the batch
prefetcher cleans up after an early stop, and keyset cursors with a foreign id are a 400."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from bson import ObjectId

from feed import fanout, follows
from feed.fanout import fanout_post
from feed.posts import build_post, insert_post
from solomo.core.errors import BadRequest
from solomo.core.keys import home_key
from solomo.core.pagination import CursorCodec, Position
from tests.feed.helpers import events, fanned_out, follow, home_members, ids, post, principal, ready_home
from tests.support import random_point, register


async def test_held_posts_stay_in_the_authors_own_home_feed(client, services, celery_worker):
    author, fan = await register(client), await register(client)
    await follow(client, fan, author)
    await ready_home(client, services, author)
    await ready_home(client, services, fan)

    held = await build_post(services, principal(author), "held for review")
    held["status"] = "pending_review"
    await insert_post(services, held)
    assert await fanout_post(services, held["_id"]) == "retracted"
    assert str(held["_id"]) in await home_members(services, author)
    assert str(held["_id"]) not in await home_members(services, fan)
    assert str(held["_id"]) in await ids(client, author)
    assert str(held["_id"]) not in await ids(client, fan)

    shown = await post(client, author, "published, then hidden")
    await fanned_out(services, shown["id"])
    assert shown["id"] in await home_members(services, fan)
    await services.db.posts.update_one({"_id": ObjectId(shown["id"])}, {"$set": {"status": "hidden"}})
    await fanout_post(services, ObjectId(shown["id"]))
    assert shown["id"] in await home_members(services, author)
    assert shown["id"] not in await home_members(services, fan)
    await services.db.posts.update_one({"_id": ObjectId(shown["id"])}, {"$set": {"status": "removed"}})
    await fanout_post(services, ObjectId(shown["id"]))
    assert shown["id"] not in await home_members(services, author)


async def test_retried_follow_repairs_a_lost_backfill(client, services, celery_worker):
    target, reader = await register(client), await register(client)
    old = await post(client, target, "written before the follow")
    await fanned_out(services, old["id"])
    await ready_home(client, services, reader)
    assert await follows.follow(services, ObjectId(reader.id), "user", ObjectId(target.id)) is True
    # the follow committed but its backfill never reached Redis (it failed after the commit)
    await services.redis.zrem(home_key(reader.id), old["id"])
    assert old["id"] not in await home_members(services, reader)
    await follow(client, reader, target)  # the client's retry: already following, 204
    assert old["id"] in await home_members(services, reader)
    notes = [e for e in await events(services, target, "notification") if e["data"]["kind"] == "follow"]
    assert len(notes) == 1  # the retry does not notify again


async def test_the_first_followers_are_read_before_they_are_asked_for_and_a_dropped_read_is_cancelled():
    """The fan-out's first follower read runs beside the pull check (fanout._reach_audiences); a pull
    author's read, never asked for, is cancelled and its cursor closed when the batches are closed."""
    started, closed = asyncio.Event(), asyncio.Event()
    never = asyncio.Event()

    async def batches():
        try:
            started.set()
            await never.wait()  # a read still running when the pull check answers "pull"
            yield ObjectId(), [ObjectId()]
        finally:
            closed.set()

    ahead = fanout._ReadAhead(batches())
    await asyncio.wait_for(started.wait(), 5)  # nobody iterated: the read started on its own
    await ahead.aclose()
    assert closed.is_set()
    pending = [t for t in asyncio.all_tasks() if "batches" in repr(t.get_coro()) and not t.done()]
    assert pending == []


async def test_a_pull_authors_post_reaches_no_followers_feed_and_a_pushed_one_all(services):
    """Both outcomes of the pull check, with the first followers read beside it."""
    from feed.timeline import MARKER, READY

    author, popular = ObjectId(), ObjectId()
    followers = [ObjectId() for _ in range(7)]
    await services.db.users.insert_many([
        {"_id": oid, "username": f"u{oid}", "username_lower": f"u{oid}", "followers_count": 7, **extra}
        for oid, extra in ((author, {}), (popular, {"feed_pull": True}))])
    await services.db.follows.insert_many([{"follower_id": f, "target_type": "user", "target_id": t, "created_ms": 0}
                                           for t in (author, popular) for f in followers])
    for f in followers:
        await services.redis.zadd(home_key(f), {MARKER: READY})
    posts = {}
    for who in (author, popular):
        post_id = ObjectId()
        await services.db.posts.insert_one({"_id": post_id, "author_id": who, "status": "published", "text": "x",
                                            "created_ms": 1_700_000_000_000, "fanout": "pending", "topic_keys": []})
        assert await fanout.fanout_post(services, post_id) == "published"
        posts[who] = str(post_id)
    for f in followers:
        held = await services.redis.zrange(home_key(f), 0, -1)
        assert posts[author] in held and posts[popular] not in held  # the readers pull it
    assert [t for t in asyncio.all_tasks() if "follower_batches" in repr(t.get_coro()) and not t.done()] == []


async def test_the_last_audience_is_marked_done_by_the_fan_outs_own_finish(services, monkeypatch):
    """A post's last audience writes no "done" checkpoint of its own (the finish, one write later,
    marks the whole fan-out done); an audience followed by another still does, so a resumed run
    skips it."""
    checkpoints: list[tuple[str, object]] = []
    real = fanout._checkpoint

    async def counted(services, post, field, value):
        checkpoints.append((field, value))
        return await real(services, post, field, value)

    monkeypatch.setattr(fanout, "_checkpoint", counted)
    owner, store_id, reader = ObjectId(), ObjectId(), ObjectId()
    await services.db.users.insert_one({"_id": owner, "username": f"u{owner}", "username_lower": f"u{owner}",
                                        "followers_count": 1})
    await services.db.stores.insert_one({"_id": store_id, "owner_id": owner, "name": "s", "followers_count": 1})
    await services.db.follows.insert_many([
        {"follower_id": reader, "target_type": kind, "target_id": target, "created_ms": 0}
        for kind, target in (("user", owner), ("store", store_id))])
    for store_post in (False, True):
        checkpoints.clear()
        post_id = ObjectId()
        await services.db.posts.insert_one({
            "_id": post_id, "author_id": owner, "status": "published", "text": "x", "created_ms": 1_700_000_000_000,
            "fanout": "pending", "topic_keys": [], "store_id": store_id if store_post else None,
            "store_owner_post": store_post})
        assert await fanout.fanout_post(services, post_id) == "published"
        assert checkpoints == ([("fanout_progress.user", "done")] if store_post else [])
        doc = await services.db.posts.find_one({"_id": post_id})
        assert doc["fanout"] == "done" and "fanout_progress" not in doc


async def test_prefetched_cleans_up_when_the_consumer_stops_early():
    closed = asyncio.Event()
    never = asyncio.Event()

    async def batches():
        try:
            yield ObjectId(), [ObjectId()]
            await never.wait()  # the prefetch of the second batch is still waiting when the consumer stops
            yield ObjectId(), [ObjectId()]
        finally:
            closed.set()

    stream = fanout._ReadAhead(batches())
    async with contextlib.aclosing(stream):
        async for _ in stream:
            break
    assert closed.is_set()
    pending = [t for t in asyncio.all_tasks() if "batches" in repr(t.get_coro()) and not t.done()]
    assert pending == []


def test_a_position_cursor_refuses_a_foreign_id():
    codec, oid = CursorCodec("secret"), ObjectId()
    assert codec.decode_position(codec.encode([12.5, str(oid)])) == Position(12.5, oid)
    for bad in ("nope", "0" * 23, ""):
        with pytest.raises(BadRequest) as err:
            codec.decode_position(codec.encode([1.0, bad]))
        assert err.value.code == "invalid_cursor"


async def test_cursors_with_a_foreign_id_are_400_not_500(client, services):
    user = await register(client)
    bad = services.cursors.encode([1700000000000.0, "not-an-object-id"])
    lat, lng = random_point()
    for path, params in ((f"/v1/users/{user.id}/followers", {}), (f"/v1/users/{user.id}/following", {}),
                         ("/v1/me/vouchers", {}), ("/v1/offers/nearby", {"lat": lat, "lng": lng})):
        resp = await client.get(path, params={**params, "cursor": bad}, headers=user.headers)
        assert resp.status_code == 400, (path, resp.text)
        assert resp.json()["error"]["code"] == "invalid_cursor"
