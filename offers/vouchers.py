"""Vouchers: claimed online (atomically, within stock, one per user), redeemed once at the counter.

A claim first asks the offer's gate in Redis (:mod:`offers.gate`, one script call): a user who
already holds a voucher is looked up in MongoDB, a sold-out, ended or expired offer is answered at
once — a flash sale's thousands of losers never reach MongoDB — and a winner gets a reserved
slot. The winner's voucher is then written by :mod:`offers.voucherwrites`: one transaction moves
the offer's ``claimed`` counter, only if it stays within ``stock`` and the offer is live, and
inserts the voucher under the unique ``(offer_id, user_id)`` index — so whatever the gate says,
concurrent claims never exceed stock, a user never holds two, and a failure leaves neither write
behind (its reservation is given back). Redemption is one conditional update (``claimed`` →
``redeemed`` while not expired), so it happens once whatever the concurrency; the store's loyalty
points for it are earned in the same transaction (:mod:`loyalty.earning`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import anyio
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from redis.exceptions import RedisError

from loyalty.earning import earn_for_redemption
from offers import codes, gate, voucherwrites
from offers.offers import is_live, sold_out, stored_status
from offers.stores import owned_store
from solomo.core import ratelimit
from solomo.core.errors import Conflict, Forbidden, Gone, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.timeutil import aware, ms_of
from solomo.core.txn import Txn, run_transaction_again_on_duplicate

log = logging.getLogger("solomo.offers")

CODE_ATTEMPTS = 4
FAILED_REDEMPTION = "failed_redemption"  # the rate limit action: failed redemptions per store


def voucher_status(doc: dict[str, Any], now: datetime | None = None) -> str:
    if doc["status"] == "claimed" and aware(doc["expires_at"]) <= (now or datetime.now(UTC)):
        return "expired"
    return str(doc["status"])


def voucher_public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "offer_id": str(doc["offer_id"]),
        "store_id": str(doc["store_id"]),
        "user_id": str(doc["user_id"]),
        "code": codes.display(doc["code"]),
        "qr": codes.qr_payload(doc["code"]),
        "status": voucher_status(doc),
        "expires_at": rfc3339(doc["expires_at"]),
        "redeemed_at": rfc3339(doc["redeemed_at"]) if doc.get("redeemed_at") else None,
        "created_at": rfc3339(doc["created_at"]),
    }


async def claim(services: Services, user_id: ObjectId, offer_id: ObjectId) -> tuple[dict[str, Any], bool]:
    """Returns ``(voucher, created)``; 404 unknown offer, 410 ``offer_expired``/``offer_ended``,
    409 ``sold_out``.

    The gate (:mod:`offers.gate`) answers the losers from Redis; a winner holds a reserved slot
    while its voucher is written, confirms it after the commit and gives it back if the write
    failed. Whatever the gate says, MongoDB's guards decide who gets a voucher."""
    verdict = await _gate_verdict(services, offer_id, user_id)
    if verdict == gate.SOLD_OUT:
        raise Conflict("this offer is sold out", code="sold_out")
    if verdict == gate.ENDED:
        raise Gone("this offer has ended", code="offer_ended")
    if verdict == gate.EXPIRED:
        raise Gone("this offer has expired", code="offer_expired")
    reserved = verdict == gate.RESERVED
    try:
        # a user the gate knows holds nothing (reserved, or unlimited stock) skips the lookup: the
        # unique index still answers a voucher the gate did not know about
        voucher, created = await _claim_in_mongo(services, user_id, offer_id,
                                                 look_first=verdict not in (gate.RESERVED, gate.GO),
                                                 known=reserved)
    except BaseException:
        if reserved:
            await _quietly(gate.release(services, offer_id, user_id))
        raise
    if created:
        await _quietly(gate.confirm(services, offer_id, user_id))
    elif reserved:
        await _quietly(gate.release(services, offer_id, user_id))
    return voucher, created


async def _gate_verdict(services: Services, offer_id: ObjectId, user_id: ObjectId) -> str:
    """The gate's verdict, building the gate from MongoDB on first use (or after a Redis loss);
    ``miss`` (MongoDB decides alone) for an offer held for review or when Redis fails."""
    try:
        verdict = await gate.take(services, offer_id, user_id)
        if verdict == gate.MISS:
            offer = await services.db.offers.find_one({"_id": offer_id})
            if offer is None:
                raise NotFound("offer not found")
            await gate.build(services, offer)  # or another claim built it meanwhile
            verdict = await gate.take(services, offer_id, user_id)
        return verdict
    except RedisError as exc:
        log.warning("claim gate unavailable for offer %s (%s): MongoDB decides alone", offer_id, exc)
        return gate.MISS


async def _quietly(step: Awaitable[None]) -> None:
    """A gate update after the MongoDB answer: shielded from cancellation, and best effort (the
    sweep repairs a lost one: :func:`offers.gate.reconcile`)."""
    with anyio.CancelScope(shield=True):
        try:
            await step
        except RedisError as exc:
            log.warning("claim gate not updated (%s); the offers sweep repairs it", exc)


async def _claim_in_mongo(services: Services, user_id: ObjectId, offer_id: ObjectId, *, look_first: bool,
                          known: bool) -> tuple[dict[str, Any], bool]:
    """The durable claim: ``(voucher, created)``. ``known``: the gate vouches that the offer is
    live, so only its fixed fields are needed (:func:`_offer_fields`)."""
    db = services.db
    if look_first:
        existing = await db.vouchers.find_one({"offer_id": offer_id, "user_id": user_id})
        if existing is not None:
            return existing, False
    offer = await _offer_fields(services, offer_id) if known else await db.offers.find_one({"_id": offer_id})
    if offer is None:
        raise NotFound("offer not found")
    if not known:
        await _refuse_unclaimable(services, offer)
    for _ in range(CODE_ATTEMPTS):
        now = datetime.now(UTC)
        doc = {
            "_id": ObjectId(), "offer_id": offer_id, "store_id": offer["store_id"], "user_id": user_id,
            "code": codes.new_code(), "status": "claimed", "expires_at": offer["expires_at"],
            "redeemed_at": None, "created_at": now, "created_ms": ms_of(now),
        }
        try:
            await voucherwrites.writer(services).write(offer_id, doc)
            return doc, True
        except voucherwrites.NotClaimable:
            fresh = await db.offers.find_one({"_id": offer_id})
            await _refuse_unclaimable(services, fresh or offer)
            raise Conflict("this offer is sold out", code="sold_out") from None
        except DuplicateKeyError as exc:
            if "code" in ((exc.details or {}).get("keyPattern") or {}):
                continue  # a 50-bit collision: draw another code
            again = await db.vouchers.find_one({"offer_id": offer_id, "user_id": user_id})
            if again is None:
                raise
            return again, False
    raise Conflict("could not allocate a voucher code; retry", code="conflict")


OFFER_FIELDS_CACHED = 4096


async def _offer_fields(services: Services, offer_id: ObjectId) -> dict[str, Any] | None:
    """An offer's ``store_id`` and ``expires_at`` (fixed for its life), cached per process: a
    winner the gate let through needs nothing else from the offer."""
    cache: dict[ObjectId, dict[str, Any]] = services.extras.setdefault("offers.claim_fields", {})
    found = cache.get(offer_id)
    if found is None:
        found = await services.db.offers.find_one({"_id": offer_id}, {"store_id": 1, "expires_at": 1})
        if found is None:
            return None
        if len(cache) >= OFFER_FIELDS_CACHED:
            cache.clear()
        cache[offer_id] = found
    return found


async def _refuse_unclaimable(services: Services, offer: dict[str, Any]) -> None:
    """Raises the answer for an offer MongoDB says nobody may claim now, and closes its gate where
    that is final (ended, or sold out: the gate is rebuilt, holders and all, from MongoDB)."""
    try:
        _check_claimable(offer)
    except Gone as exc:
        if exc.code == "offer_ended":
            await _quietly(gate.close(services, offer["_id"], "offer_ended"))
        raise
    except Conflict:
        await _quietly(_rebuild(services, offer))
        raise


async def _rebuild(services: Services, offer: dict[str, Any]) -> None:
    await gate.build(services, offer, force=True)


def _check_claimable(offer: dict[str, Any]) -> None:
    if stored_status(offer) == "pending_review":
        raise NotFound("offer not found")  # not published yet
    if stored_status(offer) in ("removed", "ended"):
        raise Gone("this offer has ended", code="offer_ended")
    if not is_live(offer):
        raise Gone("this offer has expired", code="offer_expired")
    if sold_out(offer):
        raise Conflict("this offer is sold out", code="sold_out")


async def redeem(services: Services, owner_id: ObjectId, store_id: ObjectId | str, raw_code: str) -> dict[str, Any]:
    """The store's owner redeems a code at the counter.

    404 ``unknown_code``, 403 another store's code, 409 ``already_redeemed``, 410 ``voucher_expired``,
    429 once the store has too many failed attempts this minute.

    Guessing is limited per store (the ``failed_redemption`` rate limit). Only failures count, so a
    busy store redeeming real vouchers is never slowed down; once a store has used up its failures,
    every redemption there answers 429 until the window moves on — a guesser learns nothing more.
    """
    store = await owned_store(services, store_id, owner_id)
    sid = str(store["_id"])
    await ratelimit.ensure_room(services, FAILED_REDEMPTION, sid)
    code = codes.normalize(raw_code)
    voucher = await services.db.vouchers.find_one({"code": code}) if code else None
    if voucher is None:
        await ratelimit.count(services, FAILED_REDEMPTION, sid)
        raise NotFound("no voucher has this code", code="unknown_code")
    if voucher["store_id"] != store["_id"]:
        await ratelimit.count(services, FAILED_REDEMPTION, sid)
        raise Forbidden("this voucher belongs to another store", code="forbidden")

    async def transaction(txn: Txn) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        done = await services.db.vouchers.find_one_and_update(
            {"_id": voucher["_id"], "status": "claimed", "expires_at": {"$gt": now}},
            {"$set": {"status": "redeemed", "redeemed_at": now, "redeemed_by": owner_id}},
            return_document=ReturnDocument.AFTER, session=txn.session)
        if done is not None:
            await earn_for_redemption(services, txn, done, store, now)
        return done

    done = await run_transaction_again_on_duplicate(services, transaction)
    if done is not None:
        return done
    current = await services.db.vouchers.find_one({"_id": voucher["_id"]}) or voucher
    if current["status"] == "redeemed":
        raise Conflict("this voucher was already redeemed", code="already_redeemed")
    raise Gone("this voucher has expired", code="voucher_expired")


async def my_vouchers(
    services: Services, user_id: ObjectId, limit: int, before: Position | None
) -> tuple[list[dict[str, Any]], Position | None]:
    """The user's vouchers, newest first, paged by ``(created_ms, id)``."""
    docs, nxt = await keyset_page(services.db.vouchers, {"user_id": user_id}, score_field="created_ms",
                                  descending=True, position=before, limit=limit)
    return [voucher_public(d) for d in docs], nxt
