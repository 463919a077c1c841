"""Hydration's summary cache: summaries come from the cache (bounded, expiring), likes never do,
and a Post handed out cannot change what is cached."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson
from bson import ObjectId

from feed import postcache
from feed.hydrate import hydrate_posts
from solomo.core.cache import SummaryCache
from tests.feed.helpers import post
from tests.support import random_point, register


def _own(services: Any, cache: SummaryCache) -> Any:
    """The app's services with a summary cache of their own (the app's is shared by the whole session)."""
    return replace(services, summaries=cache)


async def _store(client, merchant) -> dict:
    lat, lng = random_point()
    resp = await client.post("/v1/stores", json={"name": "Old Name", "lat": lat, "lng": lng},
                             headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_summaries_are_cached_and_likes_are_not(client, services):
    author, reader, merchant = await register(client), await register(client), await register(client, "merchant")
    store = await _store(client, merchant)
    created = await post(client, author, "hello", store_id=store["id"])
    doc = await services.db.posts.find_one({"_id": ObjectId(created["id"])})
    own = _own(services, SummaryCache())
    first = (await hydrate_posts(own, [doc], ObjectId(reader.id)))[0]
    assert first == {**created, "liked_by_me": False}
    # names changed behind the cache's back (nothing in SoLoMo does this) are not seen ...
    await services.db.users.update_one({"_id": ObjectId(author.id)}, {"$set": {"display_name": "Renamed"}})
    await services.db.stores.update_one({"_id": ObjectId(store["id"])}, {"$set": {"name": "New Name"}})
    resp = await client.post(f"/v1/posts/{created['id']}/like", headers=reader.headers)
    assert resp.status_code == 200
    doc = await services.db.posts.find_one({"_id": ObjectId(created["id"])})
    second = (await hydrate_posts(own, [doc], ObjectId(reader.id)))[0]
    assert second["author"]["display_name"] == author.username and second["store"]["name"] == "Old Name"
    # ... but likes are read every time
    assert second["liked_by_me"] is True and second["like_count"] == 1
    # forgetting (what a rename would do) reads them afresh
    own.summaries.forget("user", ObjectId(author.id))
    own.summaries.forget("store", ObjectId(store["id"]))
    third = (await hydrate_posts(own, [doc], ObjectId(reader.id)))[0]
    assert third["author"]["display_name"] == "Renamed" and third["store"]["name"] == "New Name"


async def test_entries_expire_and_the_cache_is_bounded(client, services):
    a, b = await register(client), await register(client)
    docs = [await services.db.posts.find_one({"_id": ObjectId((await post(client, who, "x"))["id"])})
            for who in (a, b)]
    own = _own(services, SummaryCache(ttl_s=0.2, max_entries=1))
    await hydrate_posts(own, docs, None)
    # only one entry is kept (which one depends on the order the page's authors were filled in)
    cached = {acct.username: own.summaries.get("user", ObjectId(acct.id)) for acct in (a, b)}
    kept = [name for name, (found, summary) in cached.items() if found and summary["username"] == name]
    assert len(kept) == 1, cached
    kept_id = ObjectId(a.id if kept[0] == a.username else b.id)
    await asyncio.sleep(0.3)
    assert own.summaries.get("user", kept_id) == (False, None)  # expired


async def test_a_handed_out_post_does_not_change_the_cache(client, services):
    author = await register(client)
    doc = await services.db.posts.find_one({"_id": ObjectId((await post(client, author, "x"))["id"])})
    own = _own(services, SummaryCache())
    out = (await hydrate_posts(own, [doc], None))[0]
    out["author"]["username"] = "mallory"
    again = (await hydrate_posts(own, [doc], None))[0]
    assert again["author"]["username"] == author.username


async def test_unknown_authors_are_not_remembered(client, services):
    ghost = ObjectId()
    doc = {"_id": ObjectId(), "author_id": ghost, "text": "t", "status": "published",
           "created_at": ObjectId().generation_time}
    own = _own(services, SummaryCache())
    out = (await hydrate_posts(own, [doc], None))[0]
    assert out["author"] == {"id": str(ghost), "username": "", "display_name": ""}
    assert own.summaries.get("user", ghost) == (False, None)


async def test_a_name_read_while_a_rename_was_seen_is_not_cached(client, services, monkeypatch):
    """A page that reads a summary from MongoDB while another page syncs the cache to a rename's
    generation shows what it read, but does not cache it: the read may predate the rename."""
    import feed.hydrate as hydrate

    author, reader = await register(client), await register(client)
    created = await post(client, author, "race")
    doc = await services.db.posts.find_one({"_id": ObjectId(created["id"])})
    cache = SummaryCache()
    own = _own(services, cache)
    real_load = hydrate.USER_NAMES.load

    async def load_then_rename_seen(svc: Any, ids: list[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
        found = await real_load(svc, ids)
        cache.sync("moved-by-another-page")  # another page saw the rename's bump meanwhile
        return found

    monkeypatch.setattr(hydrate.USER_NAMES, "load", load_then_rename_seen)
    shown = (await hydrate_posts(own, [doc], ObjectId(reader.id)))[0]
    assert shown["author"]["username"] == author.username
    assert cache.get("user", ObjectId(author.id)) == (False, None)
    monkeypatch.setattr(hydrate.USER_NAMES, "load", real_load)
    await hydrate_posts(own, [doc], ObjectId(reader.id))  # no move this time: cached
    assert cache.get("user", ObjectId(author.id))[0]


async def test_a_posts_json_is_made_once_per_version_and_again_for_new_names(client, services):
    """A feed page's Posts as JSON (``as_json``): the same as the dicts, per viewer's like; made
    once per version of the post; made again when a summary is replaced (a rename forgets it)."""
    author, liker, other, merchant = (await register(client), await register(client), await register(client),
                                      await register(client, "merchant"))
    store = await _store(client, merchant)
    created = await post(client, author, "once #json", store_id=store["id"])
    pid = ObjectId(created["id"])
    assert (await client.post(f"/v1/posts/{pid}/like", headers=liker.headers)).status_code == 200
    own = _own(services, SummaryCache())

    async def shown(viewer: Any) -> tuple[Any, dict[str, Any], Any]:
        view = (await postcache.load(services, [pid]))[pid]  # from the memo: the slot is shared
        fragment = (await hydrate_posts(own, [view], ObjectId(viewer.id), as_json=True))[0]
        as_dict = (await hydrate_posts(own, [dict(view)], ObjectId(viewer.id)))[0]
        return orjson.loads(orjson.dumps(fragment)), as_dict, view[postcache.RENDERED]

    liked, liked_dict, slot = await shown(liker)
    unliked, unliked_dict, same_slot = await shown(other)
    assert same_slot is slot and set(slot.json[2]) == {True, False}
    assert liked == liked_dict and liked["liked_by_me"] is True and liked["like_count"] == 1
    assert unliked == unliked_dict and unliked["liked_by_me"] is False
    made = slot.json[2][True]
    await shown(liker)
    assert slot.json[2][True] is made  # not made again
    await services.db.users.update_one({"_id": ObjectId(author.id)}, {"$set": {"display_name": "Renamed"}})
    await services.db.stores.update_one({"_id": ObjectId(store["id"])}, {"$set": {"name": "New Name"}})
    own.summaries.forget("user", ObjectId(author.id))
    own.summaries.forget("store", ObjectId(store["id"]))
    renamed, renamed_dict, _ = await shown(liker)
    assert renamed == renamed_dict
    assert renamed["author"]["display_name"] == "Renamed" and renamed["store"]["name"] == "New Name"


def test_the_summary_cache_keeps_the_recently_used_within_its_bound():
    cache = SummaryCache(ttl_s=60, max_entries=3)
    a, b, c, d, s = (ObjectId() for _ in range(5))
    for oid in (a, b, c):
        cache.put("user", oid, {"id": str(oid)})
    assert cache.get_many("user", [a, d]) == ({a: {"id": str(a)}}, [d])  # a is now the most recent
    cache.put("store", s, None)  # a fourth entry: the least recently used user goes (b)
    assert cache.get_many("user", [a, b, c]) == ({a: {"id": str(a)}, c: {"id": str(c)}}, [b])
    assert cache.get("store", s) == (True, None)  # "no such store" is an answer too
    cache.forget("user", a)
    assert cache.get("user", a) == (False, None)
    cache.put("user", d, {"id": str(d)})  # within the bound after the forget: nothing else goes
    assert cache.get_many("user", [c, d])[1] == [] and cache.get("store", s)[0]
    cache.sync("g2")
    assert cache.get_many("user", [c, d]) == ({}, [c, d]) and cache.get("store", s) == (False, None)
