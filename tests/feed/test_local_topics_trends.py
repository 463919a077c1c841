"""Local feeds (geo cells + exact distance), topic listings, and hot topics."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from feed import trends
from feed.fanout import fanout_post
from feed.posts import build_post, insert_post
from geo.cells import GRID_LEVELS, covering_grid, grid_cell
from geo.privacy import coarsen
from solomo.core.keys import local_cell_key
from tests.feed.helpers import all_ids, fanned_out, ids, post, principal
from tests.support import offset, random_point, register, wait_until


async def test_local_feed_by_exact_distance(client, services, celery_worker):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    near = await post(client, author, "near", **dict(zip(("lat", "lng"), offset(lat, lng, 300, 400), strict=True)))
    edge = await post(client, author, "edge", **dict(zip(("lat", "lng"), offset(lat, lng, 1900, 0), strict=True)))
    far = await post(client, author, "far", **dict(zip(("lat", "lng"), offset(lat, lng, 0, 2600), strict=True)))
    nowhere = await post(client, author, "no location")
    for p in (near, edge, far, nowhere):
        await fanned_out(services, p["id"])
    got = await all_ids(client, reader, "/v1/feed/local", limit=1, lat=lat, lng=lng)
    assert got == [edge["id"], near["id"]]
    got = await all_ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=3000)
    assert got == [far["id"], edge["id"], near["id"]]
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=100) == []
    # the cells were built (in the background) after the first read, and later posts are pushed into them
    small = covering_grid(lat, lng, 100)  # the 100 m read's level
    assert small is not None
    finest = local_cell_key(grid_cell(*coarsen(lat, lng), small[0].level).name)

    async def cell_ready() -> bool:
        return await services.redis.zscore(finest, "~") == 1

    await wait_until(cell_ready, timeout=15)
    newer = await post(client, author, "newer", lat=lat, lng=lng)
    await fanned_out(services, newer["id"])
    # written to the cell of its public (grid) position, which may be the next cell over
    assert any(m.startswith(newer["id"]) for m in await services.redis.zrange(finest, 0, -1))
    assert (await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng))[0] == newer["id"]
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng, radius_m=50000)


async def test_local_feed_hides_deleted_and_rebuilds_after_flush(client, services, celery_worker):
    author, reader = await register(client), await register(client)
    lat, lng = random_point()
    kept = await post(client, author, "kept", lat=lat, lng=lng)
    gone = await post(client, author, "gone", lat=lat, lng=lng)
    for p in (kept, gone):
        await fanned_out(services, p["id"])
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng) == [gone["id"], kept["id"]]
    await client.delete(f"/v1/posts/{gone['id']}", headers=author.headers)
    await fanned_out(services, gone["id"])
    finest = local_cell_key(grid_cell(*coarsen(lat, lng), max(GRID_LEVELS)).name)
    assert not any(m.startswith(gone["id"]) for m in await services.redis.zrange(finest, 0, -1))
    await services.redis.flushdb()
    assert await ids(client, reader, "/v1/feed/local", lat=lat, lng=lng) == [kept["id"]]


async def test_local_feed_bad_input(client):
    reader = await register(client)
    for params in ({"lat": 91, "lng": 0}, {"lat": 0, "lng": 181}, {"lat": "x", "lng": 0}, {"lng": 0},
                   {"lat": 0, "lng": 0, "radius_m": 50001}, {"lat": 0, "lng": 0, "radius_m": 0},
                   {"lat": "nan", "lng": 0}, {"lat": 0, "lng": 0, "bogus": 1}):
        resp = await client.get("/v1/feed/local", params=params, headers=reader.headers)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"]["code"] == "invalid"


async def test_topic_listing_any_case_and_width(client, services, celery_worker):
    author, reader = await register(client), await register(client)
    tag = "Tag" + uuid.uuid4().hex[:8]
    cn = "话题" + uuid.uuid4().hex[:6]
    a = await post(client, author, f"first #{tag}")
    b = await post(client, author, f"second #{tag.upper()}# and #{cn}#")
    c = await post(client, author, f"third #{tag.lower()}")
    hidden = await post(client, author, f"hidden #{tag}")
    for p in (a, b, c, hidden):
        await fanned_out(services, p["id"])
    await client.delete(f"/v1/posts/{hidden['id']}", headers=author.headers)
    await fanned_out(services, hidden["id"])
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in tag)  # ＴａｇＸＸ…
    for spelled in (tag, tag.lower(), full_width, f"%23{tag}"):
        assert await all_ids(client, reader, f"/v1/topics/{spelled}/posts", limit=2) == [c["id"], b["id"], a["id"]]
    assert await ids(client, reader, f"/v1/topics/{cn}/posts") == [b["id"]]
    assert await ids(client, reader, f"/v1/topics/{cn}%23/posts") == [b["id"]]
    resp = await client.get("/v1/topics/%23/posts", headers=reader.headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_topic"
    resp = await client.get(f"/v1/topics/{'x' * 100}/posts", headers=reader.headers)
    assert resp.status_code == 422


async def test_hot_topics_unique_authors_now_against_before(client, services):
    tag, steady, loner = (f"hot{uuid.uuid4().hex[:8]}", f"steady{uuid.uuid4().hex[:8]}",
                          f"loner{uuid.uuid4().hex[:8]}")
    authors = [await register(client) for _ in range(5)]
    now = datetime.now(UTC)

    async def publish(account, text, at):
        doc = await build_post(services, principal(account), text, created_at=at)
        await insert_post(services, doc)
        await fanout_post(services, doc["_id"])
        return doc

    for account in authors:
        await publish(account, f"#{tag} is new", now)
        await publish(account, f"#{steady} as every hour", now)
        for hours in range(1, trends.LOOKBACK + trends.WINDOW + 1):
            await publish(account, f"#{steady} as every hour", now - timedelta(hours=hours))
    for _ in range(10):
        await publish(authors[0], f"#{loner} again and again", now)  # one author, many posts
    hot = await trends.hot(services, 100, now_s=time.time())
    by_topic = {h["topic"]: h for h in hot}
    assert tag in by_topic and by_topic[tag]["post_count"] == 5
    assert by_topic[tag]["score"] == (5 - 1) ** 2
    assert steady not in by_topic and loner not in by_topic
    # the same burst six hours later has decayed (half-life two hours)
    later = trends.score_hours([0] * 6 + [5] + [0] * 5, now_s=(trends.bucket_of(time.time() * 1000) + 6) * 3600.0,
                          first_bucket=trends.bucket_of(time.time() * 1000) - 6)
    assert 0 < later < 16 / 4
    await trends.refresh_hot(services)  # the route serves the cached ranking (see test_hot_topics_cached)
    resp = await client.get("/v1/topics/hot", params={"limit": 100}, headers=authors[0].headers)
    assert resp.status_code == 200
    assert tag in [h["topic"] for h in resp.json()["items"]]
    assert (await client.get("/v1/topics/hot", params={"limit": 0}, headers=authors[0].headers)).status_code == 422


async def test_retracted_posts_leave_trends(client, services):
    tag = f"gone{uuid.uuid4().hex[:8]}"
    authors = [await register(client) for _ in range(3)]
    docs = []
    for account in authors:
        doc = await build_post(services, principal(account), f"#{tag}")
        await insert_post(services, doc)
        await fanout_post(services, doc["_id"])
        docs.append(doc)
    assert tag in [h["topic"] for h in await trends.compute_hot(services, 100)]
    for doc in docs[:2]:
        await services.db.posts.update_one({"_id": doc["_id"]}, {"$set": {"status": "removed"}})
        await fanout_post(services, doc["_id"])

    async def gone() -> bool:
        return tag not in [h["topic"] for h in await trends.compute_hot(services, 100)]

    await wait_until(gone, timeout=2)
