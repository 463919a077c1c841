"""Read-built timelines: topic and cell keys expire, cold local reads come from MongoDB while the
cells are rebuilt in the background, and the hot-topics ranking is computed at most every few seconds."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from feed import localcells, topics, trends
from feed.fanout import fanout_post
from feed.posts import build_post, insert_post
from geo.cells import covering_grid
from solomo.core.keys import (
    TREND_HOT,
    TREND_HOT_LOCK,
    local_cell_key,
    local_cell_rebuild_lock,
    topic_key,
    trend_top,
)
from solomo.core.ttlrefresh import REFRESHES
from tests.feed.helpers import all_ids, fanned_out, ids, post, principal
from tests.support import offset, random_point, register, wait_until


async def test_topic_listing_expires_and_reads_refresh_it(client, services, celery_worker):
    reader, author = await register(client), await register(client)
    nothing = f"none{uuid.uuid4().hex[:10]}"
    assert await ids(client, reader, f"/v1/topics/{nothing}/posts") == []
    ttl = await services.redis.ttl(topic_key(nothing))
    assert 0 < ttl <= topics.EMPTY_TTL_S  # an empty rebuild is short-lived, never permanent

    tag = f"kept{uuid.uuid4().hex[:10]}"
    first = await post(client, author, f"#{tag} one")
    await fanned_out(services, first["id"])
    assert await ids(client, reader, f"/v1/topics/{tag}/posts") == [first["id"]]
    rkey = topic_key(tag)
    assert topics.EMPTY_TTL_S < await services.redis.ttl(rkey) <= topics.TOPIC_TTL_S
    await services.redis.expire(rkey, 50)
    assert await ids(client, reader, f"/v1/topics/{tag}/posts") == [first["id"]]
    assert 0 < await services.redis.ttl(rkey) <= 50  # refreshed by this process a moment ago: not again yet
    REFRESHES.forget()  # as if ttlrefresh.EVERY_S had passed
    assert await ids(client, reader, f"/v1/topics/{tag}/posts") == [first["id"]]
    assert await services.redis.ttl(rkey) > topics.TOPIC_TTL_S - 60  # the read refreshed it
    second = await post(client, author, f"#{tag} two")  # the fan-out keeps writing into the listing
    await fanned_out(services, second["id"])
    assert await services.redis.zscore(rkey, second["id"]) is not None
    await services.redis.delete(rkey)  # expired: the next read rebuilds it
    assert await ids(client, reader, f"/v1/topics/{tag}/posts") == [second["id"], first["id"]]


async def test_cold_local_read_is_served_from_mongodb_and_cells_rebuilt_in_background(
        client, services, celery_worker):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    radius = 3000
    made = []
    for i, (north, east) in enumerate([(100, 0), (-1500, 900), (0, -2500), (2000, 2000)]):
        made.append(await post(client, author, f"local {i}",
                               **dict(zip(("lat", "lng"), offset(lat, lng, north, east), strict=True))))
    for p in made:
        await fanned_out(services, p["id"])
    expected = [p["id"] for p in reversed(made)]  # 100 m to 2828 m away: all inside the circle
    cells = covering_grid(lat, lng, radius)
    assert cells is not None
    keys = [local_cell_key(c.name) for c in cells]
    locks = [local_cell_rebuild_lock(c.name) for c in cells]

    # a rebuild of every cell is already queued (the locks are held): the read must not build them itself
    for lock in locks:
        await services.redis.set(lock, "1", ex=60)
    cold = await all_ids(client, reader, "/v1/feed/local", limit=2, lat=lat, lng=lng, radius_m=radius)
    assert cold == expected
    assert [await services.redis.exists(k) for k in keys] == [0] * len(keys)

    # with the locks free, a cold read queues the rebuild and still answers from MongoDB
    await services.redis.delete(*locks)
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=radius) == expected

    async def built() -> bool:
        return all(s == 1 for s in [await services.redis.zscore(k, "~") for k in keys])

    await wait_until(built, timeout=15)

    async def released() -> bool:  # each lock goes once its cell is written: a round trip after its marker
        return [await services.redis.exists(lock) for lock in locks] == [0] * len(locks)

    await wait_until(released, timeout=5)
    warm = await all_ids(client, reader, "/v1/feed/local", limit=2, lat=lat, lng=lng, radius_m=radius)
    assert warm == cold  # the same answer either way
    for key in keys:
        assert 0 < await services.redis.ttl(key) <= localcells.CELL_TTL_S

    # the warm read comes from the cells: a post not fanned out yet is not in them (MongoDB has it)
    doc = await build_post(services, principal(author), "sneaked", lat=lat, lng=lng)
    await insert_post(services, doc)
    assert str(doc["_id"]) not in await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=radius)
    await fanout_post(services, doc["_id"])
    assert (await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=radius))[0] == str(doc["_id"])


async def test_empty_cells_are_short_lived_and_reads_refresh_cells(client, services):
    lat, lng = random_point()
    cells = covering_grid(lat, lng, 500)
    assert cells is not None
    key = local_cell_key(cells[0].name)
    assert await localcells.rebuild_cells(services, [cells[0].name]) == 0
    assert 0 < await services.redis.ttl(key) <= localcells.EMPTY_TTL_S
    reader = await register(client)
    await localcells.rebuild_cells(services, [c.name for c in cells])
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=500) == []
    assert await services.redis.ttl(key) > localcells.CELL_TTL_S - 60  # read again: kept like a used area
    await services.redis.expire(key, 50)
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=500) == []
    assert 0 < await services.redis.ttl(key) <= 50  # refreshed by this process a moment ago: not again yet
    REFRESHES.forget()  # as if ttlrefresh.EVERY_S had passed
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=500) == []
    assert await services.redis.ttl(key) > localcells.CELL_TTL_S - 60


async def test_hot_topics_are_served_from_a_cached_ranking(client, services, monkeypatch):
    monkeypatch.setattr(trends, "HOT_FRESH_S", 3600.0)  # no recomputation during the test, however slow
    # the run's earlier modules (spam and burst tests, many authors each) may fill the top 100 of
    # this hour: the recent hours' candidates start empty, so the ranking is this test's to read
    now = int(time.time() // trends.BUCKET_S)
    await services.redis.delete(*(trend_top(h) for h in range(now - trends.LOOKBACK, now + 1)))
    authors = [await register(client) for _ in range(3)]
    tag = f"cached{uuid.uuid4().hex[:8]}"
    await trends.refresh_hot(services)
    before = (await client.get("/v1/topics/hot", params={"limit": 100}, headers=authors[0].headers)).json()
    for account in authors:
        doc = await build_post(services, principal(account), f"#{tag}", created_at=datetime.now(UTC))
        await insert_post(services, doc)
        await fanout_post(services, doc["_id"])
    assert tag in [h["topic"] for h in await trends.compute_hot(services, 100)]
    # within the freshness window every request is served from the stored ranking: no recount
    resp = await client.get("/v1/topics/hot", params={"limit": 100}, headers=authors[0].headers)
    assert resp.status_code == 200 and resp.json() == before
    assert 0 < await services.redis.ttl(TREND_HOT) <= trends.HOT_KEEP_S
    # once stale, one request takes the lock and recomputes; the rest keep the stored ranking meanwhile
    monkeypatch.setattr(trends, "HOT_FRESH_S", 0.0)
    await services.redis.delete(TREND_HOT_LOCK)
    await services.redis.set(TREND_HOT_LOCK, "1", px=60_000)  # someone else is recomputing
    assert (await client.get("/v1/topics/hot", params={"limit": 100}, headers=authors[0].headers)).json() == before
    await services.redis.delete(TREND_HOT_LOCK)
    got = (await client.get("/v1/topics/hot", params={"limit": 100}, headers=authors[0].headers)).json()["items"]
    assert tag in [h["topic"] for h in got]
    assert set(got[0]) == {"topic", "score", "post_count"}
    limited = (await client.get("/v1/topics/hot", params={"limit": 1}, headers=authors[0].headers)).json()
    assert len(limited["items"]) <= 1
    await services.redis.delete(TREND_HOT_LOCK)
