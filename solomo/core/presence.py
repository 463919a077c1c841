"""Who is online: the Redis set ``rt:online`` of users with at least one open socket, in any process.

Each API process keeps its own set ``rt:proc:{pid}:users`` and a heartbeat in the zset
``rt:procs``. A user leaves ``rt:online`` when the last process holding them lets go. A process
that dies without cleaning up stops heartbeating; the next sweep (any process's heartbeat)
drops its set and rebuilds ``rt:online`` as the union of the live processes' sets, so a crash
leaves nobody online for longer than ``stale_after_s``.

Keys are built inside the scripts from ``rt:procs``, so this is single-instance Redis only (a
Redis Cluster deployment would give the keys one hash tag, ``{rt}``).
"""

from __future__ import annotations

from redis.asyncio import Redis

from solomo.core import timeutil
from solomo.core.keys import ONLINE, PROCS, proc_users

# KEYS: proc set, online, procs. ARGV: pid, now ms, proc set ttl, then pairs (uid, "1"|"0").
_APPLY_LUA = """
local mine, online, procs, pid = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
redis.call('ZADD', procs, ARGV[2], pid)
local others = nil
for i = 4, #ARGV, 2 do
  local uid = ARGV[i]
  if ARGV[i + 1] == '1' then
    redis.call('SADD', mine, uid)
    redis.call('SADD', online, uid)
  else
    redis.call('SREM', mine, uid)
    if others == nil then others = redis.call('ZRANGE', procs, 0, -1) end
    local held = false
    for _, p in ipairs(others) do
      if p ~= pid and redis.call('SISMEMBER', 'rt:proc:' .. p .. ':users', uid) == 1 then held = true; break end
    end
    if not held then redis.call('SREM', online, uid) end
  end
end
redis.call('EXPIRE', mine, ARGV[3])
return 1
"""

# KEYS: online, procs. ARGV: pid ("" for a sweep only), now ms, stale-after ms, proc set ttl, leaving ("1"|"0").
_HEARTBEAT_LUA = """
local online, procs, pid, now = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
if pid ~= '' then
  if ARGV[5] == '1' then
    redis.call('ZREM', procs, pid)
    redis.call('DEL', 'rt:proc:' .. pid .. ':users')
  else
    redis.call('ZADD', procs, now, pid)
    redis.call('EXPIRE', 'rt:proc:' .. pid .. ':users', ARGV[4])
  end
end
local dead = redis.call('ZRANGEBYSCORE', procs, '-inf', now - tonumber(ARGV[3]))
for _, p in ipairs(dead) do
  redis.call('ZREM', procs, p)
  redis.call('DEL', 'rt:proc:' .. p .. ':users')
end
if #dead > 0 or ARGV[5] == '1' then
  local sets = {}
  for _, p in ipairs(redis.call('ZRANGE', procs, 0, -1)) do sets[#sets + 1] = 'rt:proc:' .. p .. ':users' end
  if #sets > 0 then redis.call('SUNIONSTORE', online, unpack(sets)) else redis.call('DEL', online) end
end
return #dead
"""


class Presence:
    """This process's share of ``rt:online``."""

    def __init__(self, redis: Redis, pid: str, stale_after_s: float = 45.0) -> None:
        self.redis = redis
        self.pid = pid
        self.stale_after_ms = int(stale_after_s * 1000)
        self._apply = redis.register_script(_APPLY_LUA)
        self._heartbeat = redis.register_script(_HEARTBEAT_LUA)

    async def apply(self, changes: dict[str, bool]) -> None:
        """Mark users present (True) or gone (False) in this process, in one round trip."""
        if not changes:
            return
        args: list[str | int] = [self.pid, timeutil.now_ms(), self.stale_after_ms // 1000 + 1]
        for uid, present in changes.items():
            args.extend((uid, "1" if present else "0"))
        await self._apply(keys=[proc_users(self.pid), ONLINE, PROCS], args=args)

    async def heartbeat(self, now_ms: int | None = None) -> int:
        """Refresh this process and drop dead ones; returns how many dead processes were swept."""
        return await sweep(self.redis, self.pid, now_ms=now_ms, stale_after_ms=self.stale_after_ms)

    async def leave(self) -> None:
        """This process is stopping: its users leave unless another process holds them."""
        await self._heartbeat(keys=[ONLINE, PROCS], args=[self.pid, timeutil.now_ms(), self.stale_after_ms,
                                                          self.stale_after_ms // 1000 + 1, "1"])


async def sweep(redis: Redis, pid: str = "", *, now_ms: int | None = None, stale_after_ms: int = 45_000) -> int:
    script = redis.register_script(_HEARTBEAT_LUA)
    now = timeutil.now_ms() if now_ms is None else now_ms
    return int(await script(keys=[ONLINE, PROCS], args=[pid, now, stale_after_ms, stale_after_ms // 1000 + 1, "0"]))


async def is_online(redis: Redis, user_ids: list[str]) -> list[bool]:
    if not user_ids:
        return []
    return [bool(x) for x in await redis.smismember(ONLINE, user_ids)]
