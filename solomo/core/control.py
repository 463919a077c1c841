"""Commands to every API process's hub, through Redis pub/sub (channel ``rt:control``), and the
durable side of closing an account's sockets (the ``socket_close`` outbox on the user).

Pub/sub is the fast path: a process that is not subscribed at that instant (reconnecting after a
Redis blip) never hears it. So a suspension or deletion also records, in its own MongoDB write,
``socket_close: {code, reason, at}`` on the user; every hub reads the pending ones every
``settings.ws_close_poll_s`` (:func:`pending_closes`) and closes the sockets it holds, and the
realtime sweep marks them done once every hub has had :data:`CLOSE_WINDOW` to see them
(:func:`clear_done_closes`). Unsuspending clears it at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from solomo.core.closecodes import FORBIDDEN
from solomo.core.keys import CONTROL_CHANNEL
from solomo.core.mongo import Database
from solomo.core.redistypes import RedisClient
from solomo.core.services import Services

SOCKET_CLOSE = "socket_close"
"""The user document's field holding a pending "close this account's sockets" command."""
CLOSE_WINDOW = timedelta(minutes=5)
"""How long a pending close stays readable: many poll intervals, so every live hub applies it."""


async def disconnect_user(services: Services, user_id: str, code: int = FORBIDDEN, reason: str = "account suspended",
                          *, token_hash: str | None = None) -> int:
    """Close every socket of ``user_id`` in every API process (moderation calls it on suspension),
    or with ``token_hash`` only those opened with that token (logout calls it).

    Returns how many API processes heard the command. Sockets are closed with ``code``; a user
    who then reconnects is refused at the handshake by the token check.
    """
    return await publish_disconnect(services.redis, user_id, code, reason, token_hash=token_hash)


async def publish_disconnect(redis: RedisClient, user_id: str, code: int, reason: str, *,
                             token_hash: str | None = None, keep: str | None = None) -> int:
    """Returns PUBLISH's count: the subscribers of the node that took it (on a Redis Cluster the
    message reaches every node's subscribers, but each node counts only its own). ``keep``: a token
    hash whose sockets stay open (every other one closes)."""
    command: dict[str, Any] = {"op": "disconnect", "user_id": str(user_id), "code": int(code), "reason": reason}
    if token_hash is not None:
        command["token"] = token_hash
    if keep is not None:
        command["keep"] = keep
    return int(await redis.publish(CONTROL_CHANNEL, orjson.dumps(command)))


async def publish_evict(redis: RedisClient, sockets: list[str], code: int, reason: str) -> int:
    """Close these sockets (``{process id}|{socket id}``, see ``keys.user_sockets``) wherever they are."""
    command = {"op": "evict", "sockets": sockets, "code": int(code), "reason": reason}
    return int(await redis.publish(CONTROL_CHANNEL, orjson.dumps(command)))


def close_command(code: int, reason: str, now: datetime | None = None) -> dict[str, Any]:
    """The value to ``$set`` as :data:`SOCKET_CLOSE`, in the same write as the status change."""
    return {"code": int(code), "reason": reason[:120], "at": now or datetime.now(UTC)}


def closes_recorded(at: dict[str, Any]) -> dict[str, Any]:
    """The filter on the users whose close was recorded ``at`` (a condition on the time) that the
    partial index ``socket_close_pending`` serves. MongoDB uses a partial index only for a query
    that implies its filter, and a condition on ``socket_close.at`` does not imply that
    ``socket_close`` exists: without it, every hub's poll scanned every user."""
    return {SOCKET_CLOSE: {"$exists": True}, f"{SOCKET_CLOSE}.at": at}


async def pending_closes(db: Database, now: datetime | None = None) -> list[tuple[str, int, str]]:
    """(user id, close code, reason) of every close recorded within :data:`CLOSE_WINDOW`."""
    since = (now or datetime.now(UTC)) - CLOSE_WINDOW
    cursor = db.users.find(closes_recorded({"$gte": since}), {SOCKET_CLOSE: 1})
    return [(str(doc["_id"]), int(doc[SOCKET_CLOSE]["code"]), str(doc[SOCKET_CLOSE]["reason"]))
            async for doc in cursor]


async def clear_done_closes(db: Database, now: datetime | None = None) -> int:
    """Marks done the closes every hub has had :data:`CLOSE_WINDOW` to apply; returns how many."""
    before = (now or datetime.now(UTC)) - CLOSE_WINDOW
    result = await db.users.update_many(closes_recorded({"$lt": before}), {"$unset": {SOCKET_CLOSE: ""}})
    return int(result.modified_count)
