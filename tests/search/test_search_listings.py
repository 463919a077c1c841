"""Post search listings in Redis (search.listings): built from MongoDB on a key's first search, kept
by the fan-out, a removed post taken out, pages crossing a full listing's floor into MongoDB, and a
lost listing rebuilt."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from feed import fanout
from feed.timeline import MARKER, READY
from search import listings
from search import posts as post_search
from solomo.core import tasknames
from solomo.core.keys import search_listing_key
from solomo.core.searchkeys import fold, run_keys, runs
from tests.feed.helpers import fanned_out, post
from tests.search.test_search_api import get, tag, walk
from tests.support import make_account, register, wait_until


def listing_of(word: str) -> str:
    (key,) = run_keys(runs(fold(word))[0])
    return search_listing_key(key)


async def members(services: Any, word: str) -> list[str]:
    """The listing's post ids, newest first (the marker left out)."""
    return [m for m in await services.redis.zrevrange(listing_of(word), 0, -1) if m != MARKER]


async def test_a_listing_is_built_by_the_first_search_then_kept_by_the_fan_out(client: Any, services: Any,
                                                                              celery_worker: Any) -> None:
    t = tag()
    author = await register(client)
    mod = await make_account(services, "moderator")
    first = await post(client, author, f"拿铁 {t} one")
    second = await post(client, author, f"拿铁 {t} two")
    for made in (first, second):
        await fanned_out(services, made["id"])
    assert await services.redis.exists(listing_of(t)) == 0  # nobody searched for it yet: no listing

    async def found() -> list[str]:
        return [p["id"] for p in (await get(client, author, "/v1/search/posts", q=f"{t} 拿铁"))["items"]]

    assert await found() == [second["id"], first["id"]]
    assert await services.redis.zscore(listing_of(t), MARKER) == READY
    assert await members(services, t) == [second["id"], first["id"]]
    third = await post(client, author, f"{t} 拿铁 three")  # written into the listing by the fan-out
    await fanned_out(services, third["id"])
    assert await members(services, t) == [third["id"], second["id"], first["id"]]
    assert await found() == [third["id"], second["id"], first["id"]]
    resp = await client.post(f"/v1/moderation/posts/{second['id']}", json={"action": "remove", "reason": "spam"},
                             headers=mod.headers)
    assert resp.status_code == 200, resp.text
    assert await found() == [third["id"], first["id"]]  # at once: the status is read at query time

    async def retracted() -> bool:  # and the fan-out's retraction takes it out of the listings
        return second["id"] not in await members(services, t)

    await wait_until(retracted)
    assert second["id"] not in [m for m in await services.redis.zrange(listing_of("拿铁"), 0, -1)]


async def test_pages_cross_a_full_listings_floor_into_mongodb(client: Any, services: Any, monkeypatch: Any) -> None:
    """A listing capped at 3 holds the 3 newest posts of its key: the pages below its floor come
    from MongoDB, the walk gives every post holding both words once, newest first, whatever the
    page size and window. Both words are new: their listings are built by the first search (a
    worker that an earlier test started writes late fan-outs with the same cap, trimmed away)."""
    a, b = tag(), tag()
    author = await register(client)
    texts = [f"{a} {b} {i}" if i % 3 else f"{a} {i}" for i in range(11)]
    made = [await post(client, author, text) for text in texts]
    both = [p["id"] for p, text in reversed(list(zip(made, texts, strict=True))) if b in text]
    monkeypatch.setattr(listings, "LISTING_CAP", 3)
    monkeypatch.setattr(fanout, "LISTING_CAP", 3)
    q = f"{a} {b}"
    for limit in (1, 2, 5, 20):
        assert [p["id"] for p in await walk(client, author, "/v1/search/posts", limit, q=q)] == both, limit
    assert len(await members(services, a)) == 3 and len(await members(services, b)) == 3  # capped, floors set
    monkeypatch.setattr(post_search, "WINDOW", 1)  # several rounds a page, in the listings and below them
    for limit in (1, 3):
        assert [p["id"] for p in await walk(client, author, "/v1/search/posts", limit, q=q)] == both, limit


async def test_a_lost_listing_is_rebuilt_from_mongodb(client: Any, services: Any) -> None:
    t = tag()
    author = await register(client)
    made = [await post(client, author, f"{t} 第{i}条") for i in range(4)]
    newest_first = [p["id"] for p in reversed(made)]

    async def found() -> list[str]:
        return [p["id"] for p in (await get(client, author, "/v1/search/posts", q=t))["items"]]

    assert await found() == newest_first
    await services.redis.delete(listing_of(t))  # a flush, an eviction, a failover that lost it
    assert await found() == newest_first
    assert await members(services, t) == newest_first
    # a retraction not run yet (or lost): the deleted post stays in the listing, the status leaves it
    # out. Put back by hand, since a fan-out worker left running by an earlier test may retract it.
    score = await services.redis.zscore(listing_of(t), made[1]["id"])
    assert (await client.delete(f"/v1/posts/{made[1]['id']}", headers=author.headers)).status_code == 204
    await services.redis.zadd(listing_of(t), {made[1]["id"]: score})
    assert await found() == [newest_first[0], newest_first[1], newest_first[3]]


async def test_posts_of_one_millisecond_page_once_each_in_id_order(client: Any, services: Any,
                                                                   monkeypatch: Any) -> None:
    """The windows are read without scores: a page that ends inside a group of posts of one
    millisecond goes on with the rest of that group (the cursor's millisecond is read apart)."""
    a, b = tag(), tag()
    author = await register(client)
    made = [await post(client, author, f"{a} {b} {i}") for i in range(7)]
    made += [await post(client, author, f"{a} only {i}") for i in range(3)]
    ids = [ObjectId(p["id"]) for p in made]
    # five of the posts holding both words share one millisecond, the last two an older one
    await services.db.posts.update_many({"_id": {"$in": ids[:5]}}, {"$set": {"created_ms": 1_800_000_000_000}})
    await services.db.posts.update_many({"_id": {"$in": ids[5:]}}, {"$set": {"created_ms": 1_700_000_000_000}})
    await services.redis.delete(listing_of(a), listing_of(b))  # rebuilt from MongoDB with those times
    both = [str(i) for i in sorted(ids[:5], reverse=True)] + [str(i) for i in sorted(ids[5:7], reverse=True)]
    q = f"{a} {b}"
    monkeypatch.setattr(post_search, "WINDOW", 2)  # rounds that end inside the group
    for limit in (1, 2, 3, 20):
        got = [p["id"] for p in await walk(client, author, "/v1/search/posts", limit, q=q)]
        assert got == both, limit


async def test_a_listing_changed_between_its_reads_is_read_from_mongodb(client: Any, services: Any,
                                                                      monkeypatch: Any) -> None:
    """A post taken out of a listing between the windows' read and their scores' (no score comes
    back): that round is read from MongoDB, and the walk is the same."""
    a, b = tag(), tag()
    author = await register(client)
    made = [await post(client, author, f"{a} {b} {i}") for i in range(6)]
    both = [p["id"] for p in reversed(made)]
    q = f"{a} {b}"
    assert [p["id"] for p in await walk(client, author, "/v1/search/posts", 4, q=q)] == both
    real = listings.scores_of
    lost: list[int] = []

    async def one_gone(services: Any, asks: list[tuple[str, list[bytes]]]) -> list[list[float | None]]:
        scores = await real(services, asks)
        lost.append(1)
        return [[None, *row[1:]] for row in scores]  # the first member of each ask was taken out

    monkeypatch.setattr(post_search, "scores_of", one_gone)
    for limit in (1, 4):
        assert [p["id"] for p in await walk(client, author, "/v1/search/posts", limit, q=q)] == both, limit
    assert lost  # the windows' scores were asked for, and MongoDB answered instead


async def test_a_removal_leaves_search_at_once_while_the_listing_still_holds_the_post(client: Any, services: Any,
                                                                                      hold_tasks: Any) -> None:
    """The retraction is held (never run): the listing keeps the removed post, and the search still
    leaves it out, from its cached view's status."""
    held = hold_tasks()
    t = tag()
    author = await register(client)
    mod = await make_account(services, "moderator")
    made = await post(client, author, f"拿铁 {t} kept")
    # its fan-out, run here: into the listings that exist (拿铁's, if an earlier search built it)
    assert await fanout.fanout_post(services, ObjectId(await held.take(tasknames.FANOUT_POST))) == "published"

    async def found() -> list[str]:
        return [p["id"] for p in (await get(client, author, "/v1/search/posts", q=f"{t} 拿铁"))["items"]]

    assert await found() == [made["id"]]  # the new word's listing built from MongoDB, the post's view cached
    resp = await client.post(f"/v1/moderation/posts/{made['id']}", json={"action": "remove", "reason": "spam"},
                             headers=mod.headers)
    assert resp.status_code == 200, resp.text
    assert await held.take(tasknames.FANOUT_RETRACT) == made["id"]  # held: the listing is not touched
    assert made["id"] in await members(services, t)
    assert await found() == []
