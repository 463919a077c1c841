"""Publishing events to users, from any process (API or Celery worker).

Each event is appended to the user's bounded history stream ``events:{uid}`` (its stream id is
the event id, ordered per user, used for resume) and then announced on the pub/sub channel
``rt:events`` that every API process subscribes to; the process holding the user's sockets
delivers it. Delivery never relies on process memory alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio import Redis

CHANNEL = "rt:events"


def history_key(user_id: str) -> str:
    return f"events:{user_id}"


class EventPublisher:
    def __init__(self, redis: Redis, history: int = 200) -> None:
        self.redis = redis
        self.history = history

    async def publish(self, user_ids: Iterable[str], type: str, data: dict[str, Any]) -> list[str]:
        """Record and announce one event for each user; returns the event ids in order."""
        users = list(dict.fromkeys(str(u) for u in user_ids))
        if not users:
            return []
        payload = orjson.dumps(data)
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in users:
                pipe.xadd(history_key(uid), {"type": type, "data": payload},
                          maxlen=self.history, approximate=True)
            ids = await pipe.execute()
        event_ids = [i.decode() if isinstance(i, bytes) else i for i in ids]
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid, eid in zip(users, event_ids, strict=True):
                message = b'{"u":"%s","id":"%s","type":%s,"data":%s}' % (
                    uid.encode(), eid.encode(), orjson.dumps(type), payload)
                pipe.publish(CHANNEL, message)
            await pipe.execute()
        return event_ids
