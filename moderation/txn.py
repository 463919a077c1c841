"""Transactions and post-commit task sends for moderation writes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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
