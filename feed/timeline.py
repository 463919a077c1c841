"""Capped Redis timelines: home feeds, geo-cell feeds and topic listings share one shape.

A timeline is a sorted set (score = ``created_ms``, member = post id hex) plus one *marker*
member :data:`MARKER` whose score tells the timeline's state:

* key missing — never built, expired (an inactive reader's home feed) or lost (Redis flush);
* marker score :data:`BUILDING` — a rebuild from MongoDB is running; writers already add to it;
* marker score :data:`READY` — complete for everything newer than its oldest entry.

Writers (the fan-out) only touch keys that exist, so an inactive reader costs nothing and a
rebuild never races a writer: the rebuild creates the key first (state BUILDING), *then* reads
MongoDB, so a post is either written by the fan-out or found by the rebuild's query. Readers use
a key only when it is READY and fall back to MongoDB otherwise.

Real scores are epoch milliseconds (> 10^12), so the marker (score 0 or 1) always has rank 0 and
trimming keeps it: ``ZREMRANGEBYRANK key 1 -(cap+1)`` leaves the marker plus the newest ``cap``.
The fan-out's adds trim with slack: a timeline grows to ``cap + cap // 32`` entries before it is
cut back to ``cap`` (:func:`trim_limit`), so most adds are two commands inside the script instead
of three (measured in Redis: 195 → 143 ms of script time for 100,000 feeds). A timeline is still
complete for everything newer than its oldest entry, and readers treat any size at or past the cap
as truncated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from solomo.core.keys import by_bucket, by_hash_tag, home_key_in, online_key
from solomo.core.pagination import Position
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript

MARKER = "~"
BUILDING = 0
READY = 1
MIN_SCORE = "(1"  # excludes the marker

Entry = tuple[float, str]


def trim_limit(cap: int) -> int:
    """The most entries (marker excluded) a timeline written by the fan-out holds: the ``_ADD``
    script (given this limit) cuts it back to ``cap`` once it holds more."""
    return cap + cap // 32


# KEYS: timelines (one hash tag), then that tag's online set when owners are given. ARGV: score,
# member, cap, the trim's limit (:func:`trim_limit`), then for home feeds the length of the key
# prefix before each owner's id (every key of one call has the same prefix: one bucket). Adds the
# member to each existing timeline (ZCARD is 0 only for a missing key: a timeline always holds its
# marker) and trims one that grew past the limit back to the cap; returns {written count, ids of
# owners who are online...}. The owners' ids are read back from the keys rather than sent again in
# ARGV (it halves what the fan-out encodes and sends), and the online check is skipped when nobody
# of the bucket is online (the usual case for most buckets).
_ADD = LuaScript("timeline_add", """
local score, member, cap, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local off = tonumber(ARGV[5] or 0)
local owners = off > 0
local last = owners and #KEYS - 1 or #KEYS
local check = owners and redis.call('SCARD', KEYS[#KEYS]) > 0
local written, online = 0, {}
for i = 1, last do
  local key = KEYS[i]
  local size = redis.call('ZCARD', key)
  if size > 0 then
    redis.call('ZADD', key, score, member)
    if size > limit then redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1)) end
    written = written + 1
  end
  if check then
    local owner = string.sub(key, off + 1)
    if redis.call('SISMEMBER', KEYS[#KEYS], owner) == 1 then online[#online + 1] = owner end
  end
end
table.insert(online, 1, written)
return online
""")

# KEYS: timelines (one hash tag), then that tag's online set when owners are given. ARGV: member,
# then the owner id of each timeline. Removes the member; returns the online owners that held it.
_REMOVE = LuaScript("timeline_remove", """
local member = ARGV[1]
local owners = #ARGV > 1
local last = owners and #KEYS - 1 or #KEYS
local out = {}
for i = 1, last do
  local removed = redis.call('ZREM', KEYS[i], member)
  if removed == 1 and owners and redis.call('SISMEMBER', KEYS[#KEYS], ARGV[1 + i]) == 1 then
    out[#out + 1] = ARGV[1 + i]
  end
end
return out
""")

# KEYS[1]: a timeline. ARGV: cap, then score, member pairs. Adds them only if the key exists.
_ADD_MANY = LuaScript("timeline_add_many", """
local key, cap = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('ZADD', key, ARGV[i], ARGV[i + 1]) end
redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1))
return 1
""")


def _batch(before: Position | None, count: int) -> int:
    """Entries a read asks for at a time: past a position, a few more than ``count``, as the entries
    with the position's own score that are not older (the position's own entry at least) are skipped;
    from the head, exactly ``count`` (every entry is taken: the strings a reply is made of were a
    large part of reading it, docs/benchmarks.md, twenty-second round)."""
    return count if before is None else count + 8


class Timelines:
    """Operations on timeline keys. Writes to many keys are one script call per hash tag (a reader
    bucket, or one cell or topic), all pipelined: one round trip on one Redis, one per master on a
    cluster."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis

    async def add(self, keys: Sequence[str], score: int, member: str, cap: int) -> int:
        """Adds ``member`` to every existing key and trims it; returns how many keys were written."""
        groups = by_hash_tag(keys)
        if not groups:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                _ADD.queue(pipe, group, [score, member, cap, trim_limit(cap)])
            results = await pipe.execute()
        return sum(int(r[0]) for r in results)

    async def add_to_homes(self, owners: Sequence[str], score: int, member: str,
                           cap: int) -> tuple[int, list[str]]:
        """Adds ``member`` to the existing home feeds of ``owners``; returns (feeds written, the
        owners who are online), one script call per bucket."""
        buckets = by_bucket(owners)
        if not buckets:
            return 0, []
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket, uids in buckets.items():
                prefix = home_key_in(bucket, "")  # a bucket's home keys: this prefix, then the owner's id
                keys = [prefix + u for u in uids]  # (not a call a key: the fan-out's inner loop)
                keys.append(online_key(bucket))
                _ADD.queue(pipe, keys, [score, member, cap, trim_limit(cap), len(prefix)])
            results = await pipe.execute()
        written, online = 0, list[str]()
        for result in results:
            written += int(result[0])
            online.extend(str(u) for u in result[1:])
        return written, online

    async def remove(self, keys: Sequence[str], member: str) -> None:
        """Removes ``member`` from every key."""
        groups = by_hash_tag(keys)
        if not groups:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                _REMOVE.queue(pipe, group, [member])
            await pipe.execute()

    async def remove_from_homes(self, owners: Sequence[str], member: str) -> list[str]:
        """Removes ``member`` from the home feeds of ``owners``; returns the online owners that held it."""
        buckets = by_bucket(owners)
        if not buckets:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket, uids in buckets.items():
                _REMOVE.queue(pipe, [*(home_key_in(bucket, u) for u in uids), online_key(bucket)], [member, *uids])
            results = await pipe.execute()
        return [str(u) for result in results for u in result]

    async def state(self, key: str) -> int | None:
        score = await self.redis.zscore(key, MARKER)
        return None if score is None else int(score)

    async def states(self, keys: Sequence[str]) -> list[int | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zscore(key, MARKER)
            scores = await pipe.execute()
        return [None if s is None else int(s) for s in scores]

    async def begin_rebuild(self, key: str, ttl_s: int | None = None) -> None:
        """Creates the key in state BUILDING (keeps it as is when it already exists)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {MARKER: BUILDING}, nx=True)
            if ttl_s:
                pipe.expire(key, ttl_s)
            await pipe.execute()

    async def finish_rebuild(self, key: str, entries: Iterable[Entry], cap: int, ttl_s: int | None = None) -> None:
        """Adds the entries read from MongoDB, marks the key READY and trims, atomically."""
        mapping = {member: score for score, member in entries}
        async with self.redis.pipeline(transaction=True) as pipe:
            if mapping:
                pipe.zadd(key, mapping)
            pipe.zadd(key, {MARKER: READY})
            pipe.zremrangebyrank(key, 1, -(cap + 1))
            if ttl_s:
                pipe.expire(key, ttl_s)
            await pipe.execute()

    async def add_entries(self, key: str, entries: Iterable[Entry], cap: int) -> bool:
        """Adds several posts to one key if it exists (a follow's backfill), then trims."""
        args: list[Any] = [cap]
        for score, member in entries:
            args.extend((score, member))
        if len(args) == 1:
            return False
        return bool(await _ADD_MANY(self.redis, [key], args))

    def queue_read(self, pipe: Any, key: str, before: Position | None, count: int) -> None:
        """Queues the first round of :meth:`read` on a pipeline (see :meth:`read_rows`)."""
        maximum = "+inf" if before is None else repr(before.score)
        pipe.zrevrangebyscore(key, maximum, MIN_SCORE, start=0, num=_batch(before, count), withscores=True)

    async def read(self, key: str, before: Position | None, count: int,
                   first_rows: list[tuple[str, float]] | None = None) -> list[Entry]:
        """Up to ``count`` entries strictly older than ``before`` (score, then id), newest first.

        Entries with the same score as ``before`` but not older are skipped, so the read goes on
        past them (ties are rare: same millisecond).
        """
        out: list[Entry] = []
        # members are ids in lowercase hex, whose text order is the ids' order
        bound = None if before is None else (before.score, str(before.id))
        offset = 0
        batch = _batch(before, count)
        maximum: str = "+inf" if before is None else repr(before.score)
        while len(out) < count:
            if first_rows is not None and offset == 0:
                rows = first_rows
            else:
                rows = cast(list[tuple[str, float]], await self.redis.zrevrangebyscore(
                    key, maximum, MIN_SCORE, start=offset, num=batch, withscores=True))
            for member, score in rows:
                if bound is None or (score, member) < bound:
                    out.append((score, member))
            if len(rows) < batch:
                break
            offset += batch
        return out[:count]

    async def size(self, key: str) -> int:
        """Entries, not counting the marker."""
        return max(0, int(await self.redis.zcard(key)) - 1)
