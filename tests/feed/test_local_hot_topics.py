"""Local hot topics (同城热门) and a topic's posts near a point, against the real servers."""

from __future__ import annotations

import time
import uuid
from typing import Any

from bson import ObjectId

from feed import localtrends, trends
from feed.fanout import fanout_post
from feed.indexes import TOPIC_NEAR_INDEX
from feed.local import Circle
from feed.posts import build_post, insert_post
from geo.cells import grid_cell
from geo.distance import fast_m
from geo.privacy import coarsen
from solomo.core.keys import (
    local_trend_authors,
    local_trend_near,
    local_trend_posts,
    local_trend_ranking,
    local_trend_seen,
    local_trend_top,
    local_trend_unique,
)
from tests.feed.helpers import all_ids, fanned_out, post, principal
from tests.support import Account, offset, random_point, register, wait_until

PEOPLES_SQUARE = (31.2323, 121.4750)
LUJIAZUI = (31.2397, 121.4998)  # 2.5 km east, across the river
TIANANMEN = (39.9087, 116.3975)


def tag(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def publish(services: Any, account: Account, text: str, lat: float | None = None,
                  lng: float | None = None) -> dict[str, Any]:
    """A post written and fanned out in this process (the worker's own function)."""
    doc = await build_post(services, principal(account), text, lat=lat, lng=lng)
    await insert_post(services, doc)
    await fanout_post(services, doc["_id"])
    return doc


async def near(services: Any, point: tuple[float, float], radius_m: float = 20000) -> dict[str, dict[str, Any]]:
    return {h["topic"]: h for h in await localtrends.hot_near(services, *point, radius_m, 100, now_s=time.time())}


async def test_two_cities_see_different_lists_through_the_worker(client, services, celery_worker):
    shanghai, beijing = tag("sh"), tag("bj")
    people = [await register(client) for _ in range(4)]
    posts = []
    for i, account in enumerate(people):  # spread over the city (different districts too)
        spot = offset(*PEOPLES_SQUARE, 1500 * i, -900 * i)
        posts.append(await post(client, account, f"#{shanghai}# 外滩 {i}", lat=spot[0], lng=spot[1]))
    for account in people[:3]:
        posts.append(await post(client, account, f"故宫 #{beijing}", lat=TIANANMEN[0], lng=TIANANMEN[1]))
    for p in posts:
        await fanned_out(services, p["id"])
    reader = people[0]

    async def topics_at(point: tuple[float, float]) -> list[str]:
        resp = await client.get("/v1/topics/hot", params={"lat": point[0], "lng": point[1], "limit": 100},
                                headers=reader.headers)
        assert resp.status_code == 200, resp.text
        return [h["topic"] for h in resp.json()["items"]]

    # served from cached rankings (at most AREA_FRESH_S + NEAR_FRESH_S old): polled, bounded
    async def sees(point: tuple[float, float], present: str, absent: str) -> bool:
        got = await topics_at(point)
        assert absent not in got
        return present in got

    await wait_until(lambda: sees(PEOPLES_SQUARE, shanghai, beijing), timeout=3 * localtrends.AREA_FRESH_S)
    await wait_until(lambda: sees(TIANANMEN, beijing, shanghai), timeout=3 * localtrends.AREA_FRESH_S)
    items = {h["topic"]: h for h in (await client.get(
        "/v1/topics/hot", params={"lat": PEOPLES_SQUARE[0], "lng": PEOPLES_SQUARE[1], "limit": 100},
        headers=reader.headers)).json()["items"]}
    assert items[shanghai]["post_count"] == 4 and items[shanghai]["score"] > 0
    areas = localtrends.areas_for(*PEOPLES_SQUARE, localtrends.DEFAULT_RADIUS_M)
    merged = local_trend_near(a.name for a in areas)  # the circle's merged ranking, just served
    assert 0 < await services.redis.ttl(merged) <= localtrends.NEAR_FRESH_S
    assert shanghai in await services.redis.get(merged)
    # far from both: neither; everywhere (no point): both, from the global list
    assert not {shanghai, beijing} & set(await topics_at((22.54, 114.06)))  # Shenzhen
    await trends.refresh_hot(services)
    everywhere = [h["topic"] for h in (await client.get("/v1/topics/hot", params={"limit": 100},
                                                        headers=reader.headers)).json()["items"]]
    assert shanghai in everywhere and beijing in everywhere
    # each area's ranking is cached too, bounded in time
    for area in areas:
        assert 0 < await services.redis.ttl(local_trend_ranking(area.name)) <= localtrends.AREA_KEEP_S


async def test_unique_authors_and_the_radius(client, services):
    crowd, loner, across = tag("crowd"), tag("loner"), tag("across")
    authors = [await register(client) for _ in range(3)]
    for account in authors:
        await publish(services, account, f"#{crowd} at the square", *PEOPLES_SQUARE)
    for _ in range(10):  # one author, many posts: one author
        await publish(services, authors[0], f"#{loner} again", *PEOPLES_SQUARE)
    for account in authors[:2]:  # two authors in Lujiazui, 2.5 km away
        await publish(services, account, f"#{across}", *LUJIAZUI)
    got = await near(services, PEOPLES_SQUARE)
    assert got[crowd]["score"] == (3 - 1) ** 2 and got[crowd]["post_count"] == 3
    assert loner not in got
    assert across in got  # 20 km around the square reaches across the river
    # areas are districts: 1 km around Lujiazui merges only the areas that circle reaches
    small = await near(services, LUJIAZUI, 1000)
    assert across in small
    assert all(c.level == max(localtrends.AREA_LEVELS) for c in localtrends.areas_for(*LUJIAZUI, 1000))
    assert crowd not in await near(services, TIANANMEN)


async def test_an_author_counts_once_whatever_areas_they_post_from(client, services):
    """Posting one tag from many districts (made-up positions, say) does not make one account many
    authors of the merged ranking."""
    topic = tag("spread")
    spammer, other = await register(client), await register(client)
    spots = [offset(*PEOPLES_SQUARE, north, east) for north, east in
             ((0, 0), (16000, 0), (-16000, 0), (0, 17000), (0, -17000), (11000, 11000), (-11000, -11000))]
    radius = 20000
    level = localtrends.areas_for(*PEOPLES_SQUARE, radius)[0].level
    assert len({grid_cell(*coarsen(*spot), level) for spot in spots}) >= 4  # really several areas
    for spot in spots:
        await publish(services, spammer, f"#{topic}# buy now", *spot)
    assert topic not in await near(services, PEOPLES_SQUARE, radius)  # one author: below the rule
    await publish(services, other, f"#{topic}#", *PEOPLES_SQUARE)
    got = (await near(services, PEOPLES_SQUARE, radius))[topic]
    assert got["score"] == (2 - 1) ** 2 and got["post_count"] == len(spots) + 1


async def test_removed_hidden_deleted_posts_take_their_counts_away(client, services):
    topic = tag("gone")
    authors = [await register(client) for _ in range(4)]
    docs = [await publish(services, a, f"#{topic}", *PEOPLES_SQUARE) for a in authors]
    assert (await near(services, PEOPLES_SQUARE))[topic]["post_count"] == 4
    for doc, status in zip(docs[:3], ("removed", "hidden", "deleted"), strict=True):
        await services.db.posts.update_one({"_id": doc["_id"]}, {"$set": {"status": status},
                                                                 "$inc": {"status_version": 1}})
        await fanout_post(services, doc["_id"])
    assert topic not in await near(services, PEOPLES_SQUARE)  # one author left: below the rule
    level = max(localtrends.AREA_LEVELS)
    area = grid_cell(*coarsen(*PEOPLES_SQUARE), level).name
    hour = trends.bucket_of(docs[0]["created_ms"])
    assert await services.redis.hget(local_trend_posts(level, hour, area), topic) == "1"
    assert await services.redis.hget(local_trend_unique(level, hour, area), topic) == "1"
    assert await services.redis.hgetall(local_trend_authors(level, hour, topic)) == {
        authors[3].id: area, f"{authors[3].id}|{area}": "1"}
    assert await services.redis.zscore(local_trend_top(level, hour, area), topic) == 1
    # a restored post counts again
    await services.db.posts.update_one({"_id": docs[0]["_id"]}, {"$set": {"status": "published"},
                                                                 "$inc": {"status_version": 1}})
    await fanout_post(services, docs[0]["_id"])
    assert (await near(services, PEOPLES_SQUARE))[topic]["post_count"] == 2


async def test_retried_fanouts_do_not_double_count(client, services):
    topic = tag("retry")
    authors = [await register(client) for _ in range(2)]
    docs = [await publish(services, a, f"#{topic}", *TIANANMEN) for a in authors]
    for _ in range(2):  # redelivered tasks, and the fan-out's own counting called again
        await fanout_post(services, docs[0]["_id"])
        assert await localtrends.record(services, docs[0]) == 0
    got = await near(services, TIANANMEN)
    assert got[topic]["post_count"] == 2 and got[topic]["score"] == 1
    level = min(localtrends.AREA_LEVELS)
    area = grid_cell(*coarsen(*TIANANMEN), level).name
    hour = trends.bucket_of(docs[0]["created_ms"])
    assert await services.redis.exists(local_trend_seen(level, hour, docs[0]["_id"]))
    # a repeated retraction takes the post out once
    assert await localtrends.forget(services, docs[0]) == len(localtrends.AREA_LEVELS)
    assert await localtrends.forget(services, docs[0]) == 0
    assert await services.redis.hget(local_trend_posts(level, hour, area), topic) == "1"
    assert await services.redis.hget(local_trend_unique(level, hour, area), topic) == "1"


async def test_keys_expire_and_each_area_hour_is_capped(client, services):
    author = await register(client)
    point = random_point()
    first = None
    per_post = 20  # feed.text.MAX_TOPICS
    for n in range(localtrends.AREA_TOP_K // per_post + 2):
        text = " ".join(f"#{tag('cap')}" for _ in range(per_post))
        doc = await publish(services, author, f"{n} {text}", *point)
        first = first or doc
    assert first is not None
    hour = trends.bucket_of(first["created_ms"])
    for level in localtrends.AREA_LEVELS:
        area = grid_cell(*coarsen(*point), level).name
        assert await services.redis.zcard(local_trend_top(level, hour, area)) == localtrends.AREA_TOP_K
        topic = first["topics"][0]["key"]
        for key in (local_trend_top(level, hour, area), local_trend_posts(level, hour, area),
                    local_trend_unique(level, hour, area), local_trend_authors(level, hour, topic),
                    local_trend_seen(level, hour, first["_id"])):
            assert 0 < await services.redis.ttl(key) <= trends.KEEP_S, key
    # a ranking reads the capped tops only, and keeps the best few per area
    got = await localtrends.compute_areas(services, [grid_cell(*coarsen(*point), 11)], time.time())
    assert len(next(iter(got.values()))["topics"]) == localtrends.AREA_TOPICS


async def test_counted_at_the_public_position(client, services):
    """A fix a few metres from an area's edge is counted where its public (snapped) position is."""
    level = max(localtrends.AREA_LEVELS)
    lat = PEOPLES_SQUARE[0]
    fix = None
    for i in range(40000):  # find a fix whose snapped position lies in the next area
        candidate = (lat + i * 0.00001, PEOPLES_SQUARE[1])
        if grid_cell(*candidate, level) != grid_cell(*coarsen(*candidate), level):
            fix = candidate
            break
    assert fix is not None
    author = await register(client)
    doc = await publish(services, author, f"#{tag('edge')}", *fix)
    counted = localtrends.post_areas(doc)
    assert grid_cell(*coarsen(*fix), level) in counted
    assert grid_cell(*fix, level) not in counted
    hour = trends.bucket_of(doc["created_ms"])
    topic = doc["topics"][0]["key"]
    public_area, fix_area = grid_cell(*coarsen(*fix), level).name, grid_cell(*fix, level).name
    assert await services.redis.hget(local_trend_posts(level, hour, public_area), topic) == "1"
    assert await services.redis.hget(local_trend_posts(level, hour, fix_area), topic) is None


async def test_topic_posts_near_a_point(client, services, celery_worker):
    topic = tag("near")
    author, reader = await register(client), await register(client)
    home = random_point()
    inside = [await post(client, author, f"#{topic} {i}", **dict(zip(
        ("lat", "lng"), offset(*home, 700 * i, 500), strict=True))) for i in range(3)]
    out_default = await post(client, author, f"#{topic} six km", **dict(zip(("lat", "lng"), offset(*home, 6000, 0),
                                                                           strict=True)))
    # thousands of km away whatever the random point (its mirror image across the equator was not,
    # for a point within 0.0225° of the equator: CI once drew one, it seems)
    elsewhere = await post(client, author, f"#{topic} far", lat=home[0] + (30 if home[0] < 0 else -30), lng=home[1])
    unlocated = await post(client, author, f"#{topic} nowhere")
    other = await post(client, author, f"#{tag('other')}", lat=home[0], lng=home[1])
    gone = await post(client, author, f"#{topic} deleted", lat=home[0], lng=home[1])
    for p in (*inside, out_default, elsewhere, unlocated, other, gone):
        await fanned_out(services, p["id"])
    assert (await client.delete(f"/v1/posts/{gone['id']}", headers=author.headers)).status_code == 204
    path = f"/v1/topics/{topic}/posts"
    newest_first = [p["id"] for p in reversed(inside)]
    assert await all_ids(client, reader, path, limit=1, lat=home[0], lng=home[1]) == newest_first
    assert await all_ids(client, reader, path, limit=2, lat=home[0], lng=home[1], radius_m=7000) == [
        out_default["id"], *newest_first]
    assert await all_ids(client, reader, path, limit=2, lat=home[0], lng=home[1], radius_m=650) == [inside[0]["id"]]
    everywhere = await all_ids(client, reader, path, limit=10)
    assert set(everywhere) == {*newest_first, out_default["id"], elsewhere["id"], unlocated["id"]}
    # answers show the public position only
    page = (await client.get(path, params={"lat": home[0], "lng": home[1]}, headers=reader.headers)).json()
    assert all((p["lat"], p["lng"]) == coarsen(p["lat"], p["lng"]) for p in page["items"])


async def test_topic_near_uses_the_public_position(client, services):
    """Membership is decided on the snapped position: a fix inside the circle whose public position
    is outside is not listed (and the reverse is)."""
    topic = tag("pub")
    author, reader = await register(client), await register(client)
    center = random_point()
    found_out = found_in = None
    for radius in range(1000, 1500, 7):  # the grid's phase against the edge differs with the radius
        found_out = found_in = None
        for north, east in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            for i in range(1600):
                d = radius - 80 + i * 0.1
                fix = offset(*center, north * d, east * d)
                inside_fix = fast_m(*center, *fix) <= radius
                inside_public = Circle(*center, radius).holds(*coarsen(*fix))
                if inside_fix and not inside_public:
                    found_out = found_out or fix
                if inside_public and not inside_fix:
                    found_in = found_in or fix
        if found_out and found_in:
            break
    assert found_out is not None and found_in is not None
    hidden_by_grid = await publish(services, author, f"#{topic} a", *found_out)
    shown_by_grid = await publish(services, author, f"#{topic} b", *found_in)
    got = await all_ids(client, reader, f"/v1/topics/{topic}/posts", lat=center[0], lng=center[1], radius_m=radius)
    assert got == [str(shown_by_grid["_id"])]
    assert str(hidden_by_grid["_id"]) not in got


async def test_topic_near_reads_an_index_not_the_circle(client, services):
    """explain(): the hinted index bounds the scan by topic and area; posts of other topics nearby
    and of the topic elsewhere are never examined."""
    topic = tag("idx")
    author = await register(client)
    point = random_point()
    for i in range(30):
        await insert_post(services, await build_post(services, principal(author), f"#{tag('noise')} {i}",
                                                     lat=point[0], lng=point[1]))
        await insert_post(services, await build_post(services, principal(author), f"#{topic} {i}",
                                                     lat=-point[0], lng=point[1]))
    mine = []
    for i in range(3):
        doc = await build_post(services, principal(author), f"#{topic} here {i}", lat=point[0], lng=point[1])
        await insert_post(services, doc)
        mine.append(doc)
    circle = Circle(*point, 5000)
    query = {"topic_keys": topic, "location": circle.area(), "status": "published",
             "created_ms": {"$gte": 0}}
    plan = await services.db.command({"explain": {"find": "posts", "filter": query,
                                                  "sort": {"created_ms": -1, "_id": -1}, "limit": 2,
                                                  "hint": TOPIC_NEAR_INDEX}, "verbosity": "executionStats"})
    stats = plan["executionStats"]
    assert stats["nReturned"] == 2
    assert stats["totalDocsExamined"] <= len(mine) + 1, stats["totalDocsExamined"]
    assert TOPIC_NEAR_INDEX in str(plan["queryPlanner"]["winningPlan"])
    from feed.topicnear import read_topic_near
    docs, nxt = await read_topic_near(services, topic, *point, 5000, None, 2)
    assert [d["_id"] for d in docs] == [mine[2]["_id"], mine[1]["_id"]] and nxt is not None
    docs, nxt = await read_topic_near(services, topic, *point, 5000, nxt, 2)
    assert [d["_id"] for d in docs] == [mine[0]["_id"]] and nxt is None
    assert all(isinstance(d["_id"], ObjectId) for d in docs)


def test_merge_aligns_rankings_computed_in_different_hours():
    """An area's cached ranking may date from the previous hour: its hours are shifted into place."""
    now_s = (trends.bucket_of(time.time() * 1000) + 0.5) * trends.BUCKET_S
    first = int(now_s // trends.BUCKET_S) - localtrends.HOURS + 1
    fresh = {"first": first, "topics": [["k", "K", 2, [0] * (localtrends.HOURS - 1) + [2]]]}
    # computed an hour ago: its last hour is the current one's previous hour; this hour adds 1 author
    old = {"first": first - 1, "topics": [["k", "K", 1, [0] * (localtrends.HOURS - 1) + [1]]]}
    again = {"first": first, "topics": [["k", "K", 1, [0] * (localtrends.HOURS - 1) + [1]]]}
    assert localtrends.merge([fresh, again], 10, now_s) == [{"topic": "K", "score": 4.0, "post_count": 3}]
    # the old ranking's 1 author lands in the previous hour: history, not this hour
    got = localtrends.merge([fresh, old], 10, now_s)
    assert got == [{"topic": "K", "score": (2 - 1) ** 2 / 1, "post_count": 3}]
    assert localtrends.merge([], 10, now_s) == []


async def test_bad_points_are_422(client):
    reader = await register(client)
    bad = ({"lat": 31.2}, {"lng": 121.4}, {"radius_m": 1000}, {"lat": 31.2, "lng": 121.4, "radius_m": 0},
           {"lat": 31.2, "lng": 121.4, "radius_m": 50001}, {"lat": 91, "lng": 0}, {"lat": 0, "lng": 181},
           {"lat": "nan", "lng": 0}, {"lat": "x", "lng": 0}, {"lat": 0, "lng": 0, "radius_m": "inf"})
    for path in ("/v1/topics/hot", "/v1/topics/coffee/posts"):
        for params in bad:
            resp = await client.get(path, params=params, headers=reader.headers)
            assert resp.status_code == 422, (path, params, resp.text)
            assert resp.json()["error"]["code"] == "invalid"
    resp = await client.get("/v1/topics/hot", params={"lat": 0, "lng": 0, "limit": 0}, headers=reader.headers)
    assert resp.status_code == 422
    resp = await client.get("/v1/topics/%23/posts", params={"lat": 0, "lng": 0}, headers=reader.headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_topic"
    assert (await client.get("/v1/topics/hot", params={"lat": 0, "lng": 0})).status_code == 401
