"""At most ``settings.ws_max_sockets_per_user`` open sockets per user, over every API process.

Each open socket holds a slot in the user's zset ``rt:socks:{uid}`` (member
``{process id}|{socket id}``, score: when it opened). Taking a slot is one script: add the new
one, drop slots of API processes that stopped heartbeating (``rt:procs``, kept by
:mod:`solomo.core.presence`: a crashed process's sockets are gone), then pop the oldest beyond the
cap and return them, for the hub to close with 4409 wherever they are. The key expires a day
after the user's last connect, so it never outlives its use.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from solomo.core import timeutil
from solomo.core.keys import PROCS, user_sockets

SLOTS_TTL_MS = 24 * 3600 * 1000

# KEYS: the user's slots, procs. ARGV: now ms, slot, cap, ttl ms.
_CLAIM_LUA = """
local slots, procs = KEYS[1], KEYS[2]
redis.call('ZADD', slots, ARGV[1], ARGV[2])
redis.call('PEXPIRE', slots, ARGV[4])
for _, s in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
  local pid = string.match(s, '^(.*)|')
  if s ~= ARGV[2] and (pid == nil or not redis.call('ZSCORE', procs, pid)) then redis.call('ZREM', slots, s) end
end
local over = redis.call('ZCARD', slots) - tonumber(ARGV[3])
if over <= 0 then return {} end
local oldest = redis.call('ZRANGE', slots, 0, over - 1)
redis.call('ZREMRANGEBYRANK', slots, 0, over - 1)
return oldest
"""


def new_slot(pid: str) -> str:
    return f"{pid}|{uuid.uuid4().hex[:16]}"


def slot_process(slot: str) -> str:
    return slot.rpartition("|")[0]


class Slots:
    def __init__(self, redis: Redis, cap: int) -> None:
        self.redis = redis
        self.cap = cap
        self._claim = redis.register_script(_CLAIM_LUA)

    async def claim(self, user_id: str, slot: str) -> list[str]:
        """Takes ``slot``; returns the slots it pushed over the cap (oldest first), already released."""
        evicted = await self._claim(keys=[user_sockets(user_id), PROCS],
                                    args=[timeutil.now_ms(), slot, self.cap, SLOTS_TTL_MS])
        return [s.decode() if isinstance(s, bytes) else str(s) for s in evicted]

    async def release(self, user_id: str, slot: str) -> None:
        await self.redis.zrem(user_sockets(user_id), slot)
