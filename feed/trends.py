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

Keys (all expire after :data:`KEEP_S`; one hash tag ``{trend}``, see :mod:`solomo.core.keys`):
``{trend}:<hour>:a:<topic>`` hash author → posts, ``{trend}:<hour>:n`` hash topic → posts,
``{trend}:<hour>:top`` zset topic → unique authors, ``{trend}:<hour>:d`` hash topic → display form,
``{trend}:seen:<post>`` the per-post guard.

The work of a ranking must not grow with spam (thousands of made-up topics), so the candidates are
kept incrementally: each post's count updates its topics' unique authors in the hour's
``{trend}:<hour>:top`` — only topics with :data:`MIN_AUTHORS` authors enter, and the zset is
trimmed to the :data:`TOP_K` with most authors (a topic trimmed out comes back with its exact count
when its next author posts). A ranking reads the :data:`LOOKBACK` recent tops (at most
``LOOKBACK × TOP_K`` entries), scores at most :data:`MAX_CANDIDATES` of them with one ``HLEN`` per
hour of history, and reads post counts and display forms for the few it returns.

It is still computed at most every :data:`HOT_FRESH_S` seconds across all API processes: the top
:data:`HOT_MAX` are kept in ``{trend}:hot`` (JSON, with the time they were computed) and every request
is served from there. When the ranking is stale, the one request that takes ``{trend}:hot:lock``
recomputes it while the others keep serving the previous one.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson

from solomo.core.keys import (
    TREND_HOT,
    TREND_HOT_LOCK,
    trend_authors,
    trend_display,
    trend_posts,
    trend_seen,
    trend_top,
)
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

BUCKET_S = 3600
WINDOW = 6
LOOKBACK = 6
HALF_LIFE_H = 2.0
MIN_AUTHORS = 2
KEEP_S = (LOOKBACK + WINDOW + 1) * BUCKET_S
"""Counts are kept as long as a ranking reads them (the scored hours and their history), no longer."""
TOP_K = 200
"""Topics kept per hour in ``{trend}:<hour>:top``: the ones with most unique authors."""
MAX_CANDIDATES = 300
"""Topics scored per ranking (best first by their best recent hour)."""
HOT_FRESH_S = 5.0
"""A served ranking is at most this old (plus one computation), and is recomputed at most this often."""
HOT_KEEP_S = 300
HOT_MAX = 100
"""Entries kept in the cached ranking: the route's largest ``limit``."""

# KEYS: posts-per-topic hash, seen guard, display hash, top zset, then one author hash per topic.
# ARGV: +1 / -1, author, keep seconds, top K, min authors, then (topic key, display) per topic.
_COUNT = LuaScript("trends_count", """
local delta, author, keep = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local top_k, min_authors = tonumber(ARGV[4]), tonumber(ARGV[5])
if delta > 0 then
  if redis.call('SET', KEYS[2], '1', 'NX', 'EX', keep) == false then return 0 end
else
  if redis.call('DEL', KEYS[2]) == 0 then return 0 end
end
for i = 5, #KEYS do
  local topic, display = ARGV[6 + (i - 5) * 2], ARGV[7 + (i - 5) * 2]
  local mine = redis.call('HINCRBY', KEYS[i], author, delta)
  if mine <= 0 then redis.call('HDEL', KEYS[i], author) end
  redis.call('EXPIRE', KEYS[i], keep)
  if redis.call('HINCRBY', KEYS[1], topic, delta) <= 0 then redis.call('HDEL', KEYS[1], topic) end
  -- the unique authors change only with an author's first post or their last one taken out
  if (delta > 0 and mine == 1) or (delta < 0 and mine <= 0) then
    local authors = redis.call('HLEN', KEYS[i])
    if authors < min_authors then
      redis.call('ZREM', KEYS[4], topic)
    elseif delta > 0 then
      redis.call('ZADD', KEYS[4], authors, topic)
      redis.call('HSETNX', KEYS[3], topic, display)
    else
      redis.call('ZADD', KEYS[4], 'XX', authors, topic)
    end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(top_k + 1))
redis.call('EXPIRE', KEYS[1], keep)
redis.call('EXPIRE', KEYS[3], keep)
redis.call('EXPIRE', KEYS[4], keep)
return 1
""")


def bucket_of(ms: int | float) -> int:
    return int(ms // 1000 // BUCKET_S)


async def _count(services: Services, post: dict[str, Any], delta: int) -> bool:
    topics = post.get("topics") or []
    if not topics:
        return False
    bucket = bucket_of(post["created_ms"])
    keys = [trend_posts(bucket), trend_seen(post["_id"]), trend_display(bucket), trend_top(bucket),
            *(trend_authors(bucket, t["key"]) for t in topics)]
    args: list[Any] = [delta, str(post["author_id"]), KEEP_S, TOP_K, MIN_AUTHORS]
    for t in topics:
        args.extend((t["key"], t["display"]))
    return bool(await _COUNT(services.redis, keys, args))


async def record(services: Services, post: dict[str, Any]) -> bool:
    """Counts a published post's topics (once per post)."""
    return await _count(services, post, 1)


async def forget(services: Services, post: dict[str, Any]) -> bool:
    """Takes a retracted post's topics back out (if they were counted)."""
    return await _count(services, post, -1)


def score_hours(authors: list[int], now_s: float, first_bucket: int) -> float:
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
    """``[{"topic", "score", "post_count"}]``, best first; ``post_count`` over the last LOOKBACK hours.
    The work is bounded by :data:`TOP_K` and :data:`MAX_CANDIDATES`, whatever the number of topics."""
    now_s = time.time() if now_s is None else now_s
    current = int(now_s // BUCKET_S)
    recent = list(range(current - LOOKBACK + 1, current + 1))
    first = current - LOOKBACK - WINDOW + 1
    redis = services.redis
    async with redis.pipeline(transaction=False) as pipe:
        for b in recent:
            pipe.zrange(trend_top(b), 0, TOP_K - 1, desc=True, withscores=True)
        tops = await pipe.execute()
    best: dict[str, float] = {}
    for top in tops:
        for topic, authors in top:
            best[topic] = max(best.get(topic, 0.0), float(authors))
    candidates = sorted(best, key=lambda t: (-best[t], t))[:MAX_CANDIDATES]
    if not candidates:
        return []
    # exact unique authors per hour, history included (a bucket's top may have trimmed the topic)
    buckets = list(range(first, current + 1))
    async with redis.pipeline(transaction=False) as pipe:
        for topic in candidates:
            for b in buckets:
                pipe.hlen(trend_authors(b, topic))
        lens = await pipe.execute()
    scored = []
    for i, topic in enumerate(candidates):
        authors = [int(x) for x in lens[i * len(buckets):(i + 1) * len(buckets)]]
        score = score_hours(authors, now_s, first)
        if score > 0:
            scored.append((score, topic))
    scored.sort(reverse=True)
    top_topics = [t for _, t in scored[:limit]]
    if not top_topics:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for b in reversed(recent):  # newest hour first: its display form wins
            pipe.hmget(trend_posts(b), top_topics)
            pipe.hmget(trend_display(b), top_topics)
        rows = await pipe.execute()
    posts = [sum(int(row[j] or 0) for row in rows[0::2]) for j in range(len(top_topics))]
    displays = [next((row[j] for row in rows[1::2] if row[j]), None) for j in range(len(top_topics))]
    return [{"topic": displays[j] or topic, "score": round(score, 4), "post_count": posts[j]}
            for j, (score, topic) in enumerate(scored[:limit])]
