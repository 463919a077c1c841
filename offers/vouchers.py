"""Vouchers: claimed online (atomically, within stock, one per user), redeemed once at the counter.

A claim is one MongoDB transaction: the offer's ``claimed`` counter moves only if it is still
below ``stock`` and the offer is live, and the voucher is inserted under the unique
``(offer_id, user_id)`` index — so concurrent claims never exceed stock, a user never holds two,
and a failure leaves neither write behind. Redemption is one conditional update
(``claimed`` → ``redeemed`` while not expired), so it happens once whatever the concurrency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from offers import codes
from offers.offers import is_live, live_query, sold_out, stored_status
from offers.stores import owned_store
from solomo.core import ratelimit
from solomo.core.errors import Conflict, Forbidden, Gone, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.timeutil import aware, ms_of
from solomo.core.txn import Txn, run_transaction

CODE_ATTEMPTS = 4
FAILED_REDEMPTION = "failed_redemption"  # the rate limit action: failed redemptions per store


class _NotClaimable(Exception):
    """The offer changed under us (expired or sold out) inside the transaction."""


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
    """Returns ``(voucher, created)``; 404 unknown offer, 410 ``offer_expired``, 409 ``sold_out``."""
    db = services.db
    existing = await db.vouchers.find_one({"offer_id": offer_id, "user_id": user_id})
    if existing is not None:
        return existing, False
    offer = await db.offers.find_one({"_id": offer_id})
    if offer is None:
        raise NotFound("offer not found")
    _check_claimable(offer)
    for _ in range(CODE_ATTEMPTS):
        now = datetime.now(UTC)
        doc = {
            "_id": ObjectId(), "offer_id": offer_id, "store_id": offer["store_id"], "user_id": user_id,
            "code": codes.new_code(), "status": "claimed", "expires_at": offer["expires_at"],
            "redeemed_at": None, "created_at": now, "created_ms": ms_of(now),
        }

        async def body(txn: Txn, doc: dict[str, Any] = doc, now: datetime = now) -> None:
            taken = await db.offers.update_one(
                {"_id": offer_id, **live_query(now)},
                {"$inc": {"claimed": 1}}, session=txn.session)
            if taken.modified_count != 1:
                raise _NotClaimable()
            await db.vouchers.insert_one(doc, session=txn.session)

        try:
            await run_transaction(services, body)
            return doc, True
        except _NotClaimable:
            fresh = await db.offers.find_one({"_id": offer_id})
            _check_claimable(fresh or offer)
            raise Conflict("this offer is sold out", code="sold_out") from None
        except DuplicateKeyError as exc:
            if "code" in ((exc.details or {}).get("keyPattern") or {}):
                continue  # a 50-bit collision: draw another code
            again = await db.vouchers.find_one({"offer_id": offer_id, "user_id": user_id})
            if again is None:
                raise
            return again, False
    raise Conflict("could not allocate a voucher code; retry", code="conflict")


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
    now = datetime.now(UTC)
    done = await services.db.vouchers.find_one_and_update(
        {"_id": voucher["_id"], "status": "claimed", "expires_at": {"$gt": now}},
        {"$set": {"status": "redeemed", "redeemed_at": now, "redeemed_by": owner_id}},
        return_document=ReturnDocument.AFTER)
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
