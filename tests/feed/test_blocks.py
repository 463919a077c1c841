"""Blocks and mutes (contract: Blocks and mutes): idempotent writes and their lists, follows removed
both ways with exact counters, 403 ``blocked`` on every interaction, posts walled off both ways,
home, local and topic feeds filtered while collecting (full pages, few reads, right cursors), mutes
one way only, the cap, and visibility restored by undoing.

Posts are written with the domain functions (``build_post`` + ``insert_post`` + ``fanout_post``) so
that many of them, in a known order, are in place without the per-user post rate limit or a worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from feed import blocks, localcells
from feed.blocks import Screen
from feed.fanout import fanout_post
from feed.home import read_home, rebuild_home
from feed.hydrate import PageLoader
from feed.posts import build_post, insert_post
from geo.cells import covering_grid
from geo.geojson import geo_point
from solomo.core.keys import shut_out_key
from tests.feed.helpers import all_ids, follow, home_members, ids, page, principal
from tests.support import Account, make_account, random_point, register


async def _posts(services: Any, author: Account, n: int, start_min: float, text: str = "p",
                 point: tuple[float, float] | None = None) -> list[str]:
    """``n`` published posts, fanned out, one a minute, the newest ``start_min`` minutes ago; newest first."""
    out = []
    for i in range(n):
        created = datetime.now(UTC) - timedelta(minutes=start_min + n - i)
        store = {"_id": ObjectId(), "location": geo_point(*point)} if point else None
        doc = await build_post(services, principal(author), f"{text} {i}", store=store, created_at=created)
        await insert_post(services, doc)
        await fanout_post(services, doc["_id"])
        out.append(str(doc["_id"]))
    return out[::-1]


async def _shut(client: Any, who: Account, kind: str, target: Account, method: str = "POST") -> Any:
    return await client.request(method, f"/v1/users/{target.id}/{kind}", headers=who.headers)


async def _counts(client: Any, account: Account) -> tuple[int, int]:
    body = (await client.get(f"/v1/users/{account.id}", headers=account.headers)).json()
    return body["followers_count"], body["following_count"]


async def _error(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code, resp.text


@pytest.mark.parametrize("kind", ["block", "mute"])
async def test_idempotent_with_list_relationship_and_bad_targets(client, services, kind):
    a, b, c = await register(client), await register(client), await register(client)
    collection, counter = ("blocks", "blocks_count") if kind == "block" else ("mutes", "mutes_count")
    for target in (b, b, c):
        assert (await _shut(client, a, kind, target)).status_code == 204
    owner_field = "blocker_id" if kind == "block" else "muter_id"
    assert await services.db[collection].count_documents({owner_field: ObjectId(a.id)}) == 2
    assert (await services.db.users.find_one({"_id": ObjectId(a.id)}))[counter] == 2
    listed = await page(client, a, f"/v1/me/{kind}s", limit=1)
    assert [u["id"] for u in listed["items"]] == [c.id] and listed["next_cursor"]  # newest first
    assert await all_ids(client, a, f"/v1/me/{kind}s", limit=1) == [c.id, b.id]
    rel = await page(client, a, f"/v1/users/{b.id}/relationship")
    assert rel == {"blocking": kind == "block", "muting": kind == "mute", "blocked_by": False}
    assert (await page(client, b, f"/v1/users/{a.id}/relationship"))["blocked_by"] is (kind == "block")
    assert await page(client, b, f"/v1/me/{kind}s") == {"items": [], "next_cursor": None}

    for _ in range(2):
        assert (await _shut(client, a, kind, b, "DELETE")).status_code == 204
    assert await all_ids(client, a, f"/v1/me/{kind}s") == [c.id]
    assert (await services.db.users.find_one({"_id": ObjectId(a.id)}))[counter] == 1

    moderator = await make_account(services, "moderator")
    await _error(await _shut(client, a, kind, a), 422, f"cannot_{kind}_self")
    await _error(await _shut(client, a, kind, a, "DELETE"), 422, f"cannot_{kind}_self")
    await _error(await _shut(client, a, kind, moderator), 422, f"cannot_{kind}_moderator")
    for path in (f"/v1/users/{'0' * 24}/{kind}", f"/v1/users/nope/{kind}"):
        await _error(await client.post(path, headers=a.headers), 404, "not_found")
    await _error(await client.get(f"/v1/me/{kind}s", params={"cursor": "forged"}, headers=a.headers),
                 400, "invalid_cursor")
    assert (await client.post(f"/v1/users/{b.id}/{kind}")).status_code == 401
    assert await all_ids(client, a, f"/v1/me/{kind}s") == [c.id]  # nothing written by the bad ones
    assert (await services.db.users.find_one({"_id": ObjectId(a.id)}))[counter] == 1


async def test_block_removes_follows_both_ways_with_counters_and_home_feeds(client, services):
    a, b, c = await register(client), await register(client), await register(client)
    await follow(client, a, b)
    await follow(client, b, a)
    await follow(client, c, a)
    b_posts = await _posts(services, b, 2, 10)
    a_posts = await _posts(services, a, 2, 5)
    for reader in (a, b):
        await rebuild_home(services, ObjectId(reader.id))
    assert set(b_posts) <= set(await home_members(services, a))
    assert set(a_posts) <= set(await home_members(services, b))

    assert (await _shut(client, a, "block", b)).status_code == 204
    assert await _counts(client, a) == (1, 0)  # c still follows a
    assert await _counts(client, b) == (0, 0)
    assert await services.db.follows.count_documents(
        {"$or": [{"follower_id": ObjectId(a.id), "target_id": ObjectId(b.id)},
                 {"follower_id": ObjectId(b.id), "target_id": ObjectId(a.id)}]}) == 0
    assert await home_members(services, a) == a_posts
    assert await home_members(services, b) == b_posts

    for follower, target in ((b, a), (a, b)):  # neither may follow the other while the block holds
        await _error(await client.post(f"/v1/users/{target.id}/follow", headers=follower.headers), 403, "blocked")
    assert await _counts(client, a) == (1, 0) and await _counts(client, b) == (0, 0)

    assert (await _shut(client, a, "block", b, "DELETE")).status_code == 204
    assert await _counts(client, a) == (1, 0)  # unblocking does not restore follows
    await follow(client, b, a)
    assert await _counts(client, a) == (2, 0)


async def test_block_racing_follow_leaves_no_follow(client, services):
    for _ in range(4):
        a, b = await register(client), await register(client)
        await asyncio.gather(client.post(f"/v1/users/{a.id}/follow", headers=b.headers), _shut(client, a, "block", b))
        assert await services.db.follows.count_documents({"follower_id": ObjectId(b.id)}) == 0
        assert await _counts(client, a) == (0, 0) and await _counts(client, b) == (0, 0)


async def test_interactions_between_blocked_users_are_403_and_posts_walled_off(client, services):
    a, b, c = await register(client), await register(client), await register(client)
    moderator = await make_account(services, "moderator")
    a_post = (await client.post("/v1/posts", json={"text": "mine"}, headers=a.headers)).json()
    b_post = (await client.post("/v1/posts", json={"text": "theirs"}, headers=b.headers)).json()
    c_post = (await client.post("/v1/posts", json={"text": "a third"}, headers=c.headers)).json()
    a_comment = (await client.post(f"/v1/posts/{c_post['id']}/comments", json={"text": "hi"},
                                   headers=a.headers)).json()
    assert (await client.post(f"/v1/posts/{a_post['id']}/like", headers=b.headers)).status_code == 200
    assert (await _shut(client, a, "block", b)).status_code == 204

    for actor, target_post in ((b, a_post), (a, b_post)):  # both ways
        await _error(await client.post(f"/v1/posts/{target_post['id']}/like", headers=actor.headers), 403, "blocked")
        await _error(await client.post(f"/v1/posts/{target_post['id']}/comments", json={"text": "x"},
                                       headers=actor.headers), 403, "blocked")
        await _error(await client.get(f"/v1/posts/{target_post['id']}", headers=actor.headers), 404, "not_found")
        await _error(await client.get(f"/v1/posts/{target_post['id']}/comments", headers=actor.headers),
                     404, "not_found")
        author = a if target_post is a_post else b
        assert await page(client, actor, f"/v1/users/{author.id}/posts") == {"items": [], "next_cursor": None}
    await _error(await client.post(f"/v1/posts/{c_post['id']}/comments",
                                   json={"text": "reply", "reply_to": a_comment["id"]}, headers=b.headers),
                 403, "blocked")
    assert (await client.post(f"/v1/posts/{c_post['id']}/comments", json={"text": "fine"},
                              headers=b.headers)).status_code == 201  # a third person's post is fine
    unliked = await client.delete(f"/v1/posts/{a_post['id']}/like", headers=b.headers)
    assert unliked.status_code == 200 and unliked.json()["like_count"] == 0  # taking a like back stays possible
    assert await services.db.comments.count_documents({"post_id": ObjectId(a_post["id"])}) == 0
    for viewer in (c, moderator):  # others see both as before
        assert (await client.get(f"/v1/posts/{a_post['id']}", headers=viewer.headers)).status_code == 200
        assert await ids(client, viewer, f"/v1/users/{b.id}/posts") == [b_post["id"]]

    assert (await _shut(client, a, "block", b, "DELETE")).status_code == 204
    assert (await client.get(f"/v1/posts/{a_post['id']}", headers=b.headers)).status_code == 200
    assert (await client.post(f"/v1/posts/{a_post['id']}/like", headers=b.headers)).status_code == 200
    assert await ids(client, a, f"/v1/users/{b.id}/posts") == [b_post["id"]]


async def test_home_feed_skips_muted_in_full_pages_with_few_reads(client, services):
    reader, friend, loud = await register(client), await register(client), await register(client)
    await follow(client, reader, friend)
    await follow(client, reader, loud)
    await follow(client, loud, reader)
    friend_posts = await _posts(services, friend, 25, 100, "friend")
    loud_posts = await _posts(services, loud, 60, 0, "loud")
    reader_post = await _posts(services, reader, 1, 200, "mine")
    await rebuild_home(services, ObjectId(reader.id))
    await rebuild_home(services, ObjectId(loud.id))
    assert (await ids(client, reader))[:20] == loud_posts[:20]  # builds the reader's cached screen

    assert (await _shut(client, reader, "mute", loud)).status_code == 204
    first = await page(client, reader, "/v1/feed/home", limit=20)
    assert [p["id"] for p in first["items"]] == friend_posts[:20] and first["next_cursor"]
    assert await all_ids(client, reader, "/v1/feed/home", limit=20) == friend_posts + reader_post
    # the muted user is not affected: the muter's posts still reach them
    assert reader_post[0] in await all_ids(client, loud, "/v1/feed/home", limit=50)

    # filtering while collecting: the 60 muted entries on top cost a few loads (doubling rounds), not one per entry
    loads = 0
    screen = Screen(services, ObjectId(reader.id))
    loader = PageLoader(services, ObjectId(reader.id), screen)

    async def counting(post_ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
        nonlocal loads
        loads += 1
        return await loader.load(post_ids)

    docs, nxt = await read_home(services, ObjectId(reader.id), None, 20, counting, screen)
    assert [str(d["_id"]) for d in docs] == friend_posts[:20] and nxt is not None
    assert loads <= 3

    assert (await _shut(client, reader, "mute", loud, "DELETE")).status_code == 204
    assert (await ids(client, reader))[:20] == loud_posts[:20]


async def test_local_and_topic_feeds_filtered_both_ways_with_full_pages(client, services):
    a, b, f = await register(client), await register(client), await register(client)
    lat, lng = random_point()
    topic = f"blk{ObjectId()}"
    f_posts = await _posts(services, f, 22, 100, f"#{topic}#", (lat, lng))
    b_posts = await _posts(services, b, 30, 0, f"#{topic}#", (lat, lng))
    a_posts = await _posts(services, a, 1, 200, f"#{topic}#", (lat, lng))
    local = {"lat": lat, "lng": lng, "radius_m": 1000}
    assert (await _shut(client, a, "block", b)).status_code == 204

    cells = covering_grid(lat, lng, 1000)
    assert cells is not None
    for warm in (False, True):  # MongoDB for a cold area, then the grid cells
        if warm:
            await localcells.rebuild_cells(services, [c.name for c in cells])
        first = await page(client, a, "/v1/feed/local", limit=20, **local)
        assert [p["id"] for p in first["items"]] == f_posts[:20] and first["next_cursor"]
        assert await all_ids(client, a, "/v1/feed/local", limit=20, **local) == f_posts + a_posts
        assert await all_ids(client, b, "/v1/feed/local", limit=20, **local) == b_posts + f_posts
    topic_path = f"/v1/topics/{topic}/posts"
    first = await page(client, a, topic_path, limit=20)
    assert [p["id"] for p in first["items"]] == f_posts[:20] and first["next_cursor"]
    assert await all_ids(client, a, topic_path, limit=20) == f_posts + a_posts
    assert await all_ids(client, b, topic_path, limit=20) == b_posts + f_posts

    assert (await _shut(client, a, "block", b, "DELETE")).status_code == 204  # visible again at once
    everything = b_posts + f_posts + a_posts
    assert await all_ids(client, a, "/v1/feed/local", limit=20, **local) == everything
    assert await all_ids(client, b, topic_path, limit=20) == everything


async def test_mute_is_one_way_in_topic_and_store_feeds(client, services):
    a, m = await register(client), await register(client)
    merchant = await register(client, role="merchant")
    lat, lng = random_point()
    store = (await client.post("/v1/stores", json={"name": "Muted corner", "lat": lat, "lng": lng},
                               headers=merchant.headers)).json()
    topic = f"mut{ObjectId()}"
    a_posts = await _posts(services, a, 2, 10, f"#{topic}#")
    m_posts = await _posts(services, m, 2, 0, f"#{topic}#")
    at_store = {}
    for who in (a, m):
        doc = await build_post(services, principal(who), "at the store",
                               store=await services.db.stores.find_one({"_id": ObjectId(store["id"])}))
        await insert_post(services, doc)
        at_store[who.id] = str(doc["_id"])
    assert (await _shut(client, a, "mute", m)).status_code == 204
    assert await ids(client, a, f"/v1/topics/{topic}/posts") == a_posts
    assert await ids(client, m, f"/v1/topics/{topic}/posts") == m_posts + a_posts
    assert await ids(client, a, f"/v1/stores/{store['id']}/posts") == [at_store[a.id]]
    assert await ids(client, m, f"/v1/stores/{store['id']}/posts") == [at_store[m.id], at_store[a.id]]
    assert (await client.get(f"/v1/posts/{m_posts[0]}", headers=a.headers)).status_code == 200  # mute hides less
    assert (await client.post(f"/v1/posts/{a_posts[0]}/like", headers=m.headers)).status_code == 200


async def test_cap_per_user(client, services, monkeypatch):
    monkeypatch.setattr(blocks, "MAX_SHUT_OUT", 2)
    a = await register(client)
    others = [await register(client) for _ in range(3)]
    for kind in ("block", "mute"):
        for target in others[:2]:
            assert (await _shut(client, a, kind, target)).status_code == 204
        await _error(await _shut(client, a, kind, others[2]), 409, f"too_many_{kind}s")
        assert (await _shut(client, a, kind, others[0])).status_code == 204  # a repeat at the cap is fine
        assert len(await all_ids(client, a, f"/v1/me/{kind}s")) == 2
        assert (await _shut(client, a, kind, others[1], "DELETE")).status_code == 204
        assert (await _shut(client, a, kind, others[2])).status_code == 204
        assert await all_ids(client, a, f"/v1/me/{kind}s") == [others[2].id, others[0].id]


async def test_screen_cache_is_rebuilt_after_each_change(client, services):
    a, b = await register(client), await register(client)
    screen = Screen(services, ObjectId(a.id))
    assert await screen.ready() == frozenset()
    assert await services.redis.smembers(shut_out_key(a.id)) == {"~"}
    assert (await _shut(client, b, "block", a)).status_code == 204  # blocked BY b: hidden for a too
    assert not await services.redis.exists(shut_out_key(a.id))
    assert await Screen(services, ObjectId(a.id)).ready() == frozenset({ObjectId(b.id)})
    assert await services.redis.smembers(shut_out_key(a.id)) == {"~", b.id}
    assert (await _shut(client, b, "block", a, "DELETE")).status_code == 204
    assert await Screen(services, ObjectId(a.id)).ready() == frozenset()
    # a lost invalidation (Redis down after the commit) is repaired by the client's retry
    assert (await _shut(client, b, "block", a)).status_code == 204
    await services.redis.sadd(shut_out_key(a.id), "~")  # stale: built before the block, never dropped
    await services.redis.srem(shut_out_key(a.id), b.id)
    assert await Screen(services, ObjectId(a.id)).ready() == frozenset()
    assert (await _shut(client, b, "block", a)).status_code == 204
    assert await Screen(services, ObjectId(a.id)).ready() == frozenset({ObjectId(b.id)})


async def test_a_deleted_account_can_still_be_unblocked(client, services):
    a, gone = await register(client), await register(client)
    assert (await _shut(client, a, "block", gone)).status_code == 204
    await services.accounts.delete_user(ObjectId(gone.id))
    assert await all_ids(client, a, "/v1/me/blocks") == []
    await _error(await _shut(client, a, "block", gone), 404, "not_found")
    assert (await _shut(client, a, "block", gone, "DELETE")).status_code == 204
    assert (await services.db.users.find_one({"_id": ObjectId(a.id)}))["blocks_count"] == 0
    assert await services.db.blocks.count_documents({"blocker_id": ObjectId(a.id)}) == 0


async def test_an_unblock_finishes_a_block_whose_unfollows_were_cut_short(client, services, monkeypatch):
    """The block commits, then its unfollows fail and the client never retries: the follows made
    before the block must not come back into force when it is lifted."""
    from feed import blocking
    from solomo.core.errors import Unavailable

    a, b = await register(client), await register(client)
    await follow(client, a, b)
    await follow(client, b, a)

    async def cut_short(*args: Any, **kwargs: Any) -> None:
        raise Unavailable("injected: the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(blocking, "_unfollow_both", cut_short)
        assert (await _shut(client, a, "block", b)).status_code == 503
    assert await _counts(client, a) == (1, 1)  # the follows outlived the block
    assert (await _shut(client, a, "block", b, "DELETE")).status_code == 204
    assert await _counts(client, a) == (0, 0) and await _counts(client, b) == (0, 0)
    assert await services.db.follows.count_documents({"follower_id": {"$in": [ObjectId(a.id), ObjectId(b.id)]},
                                                      "target_type": "user"}) == 0


async def test_an_unblock_without_a_block_leaves_the_follows(client, services):
    """Unblocking someone never blocked (a stale page, a retried unblock after following again) is
    a 204 that changes nothing: the follows between the two stay."""
    a, b = await register(client), await register(client)
    await follow(client, a, b)
    await follow(client, b, a)
    assert (await _shut(client, a, "block", b, "DELETE")).status_code == 204
    assert await _counts(client, a) == (1, 1) and await _counts(client, b) == (1, 1)
