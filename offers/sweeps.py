"""Periodic upkeep (Celery beat): targeting lost on its way to the broker, expired live offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from offers import live
from solomo.core import tasknames
from solomo.core.services import Services
from solomo.core.txn import send_task

RESEND_AFTER = timedelta(seconds=30)


async def resend_pending_targeting(services: Services, limit: int = 500) -> int:
    """Re-enqueue targeting for live offers still pending after a while (the task is idempotent)."""
    now = datetime.now(UTC)
    cursor = services.db.offers.find(
        {"targeting": "pending", "created_at": {"$lt": now - RESEND_AFTER}, "expires_at": {"$gt": now}},
        {"_id": 1}).limit(limit)
    n = 0
    async for doc in cursor:
        await send_task(services, tasknames.OFFERS_TARGET, str(doc["_id"]))
        n += 1
    return n


async def sweep_live(services: Services) -> int:
    return await live.sweep(services.redis)
