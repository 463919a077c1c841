"""Periodic upkeep (Celery beat): targeting lost on its way to the broker, expired live offers,
live offers missing from the Redis index (MongoDB is the truth: after a Redis flush, a failover that
lost recent writes or an upgrade of the key layout, the index is rebuilt within one sweep), and the
claim gates' repair (:func:`reconcile_gates`: slots of claims whose process died, lost confirms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from offers import gate, live
from offers.audiences import followers_store
from offers.offers import HELD, expires_ms, sold_out
from solomo.core import tasknames
from solomo.core.keys import LIVE_OFFERS_META
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


RESTORE_BATCH = 500


async def restore_live(services: Services) -> int:
    """Registers every live offer that MongoDB has and the Redis index lacks; returns how many.

    Bounded: live offers are capped per store (``max_live_offers_per_store``), read in batches
    through the expiry index, one HMGET per batch."""
    now = datetime.now(UTC)
    cursor = services.db.offers.find(
        {"expires_at": {"$gt": now}, "status": {"$nin": list(HELD)}},
        {"location": 1, "radius_m": 1, "expires_at": 1, "stock": 1, "claimed": 1, "store_id": 1,
         "audience": 1}).sort("expires_at", 1)
    restored, batch = 0, list[dict[str, Any]]()
    async for doc in cursor:
        if not sold_out(doc):
            batch.append(doc)
        if len(batch) >= RESTORE_BATCH:
            restored += await _restore(services, batch)
            batch = []
    return restored + await _restore(services, batch)


async def _restore(services: Services, docs: list[dict[str, Any]]) -> int:
    if not docs:
        return 0
    known = cast(list[str | None], await services.redis.hmget(LIVE_OFFERS_META, [str(d["_id"]) for d in docs]))
    missing = [d for d, meta in zip(docs, known, strict=True) if meta is None]
    for doc in missing:
        lng, lat = doc["location"]["coordinates"]
        await live.register(services.redis, str(doc["_id"]), lat, lng, int(doc["radius_m"]), expires_ms(doc),
                            followers_store(doc))
    return len(missing)


GATE_BATCH = 500


async def reconcile_gates(services: Services, stale_after_ms: int = gate.RESERVATION_TTL_MS) -> dict[str, int]:
    """Repairs the claim gate of every live stock-limited offer (:func:`offers.gate.reconcile`):
    a reservation older than ``stale_after_ms`` is given back, so stock held by a claim whose
    process died is claimable again; a gate missing a committed voucher is rebuilt. Bounded like
    :func:`restore_live`: live offers are capped per store, read in batches, one pipeline each."""
    now = datetime.now(UTC)
    cursor = services.db.offers.find(
        {"expires_at": {"$gt": now}, "status": {"$nin": list(HELD)}, "stock": {"$ne": None}},
        {"status": 1, "stock": 1, "claimed": 1, "expires_at": 1}).sort("expires_at", 1)
    total = {"gates": 0, "rebuilt": 0}
    batch: list[dict[str, Any]] = []
    async for doc in cursor:
        batch.append(doc)
        if len(batch) >= GATE_BATCH:
            for k, n in (await gate.reconcile(services, batch, stale_after_ms)).items():
                total[k] += n
            batch = []
    for k, n in (await gate.reconcile(services, batch, stale_after_ms)).items():
        total[k] += n
    return total
