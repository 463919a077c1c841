"""Follower pages (feed/followerpages.py): once an audience is built its pages hold exactly its
followers through follows, unfollows, blocks and erasures, also when they race each other or the
build itself; the fan-out reads a built audience from its pages and resumes at a page."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest
from bson import ObjectId

import feed.followerpages
import feed.follows
from feed import followerpages
from feed.fanout import fanout_post
from feed.follows import follower_batches
from solomo.core import tasknames
from tests.checkins.helpers import new_store
from tests.faults.fanout_drill import feeds, seed_audience
from tests.heldtasks import HeldTasks
from tests.support import Account, register

PAGE = 3  # ids a page holds in these tests: every audience spans several pages


@pytest.fixture(autouse=True)
def small_pages(monkeypatch) -> None:
    monkeypatch.setattr(feed.followerpages, "PAGE_SIZE", PAGE)


async def _pages(services: Any, target_type: str, target_id: str) -> list[dict[str, Any]]:
    return [p async for p in services.db.follower_pages.find(
        {"target_type": target_type, "target_id": ObjectId(target_id)}).sort("n", 1)]


async def _assert_pages_match_follows(services: Any, target_type: str, target_id: str) -> list[str]:
    """The pages list every follower once, no one else; each page's size is its ids' count; the
    follower ids in follow order."""
    pages = await _pages(services, target_type, target_id)
    assert pages, "the audience has no pages"
    ids = [i for p in pages for i in p["ids"]]
    follows = [str(d["follower_id"]) async for d in services.db.follows.find(
        {"target_type": target_type, "target_id": ObjectId(target_id)}).sort("_id", 1)]
    assert [n for n, c in collections.Counter(ids).items() if c > 1] == []
    assert sorted(ids) == sorted(follows)
    assert all(p["size"] == len(p["ids"]) <= PAGE for p in pages), pages
    assert [p["n"] for p in pages] == list(range(len(pages)))
    return ids


async def _follow(client: Any, who: Account, target: Account) -> None:
    resp = await client.post(f"/v1/users/{target.id}/follow", headers=who.headers)
    assert resp.status_code == 204, resp.text


async def test_a_built_audiences_pages_follow_every_change_of_its_follows(client, services):
    author = await register(client)
    readers = [await register(client) for _ in range(10)]
    for r in readers[:4]:
        await _follow(client, r, author)
    assert await followerpages.build(services, "user", ObjectId(author.id))
    assert not await followerpages.build(services, "user", ObjectId(author.id))  # once
    assert await _assert_pages_match_follows(services, "user", author.id) == [r.id for r in readers[:4]]

    await asyncio.gather(*(_follow(client, r, author) for r in readers[4:]))  # racing appends: one at a time
    await _assert_pages_match_follows(services, "user", author.id)
    for r in (readers[1], readers[5]):
        assert (await client.delete(f"/v1/users/{author.id}/follow", headers=r.headers)).status_code == 204
    await _follow(client, readers[1], author)  # back: at the end
    ids = await _assert_pages_match_follows(services, "user", author.id)
    assert ids[-1] == readers[1].id and readers[5].id not in ids
    assert (await client.post(f"/v1/users/{readers[2].id}/block", headers=author.headers)).status_code == 204
    erased = readers[3]
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=erased.headers)
    assert resp.status_code == 204, resp.text
    ids = await _assert_pages_match_follows(services, "user", author.id)
    assert readers[2].id not in ids and erased.id not in ids and len(ids) == 7


async def test_a_store_audience_is_paged_the_same_way(client, services):
    owner = await register(client, "merchant")
    store = await new_store(client, owner)
    readers = [await register(client) for _ in range(4)]
    for r in readers[:2]:
        assert (await client.post(f"/v1/stores/{store['id']}/follow", headers=r.headers)).status_code == 204
    assert await followerpages.build(services, "store", ObjectId(store["id"]))
    for r in readers[2:]:
        assert (await client.post(f"/v1/stores/{store['id']}/follow", headers=r.headers)).status_code == 204
    assert (await client.delete(f"/v1/stores/{store['id']}/follow", headers=readers[0].headers)).status_code == 204
    assert await _assert_pages_match_follows(services, "store", store["id"]) == [r.id for r in readers[1:]]


async def test_follows_racing_the_build_are_all_in_the_pages(client, services):
    author = await register(client)
    readers = [await register(client) for _ in range(12)]
    for r in readers[:6]:
        await _follow(client, r, author)
    gone = readers[0]
    first, second, *_ = await asyncio.gather(
        followerpages.build(services, "user", ObjectId(author.id)),
        followerpages.build(services, "user", ObjectId(author.id)),  # two fan-outs of the author at once
        *(_follow(client, r, author) for r in readers[6:]),
        client.delete(f"/v1/users/{author.id}/follow", headers=gone.headers))
    assert sorted([first, second]) == [False, True]  # built once
    ids = await _assert_pages_match_follows(services, "user", author.id)
    assert len(ids) == 11 and gone.id not in ids


async def test_the_fan_out_builds_a_big_audience_then_reads_its_pages(client, services, monkeypatch,
                                                                        hold_tasks):
    held = hold_tasks()
    monkeypatch.setattr(feed.followerpages, "BUILD_AT", 8)
    monkeypatch.setattr(services.settings, "fanout_chunk", 4)
    author = await register(client)
    followers = [ObjectId() for _ in range(10)]
    audience = await seed_audience(services, ObjectId(author.id), followers)
    first = await _posted(client, author, "first", held)
    await fanout_post(services, ObjectId(first))
    assert all(first in feed for feed in await feeds(services.redis, followers))
    ids = await _assert_pages_match_follows(services, "user", author.id)  # built by the index read
    assert ids == [str(f) for f in followers]
    # proof that the pages are read now: a follow deleted behind their back (never done by the
    # service) still gets the next post, which the index would not have named
    await services.db.follows.delete_one({"_id": audience.follow_ids[-1]})
    second = await _posted(client, author, "second", held)
    await fanout_post(services, ObjectId(second))
    assert all(second in feed for feed in await feeds(services.redis, followers))


async def test_a_read_of_pages_dropped_early_leaves_no_cursor_on_the_server(client, services):
    author = await register(client)
    target = ObjectId(author.id)
    await seed_audience(services, target, [ObjectId() for _ in range(10 * PAGE)])  # more pages than one reply
    assert await followerpages.build(services, "user", target)

    async def open_cursors() -> int:
        cursor = await services.mongo.admin.aggregate([
            {"$currentOp": {"idleCursors": True}},
            {"$match": {"type": "idleCursor", "cursor.originatingCommand.filter.target_id": target}}])
        return len(await cursor.to_list(None))

    batches = follower_batches(services, "user", target, PAGE)
    assert len((await anext(batches))[1]) == PAGE
    assert await open_cursors() == 1  # the read is under way: the rest of the pages wait on the server
    await batches.aclose()
    assert await open_cursors() == 0


async def test_an_audience_outside_the_build_bounds_stays_on_the_index(client, services, monkeypatch):
    monkeypatch.setattr(feed.followerpages, "BUILD_AT", 3)
    monkeypatch.setattr(feed.followerpages, "BUILD_MAX", 5)
    sizes = {"small": 2, "built": 5, "big": 6}
    authors = {name: await register(client) for name in sizes}
    for name, n in sizes.items():
        await seed_audience(services, ObjectId(authors[name].id), [ObjectId() for _ in range(n)])
        batches = [b async for b in follower_batches(services, "user", ObjectId(authors[name].id), 4)]
        assert sum(len(ids) for _, ids in batches) == n
    assert [bool(await _pages(services, "user", authors[name].id)) for name in sizes] == [False, True, False]


async def test_a_page_checkpoint_resumes_after_its_page_and_an_index_checkpoint_through_the_index(client, services):
    author = await register(client)
    followers = [ObjectId() for _ in range(8)]
    audience = await seed_audience(services, ObjectId(author.id), followers)
    assert await followerpages.build(services, "user", ObjectId(author.id))
    target = ObjectId(author.id)

    async def read(after: Any, first: int | None = None) -> list[tuple[Any, list[str]]]:
        return [b async for b in follower_batches(services, "user", target, 4, after, first)]

    hexes = [str(f) for f in followers]  # pages of 3: [0 1 2] [3 4 5] [6 7]
    assert await read(None) == [(0, hexes[:4]), (2, hexes[4:])]  # a batch's checkpoint: its last whole page
    assert await read(None, first=2) == await read(None)  # pages come whole: no short first batch
    assert await read(0) == [(1, hexes[3:7]), (2, hexes[7:])]
    assert await read(2) == []
    # a checkpoint the index wrote (the audience was built since): the index goes on from it
    assert await read(audience.follow_ids[4]) == [(audience.follow_ids[-1], hexes[5:])]


async def _posted(client: Any, author: Account, text: str, held: HeldTasks) -> str:
    resp = await client.post("/v1/posts", json={"text": text}, headers=author.headers)
    assert resp.status_code == 201, resp.text
    assert await held.take(tasknames.FANOUT_POST) == resp.json()["id"]
    return str(resp.json()["id"])


async def test_the_read_guessed_from_the_last_time_starts_beside_the_target_and_a_wrong_guess_is_dropped(
        client, services, monkeypatch):
    started: list[str] = []
    real_target = followerpages.audience_of
    target_read = asyncio.Event()

    def recorded(name: str, real: Any) -> Any:
        """``real`` (a read of follower batches), noting in ``started`` when it starts reading."""
        def read(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                started.append(name)
                async for item in real(*args, **kwargs):
                    yield item
            return run()
        return read

    async def audience_of(*args: Any) -> Any:  # the target's read waits until the test lets it go
        await target_read.wait()
        return await real_target(*args)

    monkeypatch.setattr(followerpages, "batches", recorded("pages", followerpages.batches))
    monkeypatch.setattr(feed.follows, "_indexed_batches", recorded("index", feed.follows._indexed_batches))
    monkeypatch.setattr(followerpages, "audience_of", audience_of)

    async def read(target: ObjectId) -> tuple[list[str], list[str]]:
        started.clear()
        target_read.clear()
        reading = asyncio.ensure_future(follower_batches(services, "user", target, 4).__anext__())
        for _ in range(100):  # the guessed read is under way before the target's answer (bounded wait)
            if started:
                break
            await asyncio.sleep(0.01)
        before = list(started)
        target_read.set()
        first = await reading
        return before, first[1]

    built_author, plain_author = await register(client), await register(client)
    built, plain = ObjectId(built_author.id), ObjectId(plain_author.id)
    built_followers = [ObjectId() for _ in range(8)]
    await seed_audience(services, built, built_followers)
    await seed_audience(services, plain, [ObjectId() for _ in range(5)])
    assert await followerpages.build(services, "user", built)  # a build is remembered: seen built
    assert followerpages.seen_built("user", built) and not followerpages.seen_built("user", plain)

    # a right guess: the pages are asked for beside the target's read, the index never
    assert await read(built) == (["pages"], [str(f) for f in built_followers[:4]])
    assert started == ["pages"]
    # not seen built: the index beside the target's read, as for most audiences
    before, ids = await read(plain)
    assert before == ["index"] and started == ["index"] and len(ids) == 4
    # a wrong guess (an audience remembered built that is not): the pages' read is dropped, the
    # index read, the audience still right, and the guess forgotten
    followerpages.note_built("user", plain, True)
    before, ids = await read(plain)
    assert before == ["pages"] and started == ["pages", "index"] and len(ids) == 4
    assert not followerpages.seen_built("user", plain)
    # the other wrong guess (built, not remembered): the index's read is dropped, the pages read
    followerpages.note_built("user", built, False)
    before, ids = await read(built)
    assert before == ["index"] and started == ["index", "pages"] and ids == [str(f) for f in built_followers[:4]]
    assert followerpages.seen_built("user", built)
