"""The post cache and the likes sets behind home and topic pages (feed/postcache.py, feed/likedset.py):
a cached page equals MongoDB's answer, and no change leaves a stale post, count or like behind."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from bson import ObjectId

from feed import likedset, postcache
from feed.hydrate import hydrate_posts, names_changed
from feed.paging import MongoSource, collect
from feed.posts import VISIBLE, visible_to
from solomo.core.keys import VIEWS_EPOCH, liked_key, post_gen_key, post_view_key
from solomo.core.searchkeys import fold
from tests.feed.helpers import fanned_out, follow, page, post, ready_home
from tests.moderation.helpers import establish
from tests.support import make_account, register, wait_until


def _topic() -> str:
    return f"pc{uuid.uuid4().hex[:10]}"


async def _cached(services: Any, post_id: str) -> bool:
    return bool(await services.redis.exists(post_view_key(post_id)))


async def _truth(services: Any, query: dict[str, Any], viewer: str) -> list[dict[str, Any]]:
    """The page as MongoDB alone answers it (no post cache, no likes set)."""
    docs, _ = await collect(services.db, [MongoSource(services.db, query)], None, 20,
                            lambda d: visible_to(d, ObjectId(viewer)))
    liked = {lk["post_id"] async for lk in services.db.likes.find({"user_id": ObjectId(viewer)})}
    out = await hydrate_posts(services, docs, None)  # no viewer: nothing cached about likes is used
    for item, doc in zip(out, docs, strict=True):
        item["liked_by_me"] = doc["_id"] in liked
    return out


async def _topic_page(client: Any, who: Any, topic: str) -> list[dict[str, Any]]:
    return (await page(client, who, f"/v1/topics/{topic}/posts", limit=20))["items"]


async def _home_setup(client: Any, services: Any, n: int = 3) -> tuple[Any, Any, list[dict[str, Any]]]:
    author, fan = await register(client), await register(client)
    await ready_home(client, services, fan)
    await follow(client, fan, author)
    posts = [await post(client, author, f"cached {i}") for i in range(n)]
    for p in posts:
        await fanned_out(services, p["id"])
    return author, fan, posts


async def test_a_cached_page_equals_mongodbs_answer(client, services):
    author, reader = await register(client), await register(client)
    topic = _topic()
    posts = [await post(client, author, f"same #{topic} {i}") for i in range(4)]
    resp = await client.post(f"/v1/posts/{posts[1]['id']}/like", headers=reader.headers)
    assert resp.status_code == 200
    cold = await _topic_page(client, reader, topic)
    assert all([await _cached(services, p["id"]) for p in posts])
    warm = await _topic_page(client, reader, topic)
    truth = await _truth(services, {"topic_keys": topic, "status": VISIBLE}, reader.id)
    assert cold == warm == truth
    assert [p["liked_by_me"] for p in warm] == [False, False, True, False]
    assert warm[2]["like_count"] == 1


async def test_home_page_from_the_cache_equals_mongodbs_answer(client, services, celery_worker):
    author, fan, posts = await _home_setup(client, services)
    cold = (await page(client, fan, "/v1/feed/home"))["items"]
    warm = (await page(client, fan, "/v1/feed/home"))["items"]
    assert all([await _cached(services, p["id"]) for p in posts])
    assert cold == warm == await _truth(services, {"author_id": ObjectId(author.id)}, fan.id)
    assert [p["id"] for p in warm] == [p["id"] for p in reversed(posts)]


async def test_a_deleted_post_leaves_the_page_at_once(client, services, celery_worker):
    author, fan, posts = await _home_setup(client, services)
    await page(client, fan, "/v1/feed/home")  # cached
    resp = await client.delete(f"/v1/posts/{posts[1]['id']}", headers=author.headers)
    assert resp.status_code == 204
    # the fan-out's retract may not have run yet: the cached view alone must not show it
    items = (await page(client, fan, "/v1/feed/home"))["items"]
    assert posts[1]["id"] not in [p["id"] for p in items]
    assert len(items) == 2


async def test_moderation_removal_reaches_the_page_at_once_and_restore_comes_back(client, services, celery_worker):
    author, reader = await register(client), await register(client)
    moderator = await make_account(services, "moderator")
    topic = _topic()
    posts = [await post(client, author, f"judged #{topic} {i}") for i in range(3)]
    await _topic_page(client, reader, topic)  # cached

    async def shown() -> bool:
        return posts[0]["id"] in [p["id"] for p in await _topic_page(client, reader, topic)]

    for action, present in (("remove", False), ("restore", True), ("hide", False)):
        resp = await client.post(f"/v1/moderation/posts/{posts[0]['id']}",
                                 json={"action": action, "reason": "test"}, headers=moderator.headers)
        assert resp.status_code == 200, resp.text
        if present:
            # the cached view is invalidated at once; if the worker already ran the removal's retraction,
            # the post is back in the topic's timeline when the restore's re-publish has run
            assert await wait_until(shown, timeout=20), action
        else:
            assert not await shown(), action  # hidden at once: the cached view alone never shows it


async def test_auto_hide_by_reports_reaches_the_page(client, services, settings):
    author, reader = await register(client), await register(client)
    topic = _topic()
    target = await post(client, author, f"reported #{topic}")
    await _topic_page(client, reader, topic)  # cached
    for _ in range(settings.report_threshold):
        reporter = await establish(services, await register(client))
        resp = await client.post(f"/v1/posts/{target['id']}/reports", json={"reason": "spam"},
                                 headers=reporter.headers)
        assert resp.status_code == 201, resp.text
    assert (await services.db.posts.find_one({"_id": ObjectId(target["id"])}))["status"] == "hidden"
    assert target["id"] not in [p["id"] for p in await _topic_page(client, reader, topic)]


async def test_auto_hide_by_reports_reaches_a_repost_showing_the_post(client, services, settings):
    """Read through a repost, with no timeline involved (a feed's page may also lose the post to its
    retraction): the original's cached view is what says it is hidden now."""
    author, reposter, reader = await register(client), await register(client), await register(client)
    target = await post(client, author, "reported original")
    repost = await client.post(f"/v1/posts/{target['id']}/repost", json={"text": "look"}, headers=reposter.headers)
    assert repost.status_code == 201, repost.text
    url = f"/v1/posts/{repost.json()['id']}"
    shown = (await client.get(url, headers=reader.headers)).json()["repost_of"]
    assert shown["id"] == target["id"] and shown["text"] == "reported original"
    assert await _cached(services, target["id"])  # the original's view, filled by that read
    for _ in range(settings.report_threshold):
        reporter = await establish(services, await register(client))
        resp = await client.post(f"/v1/posts/{target['id']}/reports", json={"reason": "spam"},
                                 headers=reporter.headers)
        assert resp.status_code == 201, resp.text
    assert (await client.get(url, headers=reader.headers)).json()["repost_of"] == {
        "id": target["id"], "status": "unavailable"}


async def test_a_comment_removed_by_a_moderator_leaves_the_cached_count(client, services):
    author, reader = await register(client), await register(client)
    moderator = await make_account(services, "moderator")
    topic = _topic()
    target = await post(client, author, f"commented #{topic}")
    resp = await client.post(f"/v1/posts/{target['id']}/comments", json={"text": "hm"}, headers=reader.headers)
    assert resp.status_code == 201, resp.text
    assert (await _topic_page(client, reader, topic))[0]["comment_count"] == 1  # the view cached with it
    decided = await client.post(f"/v1/moderation/comments/{resp.json()['id']}", headers=moderator.headers,
                                json={"action": "remove", "reason": "rude"})
    assert decided.status_code == 200, decided.text
    assert (await _topic_page(client, reader, topic))[0]["comment_count"] == 0


async def test_a_repost_and_its_deletion_move_the_cached_repost_count(client, services):
    author, reposter, reader = await register(client), await register(client), await register(client)
    topic = _topic()
    target = await post(client, author, f"spread #{topic}")

    async def count() -> int:
        return int(next(p for p in await _topic_page(client, reader, topic) if p["id"] == target["id"])["repost_count"])

    assert await count() == 0  # the view cached with it
    repost = await client.post(f"/v1/posts/{target['id']}/repost", json={"text": "look"}, headers=reposter.headers)
    assert repost.status_code == 201, repost.text
    assert await count() == 1
    assert (await client.delete(f"/v1/posts/{repost.json()['id']}", headers=reposter.headers)).status_code == 204
    assert await count() == 0


async def test_likes_and_comments_move_counts_and_liked_by_me(client, services):
    author, reader, other = await register(client), await register(client), await register(client)
    topic = _topic()
    target = await post(client, author, f"counted #{topic}")
    url = f"/v1/posts/{target['id']}"
    assert (await _topic_page(client, reader, topic))[0]["like_count"] == 0  # cached, likes set built
    assert (await client.post(f"{url}/like", headers=reader.headers)).status_code == 200
    assert (await client.post(f"{url}/like", headers=other.headers)).status_code == 200
    mine, theirs = (await _topic_page(client, reader, topic))[0], (await _topic_page(client, other, topic))[0]
    assert (mine["like_count"], mine["liked_by_me"], theirs["liked_by_me"]) == (2, True, True)
    assert (await client.delete(f"{url}/like", headers=reader.headers)).status_code == 200
    mine, theirs = (await _topic_page(client, reader, topic))[0], (await _topic_page(client, other, topic))[0]
    assert (mine["like_count"], mine["liked_by_me"], theirs["liked_by_me"]) == (1, False, True)
    resp = await client.post(f"{url}/comments", json={"text": "nice"}, headers=reader.headers)
    assert resp.status_code == 201
    assert (await _topic_page(client, reader, topic))[0]["comment_count"] == 1
    assert (await client.delete(f"/v1/comments/{resp.json()['id']}", headers=reader.headers)).status_code == 204
    assert (await _topic_page(client, reader, topic))[0]["comment_count"] == 0


async def test_a_rename_reaches_every_page(client, services):
    author, reader = await register(client), await register(client)
    topic = _topic()
    await post(client, author, f"named #{topic}")
    assert (await _topic_page(client, reader, topic))[0]["author"]["display_name"] == author.username
    await services.db.users.update_one({"_id": ObjectId(author.id)}, {"$set": {"display_name": "Renamed"}})
    await names_changed(services)  # what a rename must call after its commit
    assert (await _topic_page(client, reader, topic))[0]["author"]["display_name"] == "Renamed"


async def test_a_redis_flush_only_costs_a_refill(client, services, celery_worker):
    _author, fan, posts = await _home_setup(client, services)
    await client.post(f"/v1/posts/{posts[0]['id']}/like", headers=fan.headers)
    before = (await page(client, fan, "/v1/feed/home"))["items"]
    await services.redis.flushdb()  # the data Redis (every node of a cluster); the broker survives
    assert (await page(client, fan, "/v1/feed/home"))["items"] == before
    await ready_home(client, services, fan)
    assert (await page(client, fan, "/v1/feed/home"))["items"] == before
    assert (await page(client, fan, "/v1/feed/home"))["items"] == before  # from the refilled cache
    assert await _cached(services, posts[0]["id"])


async def test_concurrent_likes_and_reads_end_consistent(client, services):
    author = await register(client)
    likers = [await register(client) for _ in range(4)]
    topic = _topic()
    target = await post(client, author, f"busy #{topic}")
    url = f"/v1/posts/{target['id']}/like"

    async def churn(who: Any, rounds: int) -> None:
        for i in range(rounds):
            resp = await (client.post(url, headers=who.headers) if i % 2 == 0 else
                          client.delete(url, headers=who.headers))
            assert resp.status_code == 200

    async def read(who: Any) -> None:
        for _ in range(6):
            await _topic_page(client, who, topic)

    await asyncio.gather(*(churn(w, 3 + i % 2) for i, w in enumerate(likers)), *(read(w) for w in likers))
    truth = await services.db.likes.count_documents({"post_id": ObjectId(target["id"])})
    assert truth == sum(1 for i in range(len(likers)) if (3 + i % 2) % 2 == 1)
    for i, who in enumerate(likers):
        item = (await _topic_page(client, who, topic))[0]
        assert item["like_count"] == truth
        assert item["liked_by_me"] is ((3 + i % 2) % 2 == 1)


async def test_a_fill_that_read_before_a_change_is_refused(client, services):
    author = await register(client)
    created = await post(client, author, "raced")
    pid = ObjectId(created["id"])
    await postcache.invalidate(services, [pid])
    seen = await postcache.VIEWS.generations(services, [pid])  # a reader missed and read the generation ...
    await postcache.invalidate(services, [pid])  # ... a change commits meanwhile ...
    await postcache.fill(services, [pid], seen)  # ... so what it read is not stored
    assert not await _cached(services, created["id"])
    await postcache.load(services, [pid])  # the next reader stores a fresh view
    assert await _cached(services, created["id"])


async def test_a_likes_set_build_raced_by_a_like_is_dropped(client, services):
    author, reader = await register(client), await register(client)
    created = await post(client, author, "liked while building")
    pid, uid = ObjectId(created["id"]), ObjectId(reader.id)
    key = liked_key(uid)
    await services.redis.delete(key)
    token = "t" + uuid.uuid4().hex
    assert await likedset._BEGIN(services.redis, [key], [token, 60])  # a build read MongoDB: no like yet
    assert (await client.post(f"/v1/posts/{created['id']}/like", headers=reader.headers)).status_code == 200
    assert not await likedset._FINISH(services.redis, [key], [token, 60, likedset.READY])  # its result is void
    assert await likedset.liked_among(services, uid, [pid]) == {pid}  # rebuilt from MongoDB
    assert await services.redis.sismember(key, likedset.READY)
    assert (await client.delete(f"/v1/posts/{created['id']}/like", headers=reader.headers)).status_code == 200
    assert await likedset.liked_among(services, uid, [pid]) == set()  # applied to the complete set


async def test_too_many_likes_are_not_cached(client, services, monkeypatch):
    author, reader = await register(client), await register(client)
    posts = [await post(client, author, f"many {i}") for i in range(3)]
    for p in posts:
        assert (await client.post(f"/v1/posts/{p['id']}/like", headers=reader.headers)).status_code == 200
    uid = ObjectId(reader.id)
    await services.redis.delete(liked_key(uid))
    monkeypatch.setattr(likedset, "LIKED_MAX", 2)
    ids = [ObjectId(p["id"]) for p in posts]
    assert await likedset.liked_among(services, uid, ids) == set(ids)
    assert await services.redis.smembers(liked_key(uid)) == {likedset.TOO_MANY}
    assert await likedset.liked_among(services, uid, ids[:1]) == set(ids[:1])  # MongoDB answers


async def test_a_views_fixed_fields_are_made_once_per_version_and_never_leak(client, services):
    """Pages rendered from the same stored view share its fixed fields (made once), a new version
    of the post (a like) renders afresh, and a caller changing its Post's fields (or its author)
    changes no later page."""
    author, reader = await register(client), await register(client)
    topic = _topic()
    created = await post(client, author, f"fixed #{topic}")
    first = await _topic_page(client, reader, topic)
    pid = ObjectId(created["id"])
    view_a = (await postcache.load(services, [pid]))[pid]  # read from Redis, kept in the process's memo
    view_b = (await postcache.load(services, [pid]))[pid]  # handed out again from the memo
    assert view_a is not view_b and view_a[postcache.RENDERED] is view_b[postcache.RENDERED]
    assert postcache.RENDERED not in postcache.encode(view_a).decode()  # never stored
    one = (await hydrate_posts(services, [view_a], ObjectId(reader.id)))[0]
    assert view_b[postcache.RENDERED].fields["text"] == f"fixed #{topic}"  # made once, kept for the next copy
    assert postcache.folded_text(view_a) == fold(f"fixed #{topic}")  # search's folded text: likewise
    assert view_b[postcache.RENDERED].folded == fold(f"fixed #{topic}")
    one["like_count"] = 999
    one["author"]["username"] = "forged"
    two = (await hydrate_posts(services, [view_b], ObjectId(reader.id)))[0]
    assert two["like_count"] == first[0]["like_count"] == 0
    assert two == first[0] and one is not two
    resp = await client.post(f"/v1/posts/{created['id']}/like", headers=reader.headers)
    assert resp.status_code == 200
    after = (await _topic_page(client, reader, topic))[0]
    assert (after["like_count"], after["liked_by_me"]) == (1, True)
    assert after == {**first[0], "like_count": 1, "liked_by_me": True}
    assert after == (await _truth(services, {"_id": ObjectId(created["id"])}, reader.id))[0]


# --- the per-process memo (solomo.core.viewcache.LocalViews) ---------------------------------------

async def _memo_setup(client: Any, services: Any) -> tuple[Any, str, str, list[dict[str, Any]]]:
    """A post on a topic page, read once (the process now holds its view); (reader, topic, id, page)."""
    author, reader = await register(client), await register(client)
    topic = _topic()
    created = await post(client, author, f"memo #{topic}")
    await _topic_page(client, reader, topic)  # the first page may have found no epoch yet
    first = await _topic_page(client, reader, topic)
    assert postcache.VIEWS.local is not None and ObjectId(created["id"]) in postcache.VIEWS.local._held
    return reader, topic, created["id"], first


async def _changed_behind_the_cache(services: Any, post_id: str, text: str) -> None:
    """The post's text changed in MongoDB with no invalidation (one lost, as in a failover)."""
    await services.db.posts.update_one({"_id": ObjectId(post_id)}, {"$set": {"text": text}})


async def test_a_page_asks_redis_only_for_the_generations_of_views_the_process_holds(client, services):
    reader, topic, pid, first = await _memo_setup(client, services)
    key = post_view_key(pid)
    stored = orjson.loads(await services.redis.get(key))
    # a body changed in Redis alone (its generation the same) is not read: the memo answers
    await services.redis.set(key, orjson.dumps({**stored, "text": "never read"}), ex=600)
    assert (await _topic_page(client, reader, topic))[0]["text"] == first[0]["text"]
    # a change, made the service's way, is seen at once
    await _changed_behind_the_cache(services, pid, f"edited #{topic}")
    await postcache.invalidate(services, [ObjectId(pid)])
    again = await _topic_page(client, reader, topic)
    assert again[0]["text"] == f"edited #{topic}"
    assert again == await _truth(services, {"_id": ObjectId(pid)}, reader.id)


async def test_a_redis_that_lost_its_data_starts_every_memo_over(client, services):
    """A view and its generation lost with the epoch (a flush, a restart without persistence): the
    memo's entry would match a missing generation, but not the new epoch."""
    reader, topic, pid, _ = await _memo_setup(client, services)
    await _changed_behind_the_cache(services, pid, f"after the loss #{topic}")
    for key in (VIEWS_EPOCH, post_view_key(pid), post_gen_key(pid)):  # one by one: three slots on a cluster
        await services.redis.delete(key)
    await _topic_page(client, reader, topic)  # finds no epoch: MongoDB answers, a new epoch is made
    assert await services.redis.get(VIEWS_EPOCH)
    assert (await _topic_page(client, reader, topic))[0]["text"] == f"after the loss #{topic}"


async def test_no_memo_entry_outlives_the_generation_that_would_refuse_it(client, services, monkeypatch):
    """A change's generation expires after the views' TTL; an entry read before the change must be
    gone by then, so entries live at most half of it."""
    assert postcache.VIEWS.local is not None and 0 < postcache.VIEWS.local.max_age_s <= postcache.VIEWS.ttl_s / 2
    reader, topic, pid, _ = await _memo_setup(client, services)
    await _changed_behind_the_cache(services, pid, f"later #{topic}")
    await postcache.invalidate(services, [ObjectId(pid)])
    await services.redis.delete(post_gen_key(pid))  # that change's generation, expired
    monkeypatch.setattr(postcache.VIEWS.local, "max_age_s", 0.0)  # ... after the entry's age ran out
    assert (await _topic_page(client, reader, topic))[0]["text"] == f"later #{topic}"


async def test_a_view_that_changed_is_held_again_with_its_new_generation(client, services):
    """A like sets a new generation: the next page reads the view again, and the page after uses
    the memo again (an entry left with the old generation would miss on every page)."""
    reader, topic, pid, _ = await _memo_setup(client, services)
    resp = await client.post(f"/v1/posts/{pid}/like", headers=reader.headers)
    assert resp.status_code == 200
    assert (await _topic_page(client, reader, topic))[0]["like_count"] == 1
    await _topic_page(client, reader, topic)
    assert postcache.VIEWS.local is not None
    held = postcache.VIEWS.local._held[ObjectId(pid)]
    assert held.generation == await services.redis.get(post_gen_key(pid)) and held.view["like_count"] == 1


async def test_a_like_whose_cache_update_failed_is_put_right_by_its_retry(client, services, monkeypatch):
    """The like commits, then Redis fails before the likes set learns it: the client's retry (a
    repeat, nothing to write) still brings ``liked_by_me`` right; so does an unlike's."""
    from feed import likes
    from solomo.core.errors import Unavailable

    author, reader = await register(client), await register(client)
    topic = _topic()
    target = await post(client, author, f"liked once #{topic}")
    url = f"/v1/posts/{target['id']}/like"
    assert (await _topic_page(client, reader, topic))[0]["liked_by_me"] is False  # the likes set is built
    real = likes._changed

    async def redis_down(*args: Any, **kwargs: Any) -> None:
        raise Unavailable("injected: redis is down")

    for method, liked in (("POST", True), ("DELETE", False)):
        with monkeypatch.context() as patched:
            patched.setattr(likes, "_changed", redis_down)
            assert (await client.request(method, url, headers=reader.headers)).status_code == 503
        assert likes._changed is real
        assert (await _topic_page(client, reader, topic))[0]["liked_by_me"] is not liked  # stale until…
        again = await client.request(method, url, headers=reader.headers)
        assert again.status_code == 200 and again.json()["liked_by_me"] is liked
        mine = (await _topic_page(client, reader, topic))[0]
        assert (mine["liked_by_me"], mine["like_count"]) == (liked, int(liked))


async def test_a_quiet_invalidation_logs_what_redis_refused(services, caplog):
    """After a keyed write's commit (a comment, a repost) the views are dropped quietly: Redis being
    down must not answer 503 and hold the Idempotency-Key in progress for a day."""
    import dataclasses

    import pytest
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from solomo.embedded import free_port

    nobody = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)  # nothing listens there
    down = dataclasses.replace(services, redis=nobody)
    try:
        with pytest.raises(RedisError):
            await postcache.invalidate(down, [ObjectId()])
        await postcache.invalidate_quietly(down, [ObjectId()], "a comment")
    finally:
        await nobody.aclose()
    assert "a comment: cached views not invalidated" in caplog.text
