"""Publishing events to users, from any process (API or Celery worker).

Each event is appended to the user's bounded history stream (``keys.event_history``; its stream
id is the event id, ordered per user, used for resume) and announced on the pub/sub channel
``rt:events`` that every API process subscribes to; the process holding the user's sockets
delivers it. Delivery never relies on process memory alone.

Recording and announcing happen in one Lua script per reader bucket (all in one pipeline), so an
event is either in the history *and* announced, or neither. ``once_key`` adds the bucket's dedupe
set to the same script: a user gets at most one event per dedupe key however often a task is retried (at-least-once
inside, exactly-once as the user sees it).

Wire format on ``rt:events``: one message per script call (a reader bucket, at most :data:`CHUNK`
users), not one per user. What the users' frames share is in it once: line 1 is the ``head``
(``","type":<type>,"data":`` and the shared start of the data), line 2 the ``tail`` (the shared end
of the data and the frame's closing brace); then one line per user, ``"{uid} {event id} {part}"``,
where ``part`` is that user's own piece of the data (empty when everyone gets the same). A user's
frame is ``'{"id":"' + event id + head + part + tail``: the exact JSON text sent to the socket,
built by an API process only for the users it holds, nothing re-encoded. An offer to 10,000 users
carries each user's distance, not 10,000 copies of the offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import orjson

from solomo.core.keys import EVENTS_CHANNEL as CHANNEL
from solomo.core.keys import by_bucket, event_history
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript

CHUNK = 500
HISTORY_TTL_S = 7 * 24 * 3600
"""A user's history stream expires this long after their last event (the age bound)."""
STREAM_ID_HALF_MAX = 2**64 - 1
"""Redis reads each half of a stream id (``<ms>-<seq>``) as an unsigned 64-bit integer."""
STREAM_ID_DIGITS = len(str(STREAM_ID_HALF_MAX))
LAST_EVENT_KEY = (STREAM_ID_HALF_MAX, STREAM_ID_HALF_MAX)
"""The greatest stream id: no event can follow it."""

# KEYS: the dedupe set or nothing, then the history stream of each user (one bucket: one hash tag).
# ARGV: maxlen, history ttl, dedupe ttl, channel, type, data prefix, data suffix, frame head, frame
# tail, then pairs (uid, data part) in the order of the streams. A user's data is prefix .. part ..
# suffix. Returns a flat list uid, id for every event recorded.
_PUBLISH = LuaScript("events_publish", """
local out = {}
local lines = {ARGV[8], ARGV[9]}
local dedupe = (#KEYS > (#ARGV - 9) / 2) and KEYS[1] or nil
local first = dedupe and 1 or 0
for i = 10, #ARGV, 2 do
  local uid = ARGV[i]
  if dedupe == nil or redis.call('SADD', dedupe, uid) == 1 then
    local key = KEYS[first + (i - 8) / 2]
    local id = redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[5],
      'data', ARGV[6] .. ARGV[i + 1] .. ARGV[7])
    redis.call('EXPIRE', key, ARGV[2])
    out[#out + 1] = uid
    out[#out + 1] = id
    lines[#lines + 1] = uid .. ' ' .. id .. ' ' .. ARGV[i + 1]
  end
end
if dedupe then redis.call('EXPIRE', dedupe, ARGV[3]) end
if #lines > 2 then redis.call('PUBLISH', ARGV[4], table.concat(lines, '\\n')) end
return out
""")

OnceKey = Callable[[int], str]
"""The dedupe set of one reader bucket (``lambda bucket: keys.offer_delivered(offer_id, bucket)``):
one set per bucket, so it shares the slot of the histories it guards."""


class RecordedSink(Protocol):
    """Told of the events just recorded (Web Push for users without a socket, :mod:`push.dispatch`);
    set on the publisher by the composition root. ``wants`` is asked first, so frames are built only
    for the types it takes (a fan-out's ``feed.new`` costs nothing)."""

    def wants(self, type: str) -> bool: ...

    async def recorded(self, type: str, frames: list[tuple[str, str]]) -> None:
        """``(user id, frame)`` of each event recorded; must not raise."""
        ...


def event_key(event_id: str) -> tuple[int, int]:
    """A stream id ``"<ms>-<seq>"`` as a sortable pair; raises ValueError when malformed. Whatever
    it accepts Redis reads too: a client's ``last_event_id`` goes on to XRANGE."""
    ms_text, sep, seq_text = event_id.partition("-")
    ms, seq = _stream_id_half(ms_text), _stream_id_half(seq_text)
    if not sep or ms is None or seq is None:
        raise ValueError(f"not an event id: {event_id[:64]!r}")
    return ms, seq


def _stream_id_half(text: str) -> int | None:
    """One half of a stream id as Redis reads it, or None: ASCII digits (str.isdigit alone also
    takes "١٢٣", which int() reads and Redis refuses), at most :data:`STREAM_ID_HALF_MAX`. The
    length is checked first, so a client's long id costs no conversion."""
    if not 0 < len(text) <= STREAM_ID_DIGITS or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= STREAM_ID_HALF_MAX else None


def frame(event_id: str, type: str, data_json: str | bytes) -> str:
    """The exact text frame a client receives."""
    data = data_json.decode() if isinstance(data_json, bytes) else data_json
    return f'{{"id":"{event_id}","type":{orjson.dumps(type).decode()},"data":{data}}}'


class EventPublisher:
    def __init__(self, redis: RedisClient, history: int = 200) -> None:
        self.redis = redis
        self.history = history
        self.sink: RecordedSink | None = None
        """The one place Web Push joins the event path: every ``publish*`` ends in :meth:`_run`."""

    async def publish(self, user_ids: Iterable[str], type: str, data: dict[str, Any]) -> list[str]:
        """Record and announce one event for each user; returns the event ids in order."""
        users = list(dict.fromkeys(str(u) for u in user_ids))
        recorded = await self._run(None, type, (orjson.dumps(data).decode(), ""), [(uid, "") for uid in users], 0)
        return [eid for _, eid in recorded]

    async def publish_each(
        self, type: str, items: Sequence[tuple[str, dict[str, Any]]], *, once_key: OnceKey | None = None,
        once_ttl_s: int = 86400,
    ) -> list[tuple[str, str]]:
        """One event per ``(user id, data)``; with ``once_key`` users already in their bucket's
        dedupe set are skipped. Returns ``(user id, event id)`` for the events actually recorded.
        """
        pairs = [(str(uid), orjson.dumps(data).decode()) for uid, data in items]
        return await self._run(once_key, type, ("", ""), pairs, once_ttl_s)

    async def publish_shared(
        self, type: str, shared: tuple[str, str], parts: Sequence[tuple[str, str]], *,
        once_key: OnceKey | None = None, once_ttl_s: int = 86400,
    ) -> list[tuple[str, str]]:
        """Like :meth:`publish_each`, for data that is mostly the same for everyone: a user's data
        is the JSON text ``shared[0] + part + shared[1]`` for each ``(user id, part)``, so the
        shared text is encoded and announced once per message (see the wire format above)."""
        return await self._run(once_key, type, shared, [(str(uid), part) for uid, part in parts], once_ttl_s)

    async def _run(
        self, once_key: OnceKey | None, type: str, shared: tuple[str, str], pairs: list[tuple[str, str]],
        dedupe_ttl: int,
    ) -> list[tuple[str, str]]:
        """One script call per reader bucket (and at most :data:`CHUNK` users), pipelined."""
        if not pairs:
            return []
        parts: dict[str, list[str]] = {}
        for uid, part in pairs:
            parts.setdefault(uid, []).append(part)
        prefix, suffix = shared
        head: list[Any] = [self.history, HISTORY_TTL_S, max(1, dedupe_ttl), CHANNEL, type, prefix, suffix,
                           f'","type":{orjson.dumps(type).decode()},"data":{prefix}', f"{suffix}}}"]
        out: list[tuple[str, str]] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket, uids in by_bucket(parts).items():
                rows = [(uid, part) for uid in uids for part in parts[uid]]
                for start in range(0, len(rows), CHUNK):
                    chunk = rows[start:start + CHUNK]
                    keys = [event_history(uid) for uid, _ in chunk]
                    if once_key is not None:
                        keys.insert(0, once_key(bucket))
                    _PUBLISH.queue(pipe, keys, [*head, *(x for row in chunk for x in row)])
            results = await pipe.execute()
        for flat in results:
            out.extend((str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2))
        if self.sink is not None and out and self.sink.wants(type):
            await self.sink.recorded(type, _frames(out, parts, head[7], head[8]))
        return out


def _frames(recorded: list[tuple[str, str]], parts: dict[str, list[str]], head: str, tail: str
            ) -> list[tuple[str, str]]:
    """``(user id, frame)`` of each recorded event. A user's rows are consecutive and recorded in
    order, and the dedupe set records at most their first: each recorded id takes the user's next
    unused part."""
    used: dict[str, int] = {}
    out: list[tuple[str, str]] = []
    for uid, event_id in recorded:
        n = used.get(uid, 0)
        used[uid] = n + 1
        options = parts[uid]
        out.append((uid, '{"id":"' + event_id + head + options[min(n, len(options) - 1)] + tail))
    return out
