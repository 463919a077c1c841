"""Store search skips the tiers whose keys no store holds (search.keyflags), and a new or renamed
store is still found at once in every tier its name matches."""

from __future__ import annotations

from typing import Any

from search import keyflags
from search.stores import _tier_filters
from solomo.core.keys import store_key_flag
from solomo.core.searchkeys import fold, runs
from tests.checkins.helpers import new_store
from tests.search.test_search_api import get, random_point, tag
from tests.support import make_account


async def flag(services: Any, key: str) -> str | None:
    value = await services.redis.get(store_key_flag(key))
    return None if value is None else str(value)


async def test_an_empty_tier_is_remembered_until_a_store_gives_it_a_key(client: Any, services: Any) -> None:
    t = tag()
    merchant = await make_account(services, "merchant")
    lat, lng = random_point()
    inner = await new_store(client, merchant, lat, lng, name=f"老街 {t}")

    async def found(q: str) -> list[str]:
        return [s["id"] for s in (await get(client, merchant, "/v1/search/stores", q=q, lat=lat, lng=lng))["items"]]

    assert await found(t) == [inner["id"]]  # tier 1 (a word of the name); no name starts with it
    assert await flag(services, "n:" + t) == "0"  # the name-prefix tier is known empty now
    assert await flag(services, "w:" + t) == "1"
    first = await new_store(client, merchant, lat + 0.01, lng, name=f"{t} 小馆")  # starts with the query
    assert await flag(services, "n:" + t) == "1"  # the write flips it: no stale "empty" hides the store
    assert await found(t) == [first["id"], inner["id"]]  # name prefix first, though farther
    # a rename to a name whose prefix tier was known empty is found there at once too
    u = tag()
    assert await found(u) == [] and await flag(services, "n:" + u) == "0"
    resp = await client.patch(f"/v1/stores/{inner['id']}", json={"name": f"{u} 新名"}, headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    assert await flag(services, "n:" + u) == "1"
    assert await found(u) == [inner["id"]]


async def test_a_readers_empty_never_overwrites_a_writers_held(client: Any, services: Any) -> None:
    """The order a race could produce: the writer's flag lands between a reader's probe and its
    write. ``NX`` keeps the writer's; and a flag that is no longer true only costs a probe."""
    key = "n:" + tag()
    await keyflags.mark_held(services, [key])  # committed store's keys (no store holds it here: stale)
    assert await keyflags.empty_keys(services, [key]) == set()  # read as "may hold": the tier is read
    await services.redis.set(store_key_flag(key), 1)
    await services.redis.set(store_key_flag(key), 0, nx=True)  # what a late reader sends
    assert await flag(services, key) == "1"


async def test_lost_flags_are_probed_again(client: Any, services: Any) -> None:
    t = tag()
    merchant = await make_account(services, "merchant")
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng, name=f"{t} 书店")
    await services.redis.delete(store_key_flag("n:" + t), store_key_flag("w:" + t))  # a flush lost them
    items = (await get(client, merchant, "/v1/search/stores", q=t, lat=lat, lng=lng))["items"]
    assert [s["id"] for s in items] == [store["id"]]
    assert await flag(services, "n:" + t) == "1"  # probed in MongoDB and set again
    assert await keyflags.empty_keys(services, ["n:" + tag()]) != set()  # a key nobody holds: empty


def test_a_tier_after_an_empty_one_needs_no_exclusion() -> None:
    q = fold("咖啡")
    full = _tier_filters(q, runs(q))
    assert full[1] == {"$and": [{"search_keys": "b:咖啡"}, {"$nor": [{"search_keys": "n:咖啡"}]}]}
    skipped = _tier_filters(q, runs(q), frozenset({0}))  # no name starts with 咖啡: tier 0 is not read
    assert skipped[0] is None and skipped[1] == {"search_keys": "b:咖啡"}
    q = fold("kafei")  # no name holds the word: tier 2 (pinyin) needs no exclusion of tier 1
    skipped = _tier_filters(q, runs(q), frozenset({0, 1}))
    assert skipped[:2] == [None, None] and "$nor" not in str(skipped[2]) and "$nor" in str(skipped[3])
