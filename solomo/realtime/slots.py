"""At most ``settings.ws_max_sockets_per_user`` open sockets per user, over every API process.

Each open socket holds a slot in the user's zset ``rt:socks:{uid}`` (member
``{process id}|{socket id}``, score: when it opened). Taking a slot is one script: add the new
one, drop slots of API processes that stopped heartbeating (not in ``rt:procs``, kept by
:mod:`solomo.core.presence`: a crashed process's sockets are gone), then pop the oldest beyond the
cap and return them, for the hub to close with 4409 wherever they are. The key expires a day
after the user's last connect, so it never outlives its use.
"""

from __future__ import annotations

import uuid

from solomo.core import timeutil
from solomo.core.keys import PROCS, user_sockets
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript

SLOTS_TTL_MS = 24 * 3600 * 1000

# KEYS[1]: the user's slots. ARGV: now ms, slot, cap, ttl ms, then the live process ids (read from
# ``rt:procs`` just before: that zset lives in another slot of a Redis Cluster).
_CLAIM = LuaScript("socket_slots_claim", """
local slots = KEYS[1]
redis.call('ZADD', slots, ARGV[1], ARGV[2])
redis.call('PEXPIRE', slots, ARGV[4])
local live = {}
for i = 5, #ARGV do live[ARGV[i]] = true end
for _, s in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
  local pid = string.match(s, '^(.*)|')
  if s ~= ARGV[2] and (pid == nil or not live[pid]) then redis.call('ZREM', slots, s) end
end
local over = redis.call('ZCARD', slots) - tonumber(ARGV[3])
if over <= 0 then return {} end
local oldest = redis.call('ZRANGE', slots, 0, over - 1)
redis.call('ZREMRANGEBYRANK', slots, 0, over - 1)
return oldest
""")


def new_slot(pid: str) -> str:
    return f"{pid}|{uuid.uuid4().hex[:16]}"


def slot_process(slot: str) -> str:
    return slot.rpartition("|")[0]


class Slots:
    def __init__(self, redis: RedisClient, cap: int) -> None:
        self.redis = redis
        self.cap = cap

    async def claim(self, user_id: str, slot: str) -> list[str]:
        """Takes ``slot``; returns the slots it pushed over the cap (oldest first), already released."""
        live = [str(p) for p in await self.redis.zrange(PROCS, 0, -1)]
        evicted = await _CLAIM(self.redis, [user_sockets(user_id)],
                               [timeutil.now_ms(), slot, self.cap, SLOTS_TTL_MS, *live])
        return [s.decode() if isinstance(s, bytes) else str(s) for s in evicted]

    async def release(self, user_id: str, slot: str) -> None:
        await self.redis.zrem(user_sockets(user_id), slot)
