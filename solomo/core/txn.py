"""Transactions and post-commit task sends for moderation writes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

T = TypeVar("T")
log = logging.getLogger("solomo.moderation")


async def in_transaction(services: Any, txn: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    async with services.mongo.start_session() as session:
        return await session.with_transaction(txn)


async def send_task(services: Any, name: str, *args: Any) -> bool:
    """Best-effort enqueue after a commit: the state change is already durable and every read
    path filters by status, so a lost task delays only the Redis clean-up, never correctness."""
    try:
        await services.tasks.send(name, *args)
        return True
    except Exception as exc:  # broker down: logged, the data is already right
        log.warning("could not enqueue %s%r: %s", name, args, exc)
        return False


def outbox_fields(now: datetime) -> dict[str, Any]:
    """What a status change ``$set``s on a post (with ``$unset: {"fanout_progress": ""}``, for a
    fresh run) in its own transaction, so that ``feed.fanout.sweep_pending`` brings the feeds in
    line even if the post-commit task is lost: its ``fanout.post`` pushes a published post and
    retracts any other. ``fanout_swept_at = now`` gives the fast-path task one sweep interval
    before the sweep re-sends the work, so a healthy broker does not fan the post out twice."""
    return {"fanout": "pending", "fanout_swept_at": now}
