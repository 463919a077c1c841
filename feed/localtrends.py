"""Local hot topics (同城热门): the global trend rule of :mod:`feed.trends`, counted per area.

*Areas* are grid cells of :mod:`geo.cells` at :data:`AREA_LEVELS` (levels 9, 10 and 11: about 39,
20 and 10 km tall, narrower in longitude away from the equator — a city, a large district, a
district). The fan-out (:mod:`feed.fanout`) counts each published located post's topics in its area
of every level, at the post's *public* position (``posts.location``: the store's, or the fix snapped
to the ~100 m grid; contract: Privacy); the fan-out's retraction takes a hidden, removed or deleted
post back out (:func:`forget`), exactly as for the global list. A per-level guard per post makes a
retried fan-out count once. Every key expires (:data:`feed.trends.KEEP_S`), each area's hourly top is
capped (:data:`AREA_TOP_K`), and a post adds at most its 20 topics per level.

The unique-author rule holds across areas: for each level, hour and topic an author counts in ONE
area — the one of their first counted post (``<author>`` → area in the topic's author hash; their
posts per area beside it) — so any union of areas a ranking merges counts them once, and one account
posting a tag from sixteen made-up positions is one author, not sixteen. (The price: their later
posts in another area of that hour do not count there; and when every post in the area they count
in is taken out, they count nowhere until their next post.) A level's counting keys of one hour share
a hash tag, so the one script that counts a post sees the author's attribution and the area's counts
together. Inside an area a topic enters the hourly top with its first post (scored by the authors
counted there, possibly 0, so that its posts still add to the merged post count); the global rule's
:data:`feed.trends.MIN_AUTHORS` applies to the merged counts.

Reading (``GET /v1/topics/hot`` with a point): the finest level whose areas reached by the circle
are at most :data:`MAX_AREAS` (:func:`areas_for`); each area's cached ranking — its
:data:`AREA_TOPICS` best topics with their authors per hour over the scored hours and their history,
post counts and display forms — read in one pipeline; stale or missing ones recomputed from the
area's hourly tops (one ``ZRANGE`` per hour, never a whole hour's hashes) by the request that takes
the area's lock, the others serving the previous ranking. The rankings are merged by summing authors
per hour (exact, by the attribution above) and scored with :func:`feed.trends.score_hours`; the
merged ranking is kept :data:`NEAR_FRESH_S` seconds for the next requests whose circles reach the
same areas, so a warm request is one ``GET``, like the global list's.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from feed import trends
from feed.localcells import public_latlng
from geo.cells import GridCell, cells_within, grid_cell
from solomo.core.keys import (
    local_trend_authors,
    local_trend_display,
    local_trend_near,
    local_trend_posts,
    local_trend_ranking,
    local_trend_ranking_lock,
    local_trend_seen,
    local_trend_top,
    local_trend_unique,
)
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

AREA_LEVELS: tuple[int, ...] = (9, 10, 11)
"""Grid levels counted for every located post (coarsest first)."""
MAX_AREAS = 16
"""Areas merged by one ranking at most: the finest level that needs no more is used."""
AREA_TOP_K = 100
"""Topics kept per area and hour in its top."""
AREA_TOPICS = 50
"""Topics kept in an area's cached ranking (best first by authors in a recent hour)."""
AREA_FRESH_S = 10.0
"""An area's served ranking is at most this old (plus one computation)."""
AREA_KEEP_S = 300
NEAR_FRESH_S = 5
"""A merged ranking (per set of areas) is served this long before it is merged again."""
NEAR_MAX = 100
"""Entries kept in a merged ranking: the route's largest ``limit``."""
HOURS = trends.LOOKBACK + trends.WINDOW
"""Hours of authors in a ranking: the scored ones and their history."""
DEFAULT_RADIUS_M = 20_000
MAX_RADIUS_M = 50_000

# KEYS: seen guard, the area's posts hash, unique hash, top zset, display hash, then the author hash
# of each topic (all of one level and hour: one hash tag).
# ARGV: +1 / -1, author, area, keep seconds, top K, then (topic key, display) per topic.
_COUNT = LuaScript("local_trends_count", """
local delta, author, area = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local keep, top_k = tonumber(ARGV[4]), tonumber(ARGV[5])
if delta > 0 then
  if redis.call('SET', KEYS[1], '1', 'NX', 'EX', keep) == false then return 0 end
else
  if redis.call('DEL', KEYS[1]) == 0 then return 0 end
end
local here = author .. '|' .. area
for i = 6, #KEYS do
  local topic, display = ARGV[6 + (i - 6) * 2], ARGV[7 + (i - 6) * 2]
  local mine = redis.call('HINCRBY', KEYS[i], here, delta)
  if mine <= 0 then redis.call('HDEL', KEYS[i], here) end
  local posts = redis.call('HINCRBY', KEYS[2], topic, delta)
  if posts <= 0 then redis.call('HDEL', KEYS[2], topic) end
  -- the author counts in the area of their first counted post, and leaves it with their last post there
  local counts_in = redis.call('HGET', KEYS[i], author)
  local change = 0
  if delta > 0 and counts_in == false then
    redis.call('HSET', KEYS[i], author, area)
    change = 1
  elseif delta < 0 and mine <= 0 and counts_in == area then
    redis.call('HDEL', KEYS[i], author)
    change = -1
  end
  redis.call('EXPIRE', KEYS[i], keep)
  local authors = tonumber(redis.call('HGET', KEYS[3], topic) or '0')
  if change ~= 0 then
    authors = redis.call('HINCRBY', KEYS[3], topic, change)
    if authors <= 0 then redis.call('HDEL', KEYS[3], topic) end
  end
  -- in the top while the area has posts of it (with 0 authors when they all count elsewhere: their
  -- posts still add to the post count); a topic trimmed out comes back exact with its next post
  if posts <= 0 then
    redis.call('ZREM', KEYS[4], topic)
  else
    redis.call('ZADD', KEYS[4], math.max(authors, 0), topic)
    if delta > 0 then redis.call('HSETNX', KEYS[5], topic, display) end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(top_k + 1))
for k = 2, 5 do redis.call('EXPIRE', KEYS[k], keep) end
return 1
""")


def post_areas(post: dict[str, Any]) -> list[GridCell]:
    """The areas (one per level) a located post is counted in; none for an unlocated one."""
    point = public_latlng(post)
    if point is None:
        return []
    return [grid_cell(*point, level) for level in AREA_LEVELS]


async def _count(services: Services, post: dict[str, Any], delta: int) -> int:
    areas = post_areas(post)
    topics = post.get("topics") or []
    if not areas or not topics:
        return 0
    hour = trends.bucket_of(post["created_ms"])
    async with services.redis.pipeline(transaction=False) as pipe:
        for cell in areas:  # one script per level (each its own slot), one round trip
            level, area = cell.level, cell.name
            keys = [local_trend_seen(level, hour, post["_id"]), local_trend_posts(level, hour, area),
                    local_trend_unique(level, hour, area), local_trend_top(level, hour, area),
                    local_trend_display(level, hour, area),
                    *(local_trend_authors(level, hour, t["key"]) for t in topics)]
            args: list[Any] = [delta, str(post["author_id"]), area, trends.KEEP_S, AREA_TOP_K]
            for t in topics:
                args.extend((t["key"], t["display"]))
            _COUNT.queue(pipe, keys, args)
        done = await pipe.execute()
    return sum(int(d) for d in done)


async def record(services: Services, post: dict[str, Any]) -> int:
    """Counts a published located post's topics in its areas (once per post and level); returns
    the number of levels that counted it now."""
    return await _count(services, post, 1)


async def forget(services: Services, post: dict[str, Any]) -> int:
    """Takes a retracted post's topics back out of its areas (where they were counted)."""
    return await _count(services, post, -1)


def areas_for(lat: float, lng: float, radius_m: float) -> list[GridCell]:
    """The areas a ranking around (lat, lng) merges: those of the finest counted level that the
    circle reaches, at most :data:`MAX_AREAS` (a wide circle near a pole: the coarsest area of its
    centre only)."""
    for level in sorted(AREA_LEVELS, reverse=True):
        cells = cells_within(lat, lng, radius_m, level, MAX_AREAS)
        if cells is not None:
            return cells
    return [grid_cell(lat, lng, min(AREA_LEVELS))]


def _hours(now_s: float) -> tuple[int, list[int]]:
    current = int(now_s // trends.BUCKET_S)
    first = current - HOURS + 1
    return first, list(range(first, current + 1))


async def compute_areas(services: Services, areas: list[GridCell], now_s: float) -> dict[str, dict[str, Any]]:
    """Each area's ranking (by area name) as cached: ``{"at", "first", "topics": [[key, display, posts, [authors
    per hour from "first"]]]}``. Two pipelined rounds for all the areas: the hourly tops (capped),
    then post counts and display forms of the kept topics over the scored hours."""
    first, hours = _hours(now_s)
    recent = hours[-trends.LOOKBACK:]
    async with services.redis.pipeline(transaction=False) as pipe:
        for cell in areas:
            for hour in hours:
                pipe.zrange(local_trend_top(cell.level, hour, cell.name), 0, AREA_TOP_K - 1, desc=True,
                            withscores=True)
        tops = await pipe.execute()
    kept: dict[str, list[tuple[str, list[int]]]] = {}
    for n, cell in enumerate(areas):
        authors: dict[str, list[int]] = {}
        live: set[str] = set()  # in a scored hour's top (with 0 authors too: their posts count)
        for i, top in enumerate(tops[n * HOURS:(n + 1) * HOURS]):
            for topic, count in top:
                authors.setdefault(topic, [0] * HOURS)[i] = int(count)
                if i >= HOURS - trends.LOOKBACK:
                    live.add(topic)
        ordered = sorted(live, key=lambda t: (-max(authors[t][-trends.LOOKBACK:]),
                                              -sum(authors[t][-trends.LOOKBACK:]), t))
        kept[cell.name] = [(t, authors[t]) for t in ordered[:AREA_TOPICS]]
    async with services.redis.pipeline(transaction=False) as pipe:
        for cell in areas:
            if kept[cell.name]:
                names = [t for t, _ in kept[cell.name]]
                for hour in reversed(recent):  # newest hour first: its display form wins
                    pipe.hmget(local_trend_posts(cell.level, hour, cell.name), names)
                    pipe.hmget(local_trend_display(cell.level, hour, cell.name), names)
        rows = await pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    at = 0
    for area in (c.name for c in areas):
        topics: list[list[Any]] = []
        if kept[area]:
            mine = rows[at:at + 2 * len(recent)]
            at += 2 * len(recent)
            for j, (topic, row) in enumerate(kept[area]):
                posts = sum(int(r[j] or 0) for r in mine[0::2])
                display = next((r[j] for r in mine[1::2] if r[j]), None) or topic
                topics.append([topic, display, posts, row])
        out[area] = {"at": now_s, "first": first, "topics": topics}
    return out


async def _rankings(services: Services, cells: list[GridCell]) -> list[dict[str, Any]]:
    """The areas' cached rankings, the stale or missing ones recomputed (each by one request)."""
    redis = services.redis
    now_s = time.time()
    areas = [c.name for c in cells]
    async with redis.pipeline(transaction=False) as pipe:
        for area in areas:
            pipe.get(local_trend_ranking(area))
        cached = [None if raw is None else orjson.loads(raw) for raw in await pipe.execute()]
    stale = [i for i, r in enumerate(cached) if r is None or now_s - float(r["at"]) >= AREA_FRESH_S]
    if stale:
        async with redis.pipeline(transaction=False) as pipe:
            for i in stale:
                pipe.set(local_trend_ranking_lock(areas[i]), "1", nx=True, px=max(1, int(AREA_FRESH_S * 1000)))
            taken = await pipe.execute()
        # a missing ranking is computed whoever holds the lock; a stale one by the lock's holder only
        redo = [i for i, ok in zip(stale, taken, strict=True) if ok or cached[i] is None]
        if redo:
            fresh = await compute_areas(services, [cells[i] for i in redo], now_s)
            async with redis.pipeline(transaction=False) as pipe:
                for i in redo:
                    cached[i] = fresh[areas[i]]
                    pipe.set(local_trend_ranking(areas[i]), orjson.dumps(cached[i]), ex=AREA_KEEP_S)
                await pipe.execute()
    return [r for r in cached if r is not None]


def merge(rankings: list[dict[str, Any]], limit: int, now_s: float) -> list[dict[str, Any]]:
    """``[{"topic", "score", "post_count"}]``, best first: unique authors per hour summed over the
    areas (each ranking aligned on its own first hour), scored as the global list."""
    first, _ = _hours(now_s)
    authors: dict[str, list[int]] = {}
    posts: dict[str, int] = {}
    display: dict[str, str] = {}
    for ranking in rankings:
        shift = int(ranking["first"]) - first
        for topic, shown, count, row in ranking["topics"]:
            acc = authors.setdefault(topic, [0] * HOURS)
            for i, n in enumerate(row):
                if 0 <= i + shift < HOURS:
                    acc[i + shift] += int(n)
            posts[topic] = posts.get(topic, 0) + int(count)
            display.setdefault(topic, shown)
    scored = [(s, t) for t, row in authors.items() if (s := trends.score_hours(row, now_s, first)) > 0]
    scored.sort(key=lambda st: (-st[0], st[1]))
    return [{"topic": display[t], "score": round(s, 4), "post_count": posts[t]} for s, t in scored[:limit]]


async def hot_near(services: Services, lat: float, lng: float, radius_m: float, limit: int,
                   now_s: float | None = None) -> list[dict[str, Any]]:
    """What trends around (lat, lng). Served like the global list: one ``GET`` of the merged ranking
    of the circle's areas while it is :data:`NEAR_FRESH_S` fresh, else merged again from the areas'
    cached rankings. An explicit ``now_s`` computes everything afresh for that moment (tests)."""
    areas = areas_for(lat, lng, radius_m)
    if now_s is not None:
        return merge(list((await compute_areas(services, areas, now_s)).values()), limit, now_s)
    key = local_trend_near(c.name for c in areas)
    cached = await services.redis.get(key)
    if cached is not None:
        return list(orjson.loads(cached)[:limit])
    items = merge(await _rankings(services, areas), NEAR_MAX, time.time())
    await services.redis.set(key, orjson.dumps(items), ex=NEAR_FRESH_S)
    return items[:limit]
