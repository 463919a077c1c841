"""Search against the real servers: match kinds, ranking, filters, visibility, topics, paging, 422s.

Every test works in its own random spot (stores) or with its own random tag (users, posts, topics),
so the session's other data never enters its results.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from search.stores import reindex_store
from tests.checkins.helpers import new_store
from tests.feed.helpers import fanned_out, post
from tests.support import Account, make_account, offset, register, wait_until


def tag() -> str:
    return "zq" + uuid.uuid4().hex[:8]


_SPOTS = random.SystemRandom()


def random_point() -> tuple[float, float]:
    """A spot of this test's own: the system's randomness, which no test's seeding of the random
    module can repeat (another test's store of the same name at the same spot would be as near)."""
    return _SPOTS.uniform(-60, 60), _SPOTS.uniform(-170, 170)


async def get(client: Any, account: Account, path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, params=params, headers=account.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def names(client: Any, account: Account, **params: Any) -> list[str]:
    return [s["name"] for s in (await get(client, account, "/v1/search/stores", **params))["items"]]


async def walk(client: Any, account: Account, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        body = await get(client, account, path, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


@pytest.fixture
async def city(client: Any) -> dict[str, Any]:
    """A merchant's stores around a random point, at known distances."""
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    spots = [("Kafei House", 800, "bar"), ("人民广场咖啡", 100, "cafe"), ("老咖啡", 50, "cafe"),
             ("咖啡时光", 600, "cafe"), ("Square Coffee", 300, "cafe"), ("渝信川菜", 150, "food")]
    stores = {}
    for name, metres, category in spots:
        slat, slng = offset(lat, lng, north_m=metres)
        stores[name] = await new_store(client, merchant, slat, slng, name=name, category=category)
    return {"lat": lat, "lng": lng, "stores": stores, "merchant": merchant}


async def test_each_match_kind_finds_the_store(client: Any, city: dict[str, Any]) -> None:
    user = await register(client)
    near = {"lat": city["lat"], "lng": city["lng"], "radius_m": 2000}
    assert "人民广场咖啡" in await names(client, user, q="咖啡", **near)  # Chinese substring
    assert "人民广场咖啡" in await names(client, user, q="广场", **near)
    for q in ("squ", "SQU", "ｓｑｕ", "cof"):  # Latin word prefixes, any case or width
        assert "Square Coffee" in await names(client, user, q=q, **near), q
    assert await names(client, user, q="quare", **near) == []  # a prefix of a word, not an infix
    for q in ("renmin", "rmgc", "renminguangchang", "RenMin"):  # pinyin, full or initials
        assert await names(client, user, q=q, **near) == ["人民广场咖啡"], q
    assert await names(client, user, q="chuancai", **near) == ["渝信川菜"]  # from any syllable
    assert await names(client, user, q="ren min", **near) == ["人民广场咖啡"]  # each word must match


async def test_best_match_first_then_nearest(client: Any, city: dict[str, Any]) -> None:
    user = await register(client)
    near = {"lat": city["lat"], "lng": city["lng"], "radius_m": 2000}
    # name starts with 咖啡 (600 m) before the substrings, nearest first (50 m, 100 m)
    assert await names(client, user, q="咖啡", **near) == ["咖啡时光", "老咖啡", "人民广场咖啡"]
    # Latin prefix of the name (800 m), then pinyin by distance (50, 100, 600 m)
    assert await names(client, user, q="kafei", **near) == ["Kafei House", "老咖啡", "人民广场咖啡", "咖啡时光"]
    body = await get(client, user, "/v1/search/stores", q="咖啡", **near)
    assert [round(s["distance_m"]) for s in body["items"]] == [600, 50, 100]


async def test_category_radius_and_no_point(client: Any, city: dict[str, Any]) -> None:
    user = await register(client)
    point = {"lat": city["lat"], "lng": city["lng"]}
    assert await names(client, user, q="kafei", category="bar", **point, radius_m=2000) == ["Kafei House"]
    assert await names(client, user, q="kafei", radius_m=120, **point) == ["老咖啡", "人民广场咖啡"]
    # without a point: no distance, best match first all the same
    ours = {s["id"] for s in city["stores"].values()}
    body = await get(client, user, "/v1/search/stores", q="renminguangchangkafei", limit=100)
    hits = [s for s in body["items"] if s["id"] in ours]
    assert [s["name"] for s in hits] == ["人民广场咖啡"] and hits[0]["distance_m"] is None


async def test_paging_walks_the_same_order(client: Any, city: dict[str, Any]) -> None:
    user = await register(client)
    near = {"lat": city["lat"], "lng": city["lng"], "radius_m": 2000, "q": "kafei"}
    whole = await names(client, user, **near)
    assert len(whole) == 4
    assert [s["name"] for s in await walk(client, user, "/v1/search/stores", 1, **near)] == whole
    assert [s["name"] for s in await walk(client, user, "/v1/search/stores", 3, **near)] == whole


async def test_rename_is_searchable_at_once(client: Any, services: Any, city: dict[str, Any]) -> None:
    user = await register(client)
    near = {"lat": city["lat"], "lng": city["lng"], "radius_m": 2000}
    store = city["stores"]["渝信川菜"]
    # what PATCH /v1/stores/{id} does: the new name committed, then the one search call
    await services.db.stores.update_one({"_id": ObjectId(store["id"])}, {"$set": {"name": "外婆家"}})
    await reindex_store(services, ObjectId(store["id"]))
    assert await names(client, user, q="waipo", **near) == ["外婆家"]
    assert await names(client, user, q="外婆", **near) == ["外婆家"]
    assert await names(client, user, q="chuancai", **near) == []
    assert await names(client, user, q="渝信", **near) == []


async def test_users_by_username_prefix_then_display_name(client: Any, services: Any) -> None:
    t = tag()
    first = await register(client, username=f"{t}_bob")
    resp = await client.post("/v1/auth/register", json={"username": tag(), "password": "password123",
                                                        "display_name": f"王小明 {t}"})
    assert resp.status_code == 201
    second = resp.json()["user"]
    found = await get(client, first, "/v1/search/users", q=t)
    assert [u["id"] for u in found["items"]] == [first.id, second["id"]]
    assert "password_hash" not in found["items"][0] and found["items"][0]["username"] == f"{t}_bob"
    assert [u["id"] for u in (await get(client, first, "/v1/search/users", q=f"小明 {t}"))["items"]] == [second["id"]]
    upper = await get(client, first, "/v1/search/users", q=t.upper())
    assert [u["id"] for u in upper["items"]] == [first.id, second["id"]]
    # a new display name (PATCH /v1/me, the keys in the same write) is found at once; a deleted account never
    renamed = await client.patch("/v1/me", json={"display_name": f"李雷 {t}"},
                                 headers={"Authorization": f"Bearer {resp.json()['token']}"})
    assert renamed.status_code == 200, renamed.text
    assert [u["id"] for u in (await get(client, first, "/v1/search/users", q=f"李雷 {t}"))["items"]] == [second["id"]]
    assert (await get(client, first, "/v1/search/users", q=f"小明 {t}"))["items"] == []
    await services.accounts.delete_user(ObjectId(second["id"]))
    assert [u["id"] for u in (await get(client, first, "/v1/search/users", q=t))["items"]] == [first.id]


async def test_posts_visibility_blocks_and_mutes(client: Any, services: Any, celery_worker: Any) -> None:
    t = tag()
    reader, author, blocker, muted, blocked = [await register(client) for _ in range(5)]
    mod = await make_account(services, "moderator")
    kept = await post(client, author, f"今天的咖啡很好喝 {t} cold brew")
    removed = await post(client, author, f"咖啡 {t} removed by a moderator")
    deleted = await post(client, author, f"咖啡 {t} deleted by its author")
    by_blocker = await post(client, blocker, f"咖啡 {t} from someone who blocks the reader")
    by_muted = await post(client, muted, f"咖啡 {t} from someone the reader mutes")
    by_blocked = await post(client, blocked, f"咖啡 {t} from someone the reader blocks")
    now = datetime.now(UTC)
    await services.db.blocks.insert_many([
        {"blocker_id": ObjectId(blocker.id), "blocked_id": ObjectId(reader.id), "created_at": now, "created_ms": 0},
        {"blocker_id": ObjectId(reader.id), "blocked_id": ObjectId(blocked.id), "created_at": now, "created_ms": 0}])
    await services.db.mutes.insert_one(
        {"muter_id": ObjectId(reader.id), "muted_id": ObjectId(muted.id), "created_at": now, "created_ms": 0})

    async def found(account: Account, q: str) -> list[str]:
        return [p["id"] for p in (await get(client, account, "/v1/search/posts", q=q))["items"]]

    everything = [by_blocked["id"], by_muted["id"], by_blocker["id"], deleted["id"], removed["id"], kept["id"]]
    for made in (kept, removed, deleted, by_blocker, by_muted, by_blocked):  # searchable once fanned out
        await fanned_out(services, made["id"])
    assert await found(author, f"咖啡 {t}") == everything  # newest first, nobody shut out
    resp = await client.post(f"/v1/moderation/posts/{removed['id']}", json={"action": "remove", "reason": "spam"},
                             headers=mod.headers)
    assert resp.status_code == 200, resp.text
    assert (await client.delete(f"/v1/posts/{deleted['id']}", headers=author.headers)).status_code == 204
    assert await found(reader, f"咖啡 {t}") == [kept["id"]]  # gone at once; blocks both ways and mutes
    assert await found(author, f"咖啡 {t}") == [by_blocked["id"], by_muted["id"], by_blocker["id"], kept["id"]]
    assert await found(reader, f"{t} 咖啡") == [kept["id"]]  # every word, any order
    assert await found(reader, f"{t} COLD br") == [kept["id"]]  # word prefixes, any case
    assert await found(reader, f"{t} 咖啡很") == [kept["id"]]  # Chinese by substring
    assert await found(reader, f"{t} 很咖啡") == []
    assert await found(reader, f"{t} hot") == []
    # paging, a page at a time
    pages = await walk(client, author, "/v1/search/posts", 1, q=f"咖啡 {t}")
    assert [p["id"] for p in pages] == [by_blocked["id"], by_muted["id"], by_blocker["id"], kept["id"]]


async def test_topics_by_prefix_with_counts(client: Any, services: Any, celery_worker: Any) -> None:
    t = tag()
    author = await register(client)
    await post(client, author, f"#{t}探店# one")
    await post(client, author, f"#{t}探店# two #{t}咖啡#")
    gone = await post(client, author, f"#{t}探店# three")

    async def topics() -> list[dict[str, Any]]:
        return (await get(client, author, "/v1/search/topics", q=f"#{t.upper()}"))["items"]

    await wait_until(lambda: _equals(topics, [{"topic": f"{t}探店", "post_count": 3},
                                             {"topic": f"{t}咖啡", "post_count": 1}]))
    assert (await get(client, author, "/v1/search/topics", q=f"{t}咖"))["items"] == [
        {"topic": f"{t}咖啡", "post_count": 1}]
    assert (await client.delete(f"/v1/posts/{gone['id']}", headers=author.headers)).status_code == 204
    await wait_until(lambda: _equals(topics, [{"topic": f"{t}探店", "post_count": 2},
                                             {"topic": f"{t}咖啡", "post_count": 1}]))
    first = await get(client, author, "/v1/search/topics", q=t, limit=1)
    rest = await get(client, author, "/v1/search/topics", q=t, limit=1, cursor=first["next_cursor"])
    assert [i["topic"] for i in first["items"] + rest["items"]] == [f"{t}探店", f"{t}咖啡"]
    assert rest["next_cursor"] is None


async def _equals(read: Any, expected: Any) -> bool:
    return bool(await read() == expected)


@pytest.mark.parametrize("path", ["stores", "users", "posts", "topics"])
async def test_q_is_1_to_64_characters_after_trimming(client: Any, path: str) -> None:
    user = await register(client)
    for q in ("", "   ", "x" * 65, " " + "x" * 65 + " "):
        resp = await client.get(f"/v1/search/{path}", params={"q": q}, headers=user.headers)
        assert resp.status_code == 422, (q, resp.text)
        assert resp.json()["error"]["code"] == "invalid"
    ok = await client.get(f"/v1/search/{path}", params={"q": "  " + "x" * 64 + "  "}, headers=user.headers)
    assert ok.status_code == 200, ok.text
    assert (await client.get(f"/v1/search/{path}")).status_code == 401
    bad = await client.get(f"/v1/search/{path}", params={"q": "x", "cursor": "nope"}, headers=user.headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_store_point_parameters_are_checked(client: Any) -> None:
    user = await register(client)
    for params in ({"lat": 31.2}, {"lng": 121.4}, {"radius_m": 500}, {"lat": 91, "lng": 0},
                   {"lat": 31.2, "lng": 121.4, "radius_m": 60000}, {"category": "nope"}):
        resp = await client.get("/v1/search/stores", params={"q": "x", **params}, headers=user.headers)
        assert resp.status_code == 422, (params, resp.text)


async def test_stores_at_one_distance_page_in_id_order(client: Any, monkeypatch: Any) -> None:
    """Several stores at one address: a batch of $geoNear cuts their group anywhere, so it is read
    again in id order — small batches here make every boundary fall inside a group."""
    from search import tiers

    merchant = await register(client, "merchant")
    user = await register(client)
    lat, lng = random_point()
    t = tag()
    made = []
    for i, metres in enumerate([0, 0, 40, 40, 40, 40, 90, 90]):
        slat, slng = offset(lat, lng, north_m=metres) if metres else (lat, lng)
        made.append(await new_store(client, merchant, slat, slng, name=f"{t} shop {i}"))
    params = {"q": t, "lat": lat, "lng": lng}
    whole = [s["id"] for s in await walk(client, user, "/v1/search/stores", 100, **params)]
    assert sorted(whole) == sorted(s["id"] for s in made)
    distances = [s["distance_m"] for s in (await get(client, user, "/v1/search/stores", **params))["items"]]
    assert distances == sorted(distances)
    monkeypatch.setattr(tiers, "BATCH", 3)
    for limit in (1, 2, 3):
        assert [s["id"] for s in await walk(client, user, "/v1/search/stores", limit, **params)] == whole
    monkeypatch.setattr(tiers, "MAX_SCAN", 2)  # a page cut short by the scan bound goes on from there
    assert [s["id"] for s in await walk(client, user, "/v1/search/stores", 5, **params)] == whole
    assert [s["id"] for s in await walk(client, user, "/v1/search/stores", 5, q=t)] == sorted(whole)


async def test_hostile_queries_find_only_real_matches(client: Any) -> None:
    """Operators, regular expressions and quotes in q are text: whatever comes back holds it."""
    from search.stores import tier_of_name
    from solomo.core.searchkeys import fold, runs

    merchant = await register(client, "merchant")
    lat, lng = random_point()
    named = await new_store(client, merchant, lat, lng, name="$gt")
    hostile = ["$gt", "$ne", ".*", "a' || '1'=='1", '{"$ne": null}', "$where", "^", "\\", "(", "[a-z]+",
               "\u200b", "\u200b\u200d", "#", "＃", "!!"]
    for q in hostile:
        for path in ("stores", "users", "posts", "topics"):
            resp = await client.get(f"/v1/search/{path}", params={"q": q, "limit": 100}, headers=merchant.headers)
            assert resp.status_code == 200, (q, path, resp.text)
            items = resp.json()["items"]
            folded = fold(q)
            if path == "stores":
                assert all(tier_of_name(s["name"], folded, runs(folded)) is not None for s in items), (q, items)
            elif path == "users":
                assert all(u["username"].lower().startswith(q.lower()) or folded in fold(u["display_name"])
                           for u in items), (q, items)
            elif path == "topics":
                assert all(fold(i["topic"]).startswith(folded.lstrip("#")) for i in items), (q, items)
    near = await get(client, merchant, "/v1/search/stores", q="$gt", lat=lat, lng=lng)
    assert near["items"][0]["id"] == named["id"]  # the literal name is found, first (nearest of its tier)


async def test_posts_search_follows_block_and_mute_changes_at_once(client: Any, services: Any,
                                                                  celery_worker: Any) -> None:
    """Post search reads the viewer's shut-out set from the feeds' Redis copy: a block or mute made
    after a search (the set already cached) hides the author from the next search, and undoing it
    shows them again."""
    t = tag()
    reader, author, other = [await register(client) for _ in range(3)]
    mine = await post(client, author, f"咖啡 {t} by the author")
    theirs = await post(client, other, f"咖啡 {t} by someone else")
    for made in (mine, theirs):
        await fanned_out(services, made["id"])

    async def found() -> list[str]:
        return [p["id"] for p in (await get(client, reader, "/v1/search/posts", q=f"咖啡 {t}"))["items"]]

    assert await found() == [theirs["id"], mine["id"]]  # the set is built and cached now
    for verb in ("block", "mute"):
        resp = await client.post(f"/v1/users/{author.id}/{verb}", headers=reader.headers)
        assert resp.status_code == 204, resp.text
        assert await found() == [theirs["id"]], verb
        resp = await client.delete(f"/v1/users/{author.id}/{verb}", headers=reader.headers)
        assert resp.status_code == 204, resp.text
        assert await found() == [theirs["id"], mine["id"]], verb
    resp = await client.post(f"/v1/users/{reader.id}/block", headers=author.headers)  # blocked by the author
    assert resp.status_code == 204, resp.text
    assert await found() == [theirs["id"]]
