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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from redis.asyncio import Redis

from solomo.core.keys import ONLINE
from solomo.core.pagination import Position

MARKER = "~"
BUILDING = 0
READY = 1
MIN_SCORE = "(1"  # excludes the marker

Entry = tuple[float, str]

# KEYS: timelines, then the online set last. ARGV: score, member, cap, owner offset: when > 0, the
# owner's id is the key from that offset on (``feed:home:<uid>``) and the owners of written keys who
# are in the online set are returned. Returns {written count, online ids...}.
_ADD_LUA = """
local score, member, cap, off = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local online_key = KEYS[#KEYS]
local check = off > 0 and redis.call('SCARD', online_key) > 0
local written, online = 0, {}
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', key, score, member)
    redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1))
    written = written + 1
  end
  if check then
    local uid = string.sub(key, off)
    if redis.call('SISMEMBER', online_key, uid) == 1 then online[#online + 1] = uid end
  end
end
table.insert(online, 1, written)
return online
"""

# KEYS: timelines, then the online set. ARGV: member, then one uid (or '') per key.
# Removes the member; returns the ids of owners that held it and are online.
_REMOVE_LUA = """
local member = ARGV[1]
local online_key = KEYS[#KEYS]
local out = {}
for i = 1, #KEYS - 1 do
  local removed = redis.call('ZREM', KEYS[i], member)
  local uid = ARGV[1 + i]
  if removed == 1 and uid ~= '' and redis.call('SISMEMBER', online_key, uid) == 1 then
    out[#out + 1] = uid
  end
end
return out
"""


# KEYS[1]: a timeline. ARGV: cap, then score, member pairs. Adds them only if the key exists.
_ADD_MANY_LUA = """
local key, cap = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('ZADD', key, ARGV[i], ARGV[i + 1]) end
redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1))
return 1
"""


class Timelines:
    """Operations on timeline keys; one instance per :class:`Redis` client (scripts registered once)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._add = redis.register_script(_ADD_LUA)
        self._remove = redis.register_script(_REMOVE_LUA)
        self._add_many = redis.register_script(_ADD_MANY_LUA)

    async def add(self, keys: Sequence[str], score: int, member: str, cap: int,
                  owner_prefix: str = "", online_key: str = ONLINE) -> tuple[int, list[str]]:
        """Adds ``member`` to every existing key and trims it, in one round trip.

        With ``owner_prefix`` (keys are ``prefix + user id``) the owners found in the online set are
        returned too; returns (keys written, online owners).
        """
        if not keys:
            return 0, []
        args: list[Any] = [score, member, cap, len(owner_prefix) + 1 if owner_prefix else 0]
        result = await self._add(keys=[*keys, online_key], args=args)
        return int(result[0]), [str(u) for u in result[1:]]

    async def remove(self, keys: Sequence[str], member: str, owners: Sequence[str] | None = None,
                     online_key: str = ONLINE) -> list[str]:
        """Removes ``member`` from every key; returns the online owners that held it."""
        if not keys:
            return []
        args: list[Any] = [member, *(owners if owners is not None else [""] * len(keys))]
        return [str(u) for u in await self._remove(keys=[*keys, online_key], args=args)]

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
        return bool(await self._add_many(keys=[key], args=args))

    def queue_read(self, pipe: Any, key: str, before: Position | None, count: int) -> None:
        """Queues the first round of :meth:`read` on a pipeline (see :meth:`read_rows`)."""
        maximum = "+inf" if before is None else repr(before.score)
        pipe.zrevrangebyscore(key, maximum, MIN_SCORE, start=0, num=count + 8, withscores=True)

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
        batch = count + 8
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
