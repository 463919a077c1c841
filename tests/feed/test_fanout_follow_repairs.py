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
from feed.timeline import MARKER, READY
from solomo.core.errors import BadRequest
from solomo.core.keys import home_key
from solomo.core.pagination import CursorCodec, Position
from tests.checkins.helpers import new_store
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


async def test_a_pull_authors_post_reaches_no_followers_feed_and_a_pushed_one_all(client, services):
    """Both outcomes of the pull check, with the first followers read beside it."""
    author, popular = await register(client), await register(client)
    readers = [await register(client) for _ in range(3)]
    for reader in readers:
        await services.redis.zadd(home_key(reader.id), {MARKER: READY})  # an active reader's feed
        await follow(client, reader, author)
        await follow(client, reader, popular)
    await services.db.users.update_one({"_id": ObjectId(popular.id)}, {"$set": {"feed_pull": True}})
    posts = {}
    for who in (author, popular):
        doc = await build_post(services, principal(who), f"hello from {who.username}")
        await insert_post(services, doc)
        assert await fanout_post(services, doc["_id"]) == "published"
        posts[who.id] = str(doc["_id"])
    for reader in readers:
        held = await home_members(services, reader)
        assert posts[author.id] in held and posts[popular.id] not in held  # the readers pull it
    assert [t for t in asyncio.all_tasks() if "follower_batches" in repr(t.get_coro()) and not t.done()] == []


async def test_the_last_audience_is_marked_done_by_the_fan_outs_own_finish(client, services, monkeypatch):
    """A post's last audience writes no "done" checkpoint of its own (the finish, one write later,
    marks the whole fan-out done); an audience followed by another still does, so a resumed run
    skips it."""
    checkpoints: list[tuple[str, object]] = []
    real = fanout._checkpoint

    async def counted(services, post, field, value):
        checkpoints.append((field, value))
        return await real(services, post, field, value)

    monkeypatch.setattr(fanout, "_checkpoint", counted)
    owner, reader = await register(client, "merchant"), await register(client)
    store = await new_store(client, owner)
    await services.redis.zadd(home_key(reader.id), {MARKER: READY})
    await follow(client, reader, owner)
    await follow(client, reader, store["id"], kind="stores")
    for store_post in (False, True):
        checkpoints.clear()
        doc = await build_post(services, principal(owner), "today's special" if store_post else "hello")
        if store_post:  # the owner's post about their store: the store's followers are its second audience
            doc.update(store_id=ObjectId(store["id"]), store_owner_post=True)
        await insert_post(services, doc)
        assert await fanout_post(services, doc["_id"]) == "published"
        assert checkpoints == ([("fanout_progress.user", "done")] if store_post else [])
        marked = await services.db.posts.find_one({"_id": doc["_id"]})
        assert marked["fanout"] == "done" and "fanout_progress" not in marked
        assert str(doc["_id"]) in await home_members(services, reader)


async def test_read_ahead_cleans_up_when_the_consumer_stops_early():
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
