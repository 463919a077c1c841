"""Home feeds through the real Celery worker: fan-out, unfollow, deletion, cursors, inactive
readers, hybrid fan-out, the outbox sweeper and a Redis flush."""

from __future__ import annotations

import asyncio

from bson import ObjectId

from feed.fanout import fanout_post, sweep_pending
from feed.home import rebuild_home
from feed.posts import build_post, insert_post
from solomo.core.keys import home_key
from tests.feed.helpers import (
    all_ids,
    events,
    fanned_out,
    follow,
    home_members,
    ids,
    post,
    principal,
    ready_home,
)
from tests.support import mark_offline, mark_online, register, wait_until


async def test_followers_get_posts_authors_see_their_own(client, services, celery_worker):
    author, fan, stranger = await register(client), await register(client), await register(client)
    for reader in (author, fan, stranger):
        await ready_home(client, services, reader)
    await follow(client, fan, author)
    p = await post(client, author, "hello followers")
    await fanned_out(services, p["id"])
    assert await home_members(services, fan) == [p["id"]]
    assert await home_members(services, author) == [p["id"]]
    assert await home_members(services, stranger) == []
    assert await ids(client, fan) == [p["id"]]
    assert await ids(client, stranger) == []
    item = (await client.get("/v1/feed/home", headers=fan.headers)).json()["items"][0]
    assert item["author"]["id"] == author.id and item["liked_by_me"] is False


async def test_online_followers_get_feed_new(client, services, celery_worker):
    author, online, offline = await register(client), await register(client), await register(client)
    for reader in (online, offline):
        await ready_home(client, services, reader)
        await follow(client, reader, author)
    await mark_online(services, online.id)
    try:
        p = await post(client, author, "ping")
        await fanned_out(services, p["id"])
    finally:
        await mark_offline(services, online.id)
    assert [e["data"] for e in await events(services, online, "feed.new")] == [{"post_id": p["id"]}]
    assert await events(services, offline, "feed.new") == []


async def test_store_owner_posts_reach_store_followers(client, services, celery_worker):
    owner, fan, passer = await register(client, role="merchant"), await register(client), await register(client)
    store = (await client.post("/v1/stores", json={"name": "Noodles", "lat": 3.0, "lng": 4.0},
                               headers=owner.headers)).json()
    await ready_home(client, services, fan)
    await follow(client, fan, store["id"], "stores")
    by_owner = await post(client, owner, "new noodles", store_id=store["id"])
    by_other = await post(client, passer, "I was at the store", store_id=store["id"])
    plain = await post(client, owner, "not about the store")
    for p in (by_owner, by_other, plain):
        await fanned_out(services, p["id"])
    assert await ids(client, fan) == [by_owner["id"]]
    store_posts = await all_ids(client, fan, f"/v1/stores/{store['id']}/posts")
    assert store_posts == [by_other["id"], by_owner["id"]]
    await client.delete(f"/v1/stores/{store['id']}/follow", headers=fan.headers)
    assert await ids(client, fan) == []


async def test_follow_backfills_and_unfollow_removes(client, services, celery_worker):
    author, other, fan = await register(client), await register(client), await register(client)
    old = [await post(client, author, f"old {i}") for i in range(3)]
    keep = await post(client, other, "stays")
    for p in [*old, keep]:
        await fanned_out(services, p["id"])
    await ready_home(client, services, fan)
    await follow(client, fan, other)
    await follow(client, fan, author)
    assert set(await home_members(services, fan)) == {p["id"] for p in [*old, keep]}
    assert await ids(client, fan) == [keep["id"], *[p["id"] for p in reversed(old)]]
    resp = await client.delete(f"/v1/users/{author.id}/follow", headers=fan.headers)
    assert resp.status_code == 204
    assert await home_members(services, fan) == [keep["id"]]
    assert await ids(client, fan) == [keep["id"]]


async def test_deleted_post_leaves_every_feed_and_online_holders_hear(client, services, celery_worker):
    author = await register(client)
    fans = [await register(client) for _ in range(3)]
    for fan in fans:
        await ready_home(client, services, fan)
        await follow(client, fan, author)
    p = await post(client, author, "oops #deleteme")
    await fanned_out(services, p["id"])
    for fan in fans:
        assert await home_members(services, fan) == [p["id"]]
    await mark_online(services, fans[0].id)
    try:
        assert (await client.delete(f"/v1/posts/{p['id']}", headers=author.headers)).status_code == 204
        await fanned_out(services, p["id"])
    finally:
        await mark_offline(services, fans[0].id)
    for fan in fans:
        assert await home_members(services, fan) == []
        assert await ids(client, fan) == []
    assert await home_members(services, author) == []
    assert await services.redis.zscore("topic:deleteme", p["id"]) is None
    assert [e["data"] for e in await events(services, fans[0], "post.deleted")] == [{"post_id": p["id"]}]
    assert await events(services, fans[1], "post.deleted") == []


async def test_retract_and_restore_for_moderation(client, services, celery_worker):
    author, fan = await register(client), await register(client)
    await ready_home(client, services, author)
    await ready_home(client, services, fan)
    await follow(client, fan, author)
    p = await post(client, author, "controversial")
    await fanned_out(services, p["id"])
    pid = ObjectId(p["id"])
    await services.db.posts.update_one({"_id": pid}, {"$set": {"status": "hidden"}, "$inc": {"status_version": 1}})
    assert await fanout_post(services, pid) == "retracted"  # what fanout.retract runs
    assert await home_members(services, fan) == []
    assert await home_members(services, author) == [p["id"]]  # the author still sees a hidden post
    assert await ids(client, author) == [p["id"]] and await ids(client, fan) == []
    await services.db.posts.update_one({"_id": pid}, {"$set": {"status": "published"}, "$inc": {"status_version": 1}})
    assert await fanout_post(services, pid) == "published"  # what fanout.restore runs
    assert await home_members(services, fan) == [p["id"]]


async def test_cursor_stable_while_new_posts_arrive(client, services, celery_worker):
    author, fan = await register(client), await register(client)
    await ready_home(client, services, fan)
    await follow(client, fan, author)
    first = [await post(client, author, f"p{i}") for i in range(5)]
    for p in first:
        await fanned_out(services, p["id"])
    page1 = (await client.get("/v1/feed/home", params={"limit": 2}, headers=fan.headers)).json()
    newer = await post(client, author, "newer")
    await fanned_out(services, newer["id"])
    seen = [p["id"] for p in page1["items"]]
    cursor = page1["next_cursor"]
    while cursor:
        body = (await client.get("/v1/feed/home", params={"limit": 2, "cursor": cursor}, headers=fan.headers)).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
    assert seen == [p["id"] for p in reversed(first)]
    resp = await client.get("/v1/feed/home", params={"cursor": page1["next_cursor"][:-3] + "abc"},
                            headers=fan.headers)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_cursor"


async def test_inactive_follower_is_skipped_and_rebuilt_on_return(client, services, celery_worker):
    author, sleeper = await register(client), await register(client)
    await follow(client, sleeper, author)
    # never read (or expired after inactive_days): the fan-out does not write a feed for them
    assert await services.redis.exists(home_key(sleeper.id)) == 0
    p = await post(client, author, "while you slept")
    await fanned_out(services, p["id"])
    assert await services.redis.exists(home_key(sleeper.id)) == 0
    # the first read is served from MongoDB at once, and queues the rebuild
    assert await ids(client, sleeper) == [p["id"]]

    async def rebuilt() -> bool:
        return await services.redis.zscore(home_key(sleeper.id), "~") == 1

    await wait_until(rebuilt, timeout=15)
    assert await home_members(services, sleeper) == [p["id"]]
    assert 0 < await services.redis.ttl(home_key(sleeper.id)) <= services.settings.inactive_days * 86400


async def test_read_is_right_while_the_rebuild_runs(client, services):
    author, reader = await register(client), await register(client)
    await follow(client, reader, author)
    p1 = await build_post(services, principal(author), "one")
    await insert_post(services, p1)  # stored; its fan-out found no feed to write
    await fanout_post(services, p1["_id"])
    from feed.timeline import Timelines

    await Timelines(services.redis).begin_rebuild(home_key(reader.id))  # a rebuild is under way
    p2 = await build_post(services, principal(author), "two")
    await insert_post(services, p2)
    await fanout_post(services, p2["_id"])  # the fan-out writes into the building feed
    one, two = str(p1["_id"]), str(p2["_id"])
    assert await home_members(services, reader) == [two]
    assert await ids(client, reader) == [two, one]  # served from MongoDB meanwhile
    assert await rebuild_home(services, ObjectId(reader.id)) == 2
    assert await home_members(services, reader) == [two, one]
    assert await ids(client, reader) == [two, one]


async def test_hybrid_fanout_merges_big_authors_at_read_time(client, services, celery_worker):
    star, fan, small, other = (await register(client), await register(client), await register(client),
                               await register(client))
    await ready_home(client, services, fan)
    await ready_home(client, services, star)
    await ready_home(client, services, other)
    await follow(client, fan, star)
    await follow(client, fan, small)
    await follow(client, other, small)
    limit = services.settings.fanout_max_followers
    await services.db.users.update_one({"_id": ObjectId(star.id)}, {"$inc": {"followers_count": limit}})
    try:
        s1 = await post(client, star, "from the star")
        m1 = await post(client, small, "from a friend")
        for p in (s1, m1):
            await fanned_out(services, p["id"])
        assert await home_members(services, fan) == [m1["id"]]  # the star was not pushed
        assert await home_members(services, star) == [s1["id"]]  # but the star sees their own
        assert await ids(client, fan) == [m1["id"], s1["id"]]  # merged at read time
        # read at once, the two pages share the "which pull authors do I follow" query: each its own answer
        assert await asyncio.gather(ids(client, fan), ids(client, other)) == [[m1["id"], s1["id"]], [m1["id"]]]
        s2 = await post(client, star, "again")
        await fanned_out(services, s2["id"])
        assert await all_ids(client, fan, "/v1/feed/home", limit=1) == [s2["id"], m1["id"], s1["id"]]
    finally:
        await services.db.users.update_one({"_id": ObjectId(star.id)}, {"$inc": {"followers_count": -limit}})


async def test_fanout_is_idempotent(client, services):
    author, fan = await register(client), await register(client)
    await follow(client, fan, author)
    await services.redis.zadd(home_key(fan.id), {"~": 1})
    p = await build_post(services, principal(author), "twice #twice")
    await insert_post(services, p)
    for _ in range(3):
        assert await fanout_post(services, p["_id"]) == "published"
    assert await services.redis.zcard(home_key(fan.id)) == 2
    assert await services.redis.zscore(home_key(fan.id), str(p["_id"])) == p["created_ms"]
    doc = await services.db.posts.find_one({"_id": p["_id"]})
    assert doc["fanout"] == "done" and "fanout_progress" not in doc


async def test_sweeper_resends_lost_fanouts(client, services, celery_worker):
    author, fan = await register(client), await register(client)
    await ready_home(client, services, fan)
    await follow(client, fan, author)
    p = await build_post(services, principal(author), "the broker lost me")
    await insert_post(services, p)  # stored, never enqueued
    assert await sweep_pending(services, older_than_s=-1) >= 1  # -1: even a post written this millisecond
    await fanned_out(services, str(p["_id"]))
    assert await home_members(services, fan) == [str(p["_id"])]


async def test_redis_flush_loses_nothing(client, services, celery_worker):
    author, fan = await register(client), await register(client)
    await ready_home(client, services, fan)
    await follow(client, fan, author)
    posts = [await post(client, author, f"durable {i} #flushme") for i in range(4)]
    for p in posts:
        await fanned_out(services, p["id"])
    expected = [p["id"] for p in reversed(posts)]
    assert await ids(client, fan) == expected
    await services.redis.flushdb()  # the data db; the broker (db 1) survives
    assert await services.redis.exists(home_key(fan.id)) == 0
    assert await all_ids(client, fan, "/v1/feed/home", limit=3) == expected
    assert await all_ids(client, fan, "/v1/topics/flushme/posts", limit=3) == expected

    async def rebuilt() -> bool:
        return await services.redis.zscore(home_key(fan.id), "~") == 1

    await wait_until(rebuilt, timeout=15)
    assert await home_members(services, fan) == expected
    assert await ids(client, fan) == expected
