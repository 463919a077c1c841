"""The durable write of winning claims: one MongoDB transaction per offer at a time, per process.

Every claim's transaction moves the offer's ``claimed`` counter, so concurrent ones on one offer
conflict: 64 of them retried each other for seconds (the profile of issue 14). Here the winners of
one offer queue in this process and a single writer commits them in groups — one transaction
moves ``claimed`` by the group's size (only if that stays within ``stock``, the offer live) and
inserts the group's vouchers — so one process never races itself on the offer document, and the
transaction count falls with the load.

A group that fails as a whole (the stock cannot take all of it, a user already holds a voucher, a
code collides) is retried one voucher at a time, each with the same guards, so every claim gets
its own answer. The writer runs in a task of its own, with an empty context: it belongs to no
request (a cancelled request must not cancel the others' commit), and marks no request's
``Idempotency-Key`` as written — a claim is idempotent by itself (one voucher per user).
"""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from offers.offers import live_query
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


_Waiter = tuple[dict[str, Any], "asyncio.Future[None]"]


class VoucherWriter:
    """Per process (``services.extras``): the queue of winners per offer and its writer task."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.queues: dict[ObjectId, list[_Waiter]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def write(self, offer_id: ObjectId, doc: dict[str, Any]) -> None:
        """Commits ``doc`` (a voucher) with the ``claimed`` move; raises :class:`NotClaimable`,
        ``DuplicateKeyError`` or MongoDB's error for this voucher alone."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # a claim cancelled meanwhile leaves no unread error behind
        queue = self.queues.get(offer_id)
        if queue is None:
            self.queues[offer_id] = [(doc, done)]
            task = asyncio.create_task(self._drain(offer_id), context=contextvars.Context())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            queue.append((doc, done))
        await asyncio.shield(done)  # a cancelled claim must not cancel the group's commit

    async def _drain(self, offer_id: ObjectId) -> None:
        try:
            while True:
                queue = self.queues.get(offer_id) or []
                group, rest = queue[:GROUP_MAX], queue[GROUP_MAX:]
                if not group:
                    del self.queues[offer_id]
                    return
                self.queues[offer_id] = rest
                await self._write_group(offer_id, group)
        except BaseException as exc:  # cancelled (shutdown): the queued claims learn it too
            for _, done in self.queues.pop(offer_id, []):
                _settle(done, exc)
            raise

    async def _write_group(self, offer_id: ObjectId, group: list[_Waiter]) -> None:
        try:
            await _commit(self.services, offer_id, [doc for doc, _ in group])
        except PER_VOUCHER as exc:
            if len(group) == 1:
                _settle(group[0][1], exc)
                return
            for waiter in group:  # each on its own: every claim gets its own answer
                await self._write_group(offer_id, [waiter])
            return
        except BaseException as exc:  # MongoDB down (no use retrying each), or cancelled: all learn it
            for _, done in group:
                _settle(done, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for _, done in group:
            _settle(done, None)


def _retrieved(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is None:
        done.set_result(None)
    elif isinstance(exc, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(exc)


def writer(services: Services) -> VoucherWriter:
    found = services.extras.get("offers.voucher_writer")
    if not isinstance(found, VoucherWriter):
        found = services.extras["offers.voucher_writer"] = VoucherWriter(services)
    return found
