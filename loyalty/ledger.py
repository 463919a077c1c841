"""The points ledger and balances: every change of a balance is one ledger entry, in one transaction.

Documents:

* ``points_ledger`` (append-only): ``{_id, user_id, store_id, kind: checkin|redemption|spend,
  points (signed), balance_after, created_at, created_ms, day (store-local YYYY-MM-DD), source_id,
  once}``. ``once`` is the unique key that makes an earning or a charge happen at most once.
* ``points_balances``: ``{_id: user_id, balance, earned, spent, updated_at}``.

:func:`credit` and :func:`debit` take the caller's :class:`~solomo.core.txn.Txn`: the entry and the
balance move in the same MongoDB transaction as the action that earns or spends (the check-in, the
voucher's redemption, the spend code's use), so an aborted or retried action never earns twice or
loses points. Neither ever inserts a document that may already exist inside the transaction (a
duplicate key aborts the whole transaction): the "first of the day" test is an upsert of the entry
by its ``once`` key (:func:`once_is`), and the debit a conditional ``$inc`` guarded by
``balance >= points``, so the balance never goes below zero whatever runs concurrently (two debits
of one balance write the same document: MongoDB lets one commit and re-runs the other, which then
sees the lower balance).

Each committed entry sends ``loyalty.announce`` (its id) after the commit: the worker publishes the
``points`` event to the user (:mod:`loyalty.announce`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne

from checkins.localtime import local_day
from checkins.stores import store_summary
from solomo.core import tasknames
from solomo.core.errors import Conflict
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.timeutil import ms_of
from solomo.core.txn import Txn

T = TypeVar("T")
Kind = Literal["checkin", "redemption", "spend"]


def _entry(user_id: ObjectId, store: dict[str, Any], kind: Kind, points: int, source_id: ObjectId,
           now: datetime) -> dict[str, Any]:
    return {"_id": ObjectId(), "user_id": user_id, "store_id": store["_id"], "kind": kind, "points": points,
            "balance_after": None, "created_at": now, "created_ms": ms_of(now), "day": local_day(store, now),
            "source_id": source_id}


@dataclass(frozen=True)
class Credit:
    """Points earned by one action: ``points`` (> 0) for ``user_id`` at ``store``, once per ``once``."""

    user_id: ObjectId
    store: dict[str, Any]
    kind: Kind
    points: int
    source_id: ObjectId
    once: str
    now: datetime


def once_is(key: str) -> dict[str, Any]:
    """The filter finding the entry of a ``once`` key through its unique index.

    The index is partial (only string keys: erasure removes a key), and MongoDB's planner uses a
    partial index only for a query that implies the index's filter — an equality alone does not
    imply ``$type: "string"``. Without the ``$type`` every earning scanned the whole ledger inside
    its transaction (a check-in at a partner store: 11 ms of mongod's CPU with ~5,000 entries)."""
    return {"once": {"$eq": key, "$type": "string"}}


async def credit(services: Services, txn: Txn, *, user_id: ObjectId, store: dict[str, Any], kind: Kind,
                 points: int, source_id: ObjectId, once: str, now: datetime) -> dict[str, Any] | None:
    """Earns ``points`` (> 0) once per ``once`` key; None (nothing written) if that key already earned."""
    [entry] = await credit_many(services, txn, [Credit(user_id, store, kind, points, source_id, once, now)])
    return entry


async def credit_many(services: Services, txn: Txn, credits: Sequence[Credit]) -> list[dict[str, Any] | None]:
    """Each credit's entry, or None where its ``once`` key already earned: three round trips
    whatever their number (the group commit's check-ins earn together). At most one credit per user.

    Each entry's ``balance_after`` is the balance this transaction read plus its points. That is
    exact: the transaction then writes the same balance, so a change committed by anyone since its
    snapshot (or one in flight) aborts it with a write conflict, and it runs again on the new
    balance — as a ``findAndModify`` returning the balance after would have had it."""
    if len({c.user_id for c in credits}) != len(credits):
        raise ValueError("credit_many takes at most one credit per user")
    if not credits:
        return []
    db, session = services.db, txn.session
    balances = {doc["_id"]: int(doc.get("balance", 0)) async for doc in db.points_balances.find(
        {"_id": {"$in": [c.user_id for c in credits]}}, {"balance": 1}, session=session)}
    entries = [{**_entry(c.user_id, c.store, c.kind, c.points, c.source_id, c.now),
                "balance_after": balances.get(c.user_id, 0) + c.points} for c in credits]
    placed = await db.points_ledger.bulk_write(
        [UpdateOne(once_is(c.once), {"$setOnInsert": entry}, upsert=True)
         for c, entry in zip(credits, entries, strict=True)], ordered=True, session=session)
    earned = sorted(placed.upserted_ids or {})  # positions in the request list: those of credits
    if earned:
        await db.points_balances.bulk_write([UpdateOne(
            {"_id": credits[i].user_id},
            {"$inc": {"balance": credits[i].points, "earned": credits[i].points, "spent": 0},
             "$set": {"updated_at": credits[i].now}}, upsert=True) for i in earned], ordered=True, session=session)
    for i in earned:
        txn.after_commit(tasknames.LOYALTY_ANNOUNCE, str(entries[i]["_id"]))
    won = set(earned)
    return [{**entry, "once": c.once} if i in won else None
            for i, (c, entry) in enumerate(zip(credits, entries, strict=True))]


async def debit(services: Services, txn: Txn, *, user_id: ObjectId, store: dict[str, Any], points: int,
                source_id: ObjectId, once: str, now: datetime) -> dict[str, Any]:
    """Spends ``points`` (> 0), or 409 ``insufficient_points`` (raised: the caller's transaction
    aborts, nothing is taken)."""
    db, session = services.db, txn.session
    balance = await db.points_balances.find_one_and_update(
        {"_id": user_id, "balance": {"$gte": points}},
        {"$inc": {"balance": -points, "spent": points}, "$set": {"updated_at": now}},
        return_document=ReturnDocument.AFTER, session=session)
    if balance is None:
        raise Conflict("the balance is lower than the points to charge", code="insufficient_points")
    entry = {**_entry(user_id, store, "spend", -points, source_id, now), "balance_after": balance["balance"],
             "once": once}
    await db.points_ledger.insert_one(entry, session=session)
    txn.after_commit(tasknames.LOYALTY_ANNOUNCE, str(entry["_id"]))
    return entry


async def balance_of(services: Services, user_id: ObjectId) -> dict[str, int]:
    doc = await services.db.points_balances.find_one({"_id": user_id}) or {}
    return {"balance": int(doc.get("balance", 0)), "earned": int(doc.get("earned", 0)),
            "spent": int(doc.get("spent", 0))}


def _summary(store: dict[str, Any] | None, store_id: ObjectId) -> dict[str, Any]:
    if store is None:  # stores are not deleted; a ledger entry outlives anything, though
        return {"id": str(store_id), "name": "", "lat": 0.0, "lng": 0.0}
    return store_summary(store)


def entry_public(entry: dict[str, Any], store: dict[str, Any] | None) -> dict[str, Any]:
    """The contract's history item."""
    return {"id": str(entry["_id"]), "store": _summary(store, entry["store_id"]), "kind": entry["kind"],
            "points": int(entry["points"]), "balance_after": int(entry["balance_after"] or 0),
            "created_at": rfc3339(entry["created_at"])}


async def history(services: Services, user_id: ObjectId, limit: int, before: Position | None
                  ) -> tuple[list[dict[str, Any]], Position | None]:
    """The user's entries, newest first, paged by ``(created_ms, id)``; the stores in one query."""
    docs, nxt = await keyset_page(services.db.points_ledger, {"user_id": user_id}, score_field="created_ms",
                                  descending=True, position=before, limit=limit)
    ids = list({d["store_id"] for d in docs})
    stores = {s["_id"]: s async for s in services.db.stores.find({"_id": {"$in": ids}},
                                                                 {"name": 1, "location": 1})} if ids else {}
    return [entry_public(d, stores.get(d["store_id"])) for d in docs], nxt
