"""Publishing events to users, from any process (API or Celery worker).

Each event is appended to the user's bounded history stream ``events:{uid}`` (its stream id is
the event id, ordered per user, used for resume) and announced on the pub/sub channel
``rt:events`` that every API process subscribes to; the process holding the user's sockets
delivers it. Delivery never relies on process memory alone.

Recording and announcing happen in one Lua script per chunk of users, so an event is either in
the history *and* announced, or neither. ``publish_once`` adds a dedupe set to the same script:
a user gets at most one event per dedupe key however often a task is retried (at-least-once
inside, exactly-once as the user sees it).

Wire format on ``rt:events`` (one message per chunk, not one per user): lines of
``"{uid} {event id} {frame}"`` where ``frame`` is the exact JSON text sent to the socket, so an
API process routes a line without re-encoding anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from solomo.core.keys import EVENTS_CHANNEL as CHANNEL

CHUNK = 500
HISTORY_TTL_S = 7 * 24 * 3600
"""A user's history stream expires this long after their last event (the age bound)."""

# KEYS[1]: dedupe set or "" (none). ARGV: maxlen, history ttl, dedupe ttl, channel, type, type as JSON,
# then pairs (uid, data JSON). Returns a flat list uid, id for every event recorded.
_PUBLISH_LUA = """
local out, lines = {}, {}
local dedupe = KEYS[1]
for i = 7, #ARGV, 2 do
  local uid = ARGV[i]
  if dedupe == '' or redis.call('SADD', dedupe, uid) == 1 then
    local key = 'events:' .. uid
    local id = redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[5], 'data', ARGV[i + 1])
    redis.call('EXPIRE', key, ARGV[2])
    out[#out + 1] = uid
    out[#out + 1] = id
    lines[#lines + 1] = uid .. ' ' .. id .. ' {"id":"' .. id .. '","type":' .. ARGV[6]
      .. ',"data":' .. ARGV[i + 1] .. '}'
  end
end
if dedupe ~= '' then redis.call('EXPIRE', dedupe, ARGV[3]) end
if #lines > 0 then redis.call('PUBLISH', ARGV[4], table.concat(lines, '\\n')) end
return out
"""


def event_key(event_id: str) -> tuple[int, int]:
    """A stream id ``"<ms>-<seq>"`` as a sortable pair; raises ValueError when malformed."""
    ms, sep, seq = event_id.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or len(event_id) > 40:
        raise ValueError(f"not an event id: {event_id!r}")
    return int(ms), int(seq)


def frame(event_id: str, type: str, data_json: str | bytes) -> str:
    """The exact text frame a client receives."""
    data = data_json.decode() if isinstance(data_json, bytes) else data_json
    return f'{{"id":"{event_id}","type":{orjson.dumps(type).decode()},"data":{data}}}'


class EventPublisher:
    def __init__(self, redis: Redis, history: int = 200) -> None:
        self.redis = redis
        self.history = history
        self._script = redis.register_script(_PUBLISH_LUA)

    async def publish(self, user_ids: Iterable[str], type: str, data: dict[str, Any]) -> list[str]:
        """Record and announce one event for each user; returns the event ids in order."""
        users = list(dict.fromkeys(str(u) for u in user_ids))
        payload = orjson.dumps(data).decode()
        recorded = await self._run("", type, [(uid, payload) for uid in users], 0)
        return [eid for _, eid in recorded]

    async def publish_each(
        self, type: str, items: Sequence[tuple[str, dict[str, Any]]], *, once_key: str | None = None,
        once_ttl_s: int = 86400,
    ) -> list[tuple[str, str]]:
        """One event per ``(user id, data)``; with ``once_key`` users already in that set are skipped.

        Returns ``(user id, event id)`` for the events actually recorded.
        """
        pairs = [(str(uid), orjson.dumps(data).decode()) for uid, data in items]
        return await self._run(once_key or "", type, pairs, once_ttl_s)

    async def _run(
        self, dedupe: str, type: str, pairs: list[tuple[str, str]], dedupe_ttl: int
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        type_json = orjson.dumps(type).decode()
        for start in range(0, len(pairs), CHUNK):
            args: list[Any] = [self.history, HISTORY_TTL_S, max(1, dedupe_ttl), CHANNEL, type, type_json]
            for uid, payload in pairs[start:start + CHUNK]:
                args.extend((uid, payload))
            flat = await self._script(keys=[dedupe], args=args)
            out.extend((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
        return out
