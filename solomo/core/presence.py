"""Who is online: per reader bucket, the Redis set ``rt:online:{b<n>}`` of users with at least
one open socket in any API process (:func:`solomo.core.keys.online_key`).

Each API process keeps its own share per bucket, ``rt:proc:{b<n>}:<pid>``, and a heartbeat in the
zset ``rt:procs``. A user leaves the online set when the last process holding them lets go: the
script that removes them checks the other live processes' sets of the same bucket (same hash tag,
so it is one script on a Redis Cluster too). A process that dies without cleaning up stops
heartbeating; the next sweep (any process's heartbeat, or the worker's beat) drops it from
``rt:procs``, deletes its sets and rebuilds each bucket's online set as the union of the live
processes' sets, so a crash leaves nobody online for longer than ``stale_after_s``.

The list of live processes is read from ``rt:procs`` before a script runs and passed in ``KEYS``
(a process that started in between is caught by the next sweep; one that died in between is
harmless: its set is simply one more to look in).
"""

from __future__ import annotations

from typing import Any

from solomo.core import timeutil
from solomo.core.keys import BUCKETS, PROCS, by_bucket, online_key, proc_users
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript

# KEYS: this process's set of the bucket, the bucket's online set, then the other live processes'
# sets of the bucket. ARGV: set ttl (s), then pairs (uid, "1" present | "0" gone).
_APPLY = LuaScript("presence_apply", """
local mine, online = KEYS[1], KEYS[2]
for i = 2, #ARGV, 2 do
  local uid = ARGV[i]
  if ARGV[i + 1] == '1' then
    redis.call('SADD', mine, uid)
    redis.call('SADD', online, uid)
  else
    redis.call('SREM', mine, uid)
    local held = false
    for k = 3, #KEYS do
      if redis.call('SISMEMBER', KEYS[k], uid) == 1 then held = true; break end
    end
    if not held then redis.call('SREM', online, uid) end
  end
end
redis.call('EXPIRE', mine, ARGV[1])
return 1
""")

# KEYS[1]: rt:procs. ARGV: pid ("" for a sweep only), now ms, stale-after ms, leaving ("1"|"0").
# Refreshes (or removes) the process, drops the stale ones; returns {dead pids..., "|", live pids...}.
_PROCS = LuaScript("presence_procs", """
local procs, pid, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
if pid ~= '' then
  if ARGV[4] == '1' then redis.call('ZREM', procs, pid) else redis.call('ZADD', procs, now, pid) end
end
local dead = redis.call('ZRANGEBYSCORE', procs, '-inf', now - tonumber(ARGV[3]))
for _, p in ipairs(dead) do redis.call('ZREM', procs, p) end
local out = dead
out[#out + 1] = '|'
for _, p in ipairs(redis.call('ZRANGE', procs, 0, -1)) do out[#out + 1] = p end
return out
""")

# KEYS[1]: a bucket's online set, then the live processes' sets of the bucket (ARGV[1] of them),
# then the sets to delete (processes gone). Rebuilds the online set as the union of the live sets.
_REBUILD = LuaScript("presence_rebuild", """
local live = tonumber(ARGV[1])
for k = 2 + live, #KEYS do redis.call('DEL', KEYS[k]) end
if live > 0 then
  local sets = {}
  for k = 2, 1 + live do sets[#sets + 1] = KEYS[k] end
  redis.call('SUNIONSTORE', KEYS[1], unpack(sets))
else
  redis.call('DEL', KEYS[1])
end
return 1
""")


class Presence:
    """This process's share of the online sets."""

    def __init__(self, redis: RedisClient, pid: str, stale_after_s: float = 45.0) -> None:
        self.redis = redis
        self.pid = pid
        self.stale_after_ms = int(stale_after_s * 1000)

    @property
    def _ttl_s(self) -> int:
        return self.stale_after_ms // 1000 + 1

    async def apply(self, changes: dict[str, bool]) -> None:
        """Mark users present (True) or gone (False) in this process, in one pipelined round."""
        if not changes:
            return
        others: list[str] = []
        if not all(changes.values()):
            others = [str(p) for p in await self.redis.zrange(PROCS, 0, -1) if str(p) != self.pid]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(PROCS, {self.pid: timeutil.now_ms()})
            for bucket, uids in by_bucket(changes).items():
                keys = [proc_users(self.pid, bucket), online_key(bucket), *(proc_users(p, bucket) for p in others)]
                args: list[Any] = [self._ttl_s]
                for uid in uids:
                    args.extend((uid, "1" if changes[uid] else "0"))
                _APPLY.queue(pipe, keys, args)
            await pipe.execute()

    async def heartbeat(self, now_ms: int | None = None) -> int:
        """Refresh this process and drop dead ones; returns how many dead processes were swept."""
        dead = await sweep(self.redis, self.pid, now_ms=now_ms, stale_after_ms=self.stale_after_ms)
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in range(BUCKETS):
                pipe.expire(proc_users(self.pid, bucket), self._ttl_s)
            await pipe.execute()
        return dead

    async def leave(self) -> None:
        """This process is stopping: its users leave unless another process holds them."""
        await sweep(self.redis, self.pid, stale_after_ms=self.stale_after_ms, leaving=True)


async def sweep(redis: RedisClient, pid: str = "", *, now_ms: int | None = None, stale_after_ms: int = 45_000,
                leaving: bool = False) -> int:
    """Drops processes that stopped heartbeating (and ``pid`` when ``leaving``) and rebuilds the
    online sets without them; returns how many dead processes were found."""
    now = timeutil.now_ms() if now_ms is None else now_ms
    out = [str(p) for p in await _PROCS(redis, [PROCS], [pid, now, stale_after_ms, "1" if leaving else "0"])]
    split = out.index("|")
    dead, live = out[:split], out[split + 1:]
    if leaving and pid:
        dead.append(pid)
    if dead:
        async with redis.pipeline(transaction=False) as pipe:
            for bucket in range(BUCKETS):
                keys = [online_key(bucket), *(proc_users(p, bucket) for p in live),
                        *(proc_users(p, bucket) for p in dead)]
                _REBUILD.queue(pipe, keys, [len(live)])
            await pipe.execute()
    return len(dead) - (1 if leaving and pid else 0)


async def is_online(redis: RedisClient, user_ids: list[str]) -> list[bool]:
    """Whether each user has an open socket somewhere (order kept)."""
    if not user_ids:
        return []
    groups = by_bucket(user_ids)
    async with redis.pipeline(transaction=False) as pipe:
        for bucket, uids in groups.items():
            pipe.smismember(online_key(bucket), uids)
        results = await pipe.execute()
    online: set[str] = set()
    for uids, flags in zip(groups.values(), results, strict=True):
        online.update(u for u, flag in zip(uids, flags, strict=True) if flag)
    return [str(u) in online for u in user_ids]
