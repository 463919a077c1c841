"""Hot topics: unique authors per hour compared with the hours before, decayed over hours.

In the spirit of Mastodon's trends: what matters is how many *different* people use a topic
(one spammer posting a tag 100 times is one author), compared with how many usually do. For
each hourly bucket ``b`` of the last :data:`LOOKBACK` hours::

    expected(b) = max(1, mean of unique authors in the WINDOW buckets before b)
    raw(b)      = (observed(b) - expected(b))² / expected(b)   if observed(b) > expected(b), else 0
    score       = max over b of raw(b) · 0.5 ^ (hours since b ended / HALF_LIFE_H)

A topic needs :data:`MIN_AUTHORS` distinct authors in a bucket to count at all. Counting is keyed
by the post's own creation hour and guarded per post, so a retried fan-out counts a post once and
a retracted post is taken back out.

Keys (all expire after :data:`KEEP_S`): ``trend:{bucket}:a:{topic}`` hash author → posts,
``trend:{bucket}:n`` hash topic → posts, ``trend:display`` hash topic → display form,
``trend:seen:{post}`` the per-post guard.

The ranking costs one ``HLEN`` per candidate topic and hour, so it is computed at most every
:data:`HOT_FRESH_S` seconds across all API processes: the top :data:`HOT_MAX` are kept in
``trend:hot`` (JSON, with the time they were computed) and every request is served from there. When
the ranking is stale, the one request that takes ``trend:hot:lock`` recomputes it while the others
keep serving the previous one.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson

from solomo.core.keys import TREND_DISPLAY, TREND_HOT, TREND_HOT_LOCK, trend_authors, trend_posts, trend_seen
from solomo.core.services import Services

BUCKET_S = 3600
WINDOW = 6
LOOKBACK = 6
HALF_LIFE_H = 2.0
MIN_AUTHORS = 2
KEEP_S = 2 * 86400
MAX_CANDIDATES = 2000
HOT_FRESH_S = 5.0
"""A served ranking is at most this old (plus one computation), and is recomputed at most this often."""
HOT_KEEP_S = 300
HOT_MAX = 100
"""Entries kept in the cached ranking: the route's largest ``limit``."""

# KEYS: posts-per-topic hash, seen guard, display hash, then one author hash per topic.
# ARGV: +1 / -1, author, keep seconds, then (topic key, display) per topic.
_COUNT_LUA = """
local delta, author, keep = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if delta > 0 then
  if redis.call('SET', KEYS[2], '1', 'NX', 'EX', keep) == false then return 0 end
else
  if redis.call('DEL', KEYS[2]) == 0 then return 0 end
end
for i = 4, #KEYS do
  local topic, display = ARGV[4 + (i - 4) * 2], ARGV[5 + (i - 4) * 2]
  if redis.call('HINCRBY', KEYS[i], author, delta) <= 0 then redis.call('HDEL', KEYS[i], author) end
  redis.call('EXPIRE', KEYS[i], keep)
  if redis.call('HINCRBY', KEYS[1], topic, delta) <= 0 then redis.call('HDEL', KEYS[1], topic) end
  if delta > 0 then redis.call('HSETNX', KEYS[3], topic, display) end
end
redis.call('EXPIRE', KEYS[1], keep)
return 1
"""


def bucket_of(ms: int | float) -> int:
    return int(ms // 1000 // BUCKET_S)


async def _count(services: Services, post: dict[str, Any], delta: int) -> bool:
    topics = post.get("topics") or []
    if not topics:
        return False
    bucket = bucket_of(post["created_ms"])
    keys = [trend_posts(bucket), trend_seen(post["_id"]), TREND_DISPLAY,
            *(trend_authors(bucket, t["key"]) for t in topics)]
    args: list[Any] = [delta, str(post["author_id"]), KEEP_S]
    for t in topics:
        args.extend((t["key"], t["display"]))
    script = services.redis.register_script(_COUNT_LUA)
    return bool(await script(keys=keys, args=args))


async def record(services: Services, post: dict[str, Any]) -> bool:
    """Counts a published post's topics (once per post)."""
    return await _count(services, post, 1)


async def forget(services: Services, post: dict[str, Any]) -> bool:
    """Takes a retracted post's topics back out (if they were counted)."""
    return await _count(services, post, -1)


def _score(authors: list[int], now_s: float, first_bucket: int) -> float:
    """``authors[i]`` = unique authors in bucket ``first_bucket + i``; the last LOOKBACK are scored."""
    best = 0.0
    for i in range(len(authors) - LOOKBACK, len(authors)):
        observed = authors[i]
        if observed < MIN_AUTHORS:
            continue
        history = authors[max(0, i - WINDOW):i]
        expected = max(1.0, sum(history) / WINDOW)
        if observed <= expected:
            continue
        raw = (observed - expected) ** 2 / expected
        ended = (first_bucket + i + 1) * BUCKET_S
        age_h = max(0.0, now_s - ended) / 3600.0
        best = max(best, raw * math.pow(0.5, age_h / HALF_LIFE_H))
    return best


async def hot(services: Services, limit: int, now_s: float | None = None) -> list[dict[str, Any]]:
    """``[{"topic", "score", "post_count"}]``, best first (see :func:`compute_hot`), from the cached
    ranking; an explicit ``now_s`` computes it afresh for that moment instead."""
    if now_s is not None:
        return await compute_hot(services, limit, now_s)
    redis = services.redis
    cached = await redis.get(TREND_HOT)
    if cached is not None:
        ranking = orjson.loads(cached)
        fresh = time.time() - float(ranking["at"]) < HOT_FRESH_S
        if fresh or not await redis.set(TREND_HOT_LOCK, "1", nx=True, px=max(1, int(HOT_FRESH_S * 1000))):
            return list(ranking["items"][:limit])
    else:  # nothing cached (first request, or nobody asked for HOT_KEEP_S): this request computes it
        await redis.set(TREND_HOT_LOCK, "1", nx=True, px=max(1, int(HOT_FRESH_S * 1000)))
    return (await refresh_hot(services))[:limit]


async def refresh_hot(services: Services) -> list[dict[str, Any]]:
    """Computes the top :data:`HOT_MAX` now and stores them as the served ranking."""
    now_s = time.time()
    items = await compute_hot(services, HOT_MAX, now_s)
    await services.redis.set(TREND_HOT, orjson.dumps({"at": now_s, "items": items}), ex=HOT_KEEP_S)
    return items


async def compute_hot(services: Services, limit: int, now_s: float | None = None) -> list[dict[str, Any]]:
    """``[{"topic", "score", "post_count"}]``, best first; ``post_count`` over the last LOOKBACK hours."""
    now_s = time.time() if now_s is None else now_s
    current = int(now_s // BUCKET_S)
    recent = list(range(current - LOOKBACK + 1, current + 1))
    first = current - LOOKBACK - WINDOW + 1
    redis = services.redis
    async with redis.pipeline(transaction=False) as pipe:
        for b in recent:
            pipe.hgetall(trend_posts(b))
        counts = await pipe.execute()
    posts: dict[str, int] = {}
    for per_bucket in counts:
        for topic, n in per_bucket.items():
            posts[topic] = posts.get(topic, 0) + int(n)
    candidates = sorted(posts, key=lambda t: posts[t], reverse=True)[:MAX_CANDIDATES]
    if not candidates:
        return []
    buckets = list(range(first, current + 1))
    async with redis.pipeline(transaction=False) as pipe:
        for topic in candidates:
            for b in buckets:
                pipe.hlen(trend_authors(b, topic))
        lens = await pipe.execute()
    scored = []
    for i, topic in enumerate(candidates):
        authors = [int(x) for x in lens[i * len(buckets):(i + 1) * len(buckets)]]
        score = _score(authors, now_s, first)
        if score > 0:
            scored.append((score, topic))
    scored.sort(reverse=True)
    top = scored[:limit]
    displays = await redis.hmget(TREND_DISPLAY, [t for _, t in top]) if top else []
    return [{"topic": display or topic, "score": round(score, 4), "post_count": posts[topic]}
            for (score, topic), display in zip(top, displays, strict=True)]
