"""The durable write of winning claims: one MongoDB transaction per offer at a time, per process.

Every claim's transaction moves the offer's ``claimed`` counter, so concurrent ones on one offer
conflict: 64 of them retried each other for seconds (the profile of issue 14). Here the winners of
one offer queue in this process and a single writer commits them in groups — one transaction
moves ``claimed`` by the group's size (only if that stays within ``stock``, the offer live) and
inserts the group's vouchers — so one process never races itself on the offer document, and the
transaction count falls with the load (:mod:`solomo.core.groupwrite`, a queue per offer).

A group that fails as a whole (the stock cannot take all of it, a user already holds a voucher, a
code collides) is retried one voucher at a time, each with the same guards, so every claim gets
its own answer. The writer runs in a task of its own, with an empty context: it belongs to no
request (a cancelled request must not cancel the others' commit), and marks no request's
``Idempotency-Key`` as written — a claim is idempotent by itself (one voucher per user).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from offers.offers import live_query
from solomo.core.groupwrite import GroupWriter
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

GROUP_MAX = 256
"""The most vouchers one transaction inserts."""


class NotClaimable(Exception):
    """MongoDB refused the ``claimed`` move: the offer ended, expired or has too little stock left."""


PER_VOUCHER = (NotClaimable, DuplicateKeyError, BulkWriteError)
"""Failures of a group that may concern only some of its vouchers (too little stock for all, a user
who already holds one, a code collision): the group is retried voucher by voucher."""


def _within_stock(n: int) -> dict[str, Any]:
    """:func:`offers.offers.live_query`'s stock condition for ``n`` claims at once."""
    return {"$or": [{"$eq": ["$stock", None]}, {"$lte": [{"$add": ["$claimed", n]}, "$stock"]}]}


async def _commit(services: Services, offer_id: ObjectId, docs: list[dict[str, Any]]) -> None:
    db = services.db

    async def body(txn: Txn) -> None:
        now = datetime.now(UTC)
        moved = await db.offers.update_one(
            {"_id": offer_id, **live_query(now), "$expr": _within_stock(len(docs))},
            {"$inc": {"claimed": len(docs)}}, session=txn.session)
        if moved.modified_count != 1:
            raise NotClaimable()
        if len(docs) == 1:  # alone, a duplicate surfaces as DuplicateKeyError (its key pattern says which)
            await db.vouchers.insert_one(docs[0], session=txn.session)
        else:
            await db.vouchers.insert_many(docs, ordered=True, session=txn.session)

    await run_transaction(services, body)


def _take(queued: list[dict[str, Any]]) -> list[int]:
    """The next group of one offer's winners: the first :data:`GROUP_MAX` in the queue."""
    return list(range(min(len(queued), GROUP_MAX)))


async def _write_group(services: Services, offer_id: ObjectId, docs: list[dict[str, Any]]) -> list[None]:
    await _commit(services, offer_id, docs)
    return [None] * len(docs)


class VoucherWriter:
    """Per process (``services.extras``): a group writer per offer with winners queued."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.offers: dict[ObjectId, GroupWriter[dict[str, Any], None]] = {}

    async def write(self, offer_id: ObjectId, doc: dict[str, Any]) -> None:
        """Commits ``doc`` (a voucher) with the ``claimed`` move; raises :class:`NotClaimable`,
        ``DuplicateKeyError`` or MongoDB's error for this voucher alone."""
        group_writer = self.offers.get(offer_id)
        if group_writer is None:
            group_writer = self.offers[offer_id] = GroupWriter(
                lambda docs: _write_group(self.services, offer_id, docs), take=_take, per_item=PER_VOUCHER)
        try:
            await group_writer.submit(doc)
        finally:
            if group_writer.idle and self.offers.get(offer_id) is group_writer:
                del self.offers[offer_id]  # an offer nobody claims any more keeps no writer


def writer(services: Services) -> VoucherWriter:
    found = services.extras.get("offers.voucher_writer")
    if not isinstance(found, VoucherWriter):
        found = services.extras["offers.voucher_writer"] = VoucherWriter(services)
    return found
