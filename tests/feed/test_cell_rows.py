"""The local feed's cell rows held per process under each cell's generation (``feed.cellrows``):
a first page asks Redis only for the generation of a cell the process holds, and a change made the
service's way (a post written into or taken out of a cell, a rebuild) is seen at once."""

from __future__ import annotations

import time
from typing import Any

from feed import localcells
from feed.cellrows import CELL_ROWS
from solomo.core.keys import local_cell_gen
from tests.feed.helpers import page
from tests.feed.test_local_feed import _located, _warm
from tests.support import Account, random_point, register

RADIUS_M = 900


async def _ids(client: Any, reader: Account, lat: float, lng: float) -> list[str]:
    body = await page(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=RADIUS_M, limit=20)
    return [p["id"] for p in body["items"]]


async def _cell_of(services: Any, keys: list[str], post: dict[str, Any]) -> str:
    """The key among ``keys`` (the page's cells) that holds the post's entry."""
    found = localcells.post_cells(post)
    assert found is not None
    cell_keys, member = found
    (key,) = [k for k in cell_keys if k in keys]
    assert await services.redis.zscore(key, member) is not None
    return key


async def _one_post(client: Any, services: Any) -> tuple[Account, Account, float, float, dict[str, Any], str]:
    """A post in ready cells: (its author, a reader, the place, the post, the page's cell holding it)."""
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    post = await _located(services, author, lat, lng, "first")
    keys = await _warm(services, lat, lng, RADIUS_M)
    return author, reader, lat, lng, post, await _cell_of(services, keys, post)


async def test_a_first_page_reads_only_the_generation_of_a_cell_the_process_holds(client, services):
    author, reader, lat, lng, first, key = await _one_post(client, services)
    assert await _ids(client, reader, lat, lng) == [str(first["_id"])]
    assert CELL_ROWS.get(key, time.monotonic()) is not None

    # the entry taken out in Redis alone (no new generation): the held rows are still used ...
    found = localcells.post_cells(first)
    assert found is not None
    await services.redis.zrem(key, found[1])
    assert await _ids(client, reader, lat, lng) == [str(first["_id"])]

    # ... while a change made the service's way sets a new generation, seen at the next page
    second = await _located(services, author, lat, lng, "second")
    assert await _ids(client, reader, lat, lng) == [str(second["_id"])]  # the cell read again


async def test_a_cell_without_a_generation_is_never_held(client, services):
    _, reader, lat, lng, first, key = await _one_post(client, services)
    await services.redis.delete(local_cell_gen(key))  # lost with Redis's data, or expired
    assert await _ids(client, reader, lat, lng) == [str(first["_id"])]
    found = localcells.post_cells(first)
    assert found is not None
    await services.redis.zrem(key, found[1])
    assert await _ids(client, reader, lat, lng) == []  # read again: nothing was held


async def test_a_removal_and_a_rebuild_each_set_a_new_generation(client, services):
    _, _, _, _, post, key = await _one_post(client, services)
    generations = [await services.redis.get(local_cell_gen(key))]
    await localcells.remove_post(services.redis, post)
    generations.append(await services.redis.get(local_cell_gen(key)))
    await localcells.rebuild_cells(services, [key.removeprefix("feed:local:")])
    generations.append(await services.redis.get(local_cell_gen(key)))
    assert None not in generations and len(set(generations)) == 3
