"""Local hot topics (同城热门): the global trend rule of :mod:`feed.trends`, counted per area.

*Areas* are grid cells of :mod:`geo.cells` at :data:`AREA_LEVELS` (levels 9, 10 and 11: about 39,
20 and 10 km tall, narrower in longitude away from the equator — a city, a large district, a
district). The fan-out (:mod:`feed.fanout`) counts each published located post's topics in its area
of every level, at the post's *public* position (``posts.location``: the store's, or the fix snapped
to the ~100 m grid; contract: Privacy), with the global trends' own counting script and key shapes
under the area's hash tag ``{lt:<area>}``: per hour, topic → posts, topic → unique authors (the top
:data:`AREA_TOP_K`), author → posts per topic, display forms, and a per-area guard per post. So a
retried fan-out counts a post once, and a post that is hidden, removed or deleted is taken back
out (:func:`forget`, from the fan-out's retraction), exactly as in the global list. Every key
expires (:data:`feed.trends.KEEP_S`) and each hour's top is capped.

Inside an area a topic enters the hour's top with its first author (``min_authors`` 1): five people
using a tag in five districts are five authors of the city. The global rule's
:data:`feed.trends.MIN_AUTHORS` applies to the merged counts.

Reading (``GET /v1/topics/hot`` with a point): the finest level whose areas reached by the circle
are at most :data:`MAX_AREAS` (:func:`areas_for`); each area's cached ranking — its
:data:`AREA_TOPICS` best topics with their unique authors per hour over the scored hours and their
history, post counts and display forms — read in one pipeline; stale or missing ones recomputed
from the area's hourly tops (one ``ZRANGE`` per hour, never a whole hour's hashes) by the request
that takes the area's lock, the others serving the previous ranking. The rankings are merged by
summing unique authors per hour and scored with :func:`feed.trends.score_hours`. An author who uses
one topic in two areas of the same circle within an hour counts once in each (areas are merged by
sum, not by union): areas are districts, so that is rare, and one account still counts once per
area however often it posts.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import orjson

from feed import trends
from feed.localcells import public_latlng
from geo.cells import GridCell, cells_within, grid_cell
from solomo.core.keys import (
    local_trend_authors,
    local_trend_display,
    local_trend_posts,
    local_trend_ranking,
    local_trend_ranking_lock,
    local_trend_seen,
    local_trend_top,
)
from solomo.core.services import Services

AREA_LEVELS: tuple[int, ...] = (9, 10, 11)
"""Grid levels counted for every located post (coarsest first)."""
MAX_AREAS = 16
"""Areas merged by one ranking at most: the finest level that needs no more is used."""
AREA_TOP_K = 100
"""Topics kept per area and hour in its top."""
AREA_TOPICS = 50
"""Topics kept in an area's cached ranking (best first by unique authors in a recent hour)."""
AREA_FRESH_S = 10.0
"""An area's served ranking is at most this old (plus one computation)."""
AREA_KEEP_S = 300
HOURS = trends.LOOKBACK + trends.WINDOW
"""Hours of unique authors in a ranking: the scored ones and their history."""
DEFAULT_RADIUS_M = 20_000
MAX_RADIUS_M = 50_000


def post_areas(post: dict[str, Any]) -> list[str]:
    """The areas (cell names) a located post is counted in; none for an unlocated one."""
    point = public_latlng(post)
    if point is None:
        return []
    return [grid_cell(*point, level).name for level in AREA_LEVELS]


async def _count(services: Services, post: dict[str, Any], delta: int) -> int:
    areas = post_areas(post)
    if not areas or not post.get("topics"):
        return 0
    hour = trends.bucket_of(post["created_ms"])
    async with services.redis.pipeline(transaction=False) as pipe:
        for area in areas:  # one script per area (each its own slot), one round trip
            keys, args = trends.count_call(
                post, delta, posts=local_trend_posts(area, hour), seen=local_trend_seen(area, post["_id"]),
                display=local_trend_display(area, hour), top=local_trend_top(area, hour),
                authors=functools.partial(local_trend_authors, area, hour),
                top_k=AREA_TOP_K, min_authors=1)
            trends.COUNT.queue(pipe, keys, args)
        done = await pipe.execute()
    return sum(int(d) for d in done)


async def record(services: Services, post: dict[str, Any]) -> int:
    """Counts a published located post's topics in its areas (once per post and area); returns
    the number of areas that counted it now."""
    return await _count(services, post, 1)


async def forget(services: Services, post: dict[str, Any]) -> int:
    """Takes a retracted post's topics back out of its areas (where they were counted)."""
    return await _count(services, post, -1)


def areas_for(lat: float, lng: float, radius_m: float) -> list[GridCell]:
    """The areas a ranking around (lat, lng) merges: those of the finest counted level that the
    circle reaches, at most :data:`MAX_AREAS` (near a pole, the coarsest level's nearest ones)."""
    for level in sorted(AREA_LEVELS, reverse=True):
        cells = cells_within(lat, lng, radius_m, level, MAX_AREAS)
        if cells is not None:
            return cells
    return [grid_cell(lat, lng, min(AREA_LEVELS))]  # a circle over a pole: the area of its centre


def _hours(now_s: float) -> tuple[int, list[int]]:
    current = int(now_s // trends.BUCKET_S)
    first = current - HOURS + 1
    return first, list(range(first, current + 1))


async def compute_areas(services: Services, areas: list[str], now_s: float) -> dict[str, dict[str, Any]]:
    """Each area's ranking as cached: ``{"at", "first", "topics": [[key, display, posts, [authors
    per hour from "first"]]]}``. Two pipelined rounds for all the areas: the hourly tops (capped),
    then post counts and display forms of the kept topics over the scored hours."""
    first, hours = _hours(now_s)
    recent = hours[-trends.LOOKBACK:]
    async with services.redis.pipeline(transaction=False) as pipe:
        for area in areas:
            for hour in hours:
                pipe.zrange(local_trend_top(area, hour), 0, AREA_TOP_K - 1, desc=True, withscores=True)
        tops = await pipe.execute()
    kept: dict[str, list[tuple[str, list[int]]]] = {}
    for n, area in enumerate(areas):
        authors: dict[str, list[int]] = {}
        for i, top in enumerate(tops[n * HOURS:(n + 1) * HOURS]):
            for topic, count in top:
                authors.setdefault(topic, [0] * HOURS)[i] = int(count)
        live = [t for t, row in authors.items() if max(row[-trends.LOOKBACK:]) > 0]
        live.sort(key=lambda t: (-max(authors[t][-trends.LOOKBACK:]), -sum(authors[t][-trends.LOOKBACK:]), t))
        kept[area] = [(t, authors[t]) for t in live[:AREA_TOPICS]]
    async with services.redis.pipeline(transaction=False) as pipe:
        for area in areas:
            if kept[area]:
                names = [t for t, _ in kept[area]]
                for hour in reversed(recent):  # newest hour first: its display form wins
                    pipe.hmget(local_trend_posts(area, hour), names)
                    pipe.hmget(local_trend_display(area, hour), names)
        rows = await pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    at = 0
    for area in areas:
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


async def _rankings(services: Services, areas: list[str]) -> list[dict[str, Any]]:
    """The areas' cached rankings, the stale or missing ones recomputed (each by one request)."""
    redis = services.redis
    now_s = time.time()
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
            fresh = await compute_areas(services, [areas[i] for i in redo], now_s)
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
    """What trends around (lat, lng): from the areas' cached rankings; an explicit ``now_s``
    computes them afresh for that moment instead (tests)."""
    areas = [c.name for c in areas_for(lat, lng, radius_m)]
    if now_s is not None:
        return merge(list((await compute_areas(services, areas, now_s)).values()), limit, now_s)
    return merge(await _rankings(services, areas), limit, time.time())
