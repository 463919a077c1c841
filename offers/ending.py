"""A store's own offers: the list per store, and the owner ending an offer early.

Ending (``POST /v1/offers/{id}/end``) stores ``status: "ended"`` — one of :data:`offers.offers.HELD`,
so from that write on MongoDB refuses every new voucher (the claim's ``claimed`` move filters on the
status), targeting and arrival skip it (both read the status), and the moderation queue never
shows it. Then, best effort, the two Redis structures that answer without MongoDB follow:

* the live-offer index (:mod:`offers.live`) drops it, so a follower's location message no longer
  even considers it;
* the claim gate (:mod:`offers.gate`) is closed with ``offer_ended``, so a flash crowd's claims are
  answered 410 by one script. A gate that missed the close (Redis down) is rebuilt from MongoDB,
  which says ``ended``, or answers from MongoDB's refusal: either way 410.

Vouchers already claimed are untouched: redemption reads the voucher, not the offer, so they stay
redeemable until their own expiry. Ending is idempotent: ending an ended offer answers it again.
An offer a moderator removed, or one that already expired, cannot be ended (409
``invalid_transition``): its status is final already.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from redis.exceptions import RedisError

from checkins.stores import get_store
from offers import gate, live
from offers.offers import hydrate_offers, is_live, live_query, stored_status
from solomo.core.errors import Conflict, Forbidden, NotFound
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services

log = logging.getLogger("offers.ending")

ENDABLE = ("live", "pending_review")
"""Stored statuses an owner may end (a held offer too: the merchant gives up on it)."""


async def end_offer(services: Services, owner_id: ObjectId, offer_id: ObjectId) -> dict[str, Any]:
    """Ends the owner's offer; returns the offer document. 404 unknown, 403 another owner's."""
    offer = await services.db.offers.find_one({"_id": offer_id})
    if offer is None:
        raise NotFound("offer not found")
    if offer.get("owner_id") != owner_id:
        raise Forbidden("only the store's owner may end its offers")
    before = stored_status(offer)
    if before != "ended":
        if before not in ENDABLE or not is_live(offer):
            raise Conflict(f"this offer is already {'expired' if before in ENDABLE else before}",
                           code="invalid_transition")
        now = datetime.now(UTC)
        done = await services.db.offers.find_one_and_update(
            {"_id": offer_id, "status": offer.get("status", "live")},
            {"$set": {"status": "ended", "ended_at": now, "targeting": "done"}},
            return_document=ReturnDocument.AFTER)
        if done is None:  # a moderator's decision or another end raced this one: answer what is now
            done = await services.db.offers.find_one({"_id": offer_id}) or offer
            if stored_status(done) != "ended":
                raise Conflict("the offer changed meanwhile; try again", code="conflict")
        offer = done
    await _close_in_redis(services, offer_id)
    return offer


async def _close_in_redis(services: Services, offer_id: ObjectId) -> None:
    """After the MongoDB write (the truth): the fast paths stop offering it. Repeated on a repeat
    call, so an end whose Redis step failed is completed by asking again."""
    try:
        await live.unregister(services.redis, [str(offer_id)])
    except RedisError as exc:  # arrival re-reads the status in MongoDB before pushing anything
        log.warning("ended offer %s stays in the live index until it expires: %s", offer_id, exc)
    with contextlib.suppress(RedisError):  # claims then read MongoDB, which refuses them (410)
        await gate.close(services, offer_id, gate.ENDED)


async def store_offers(services: Services, viewer_id: ObjectId, store_id: ObjectId | str, limit: int,
                       before: Position | None) -> tuple[list[dict[str, Any]], Position | None]:
    """The store's offers, newest first: every one for its owner, the live ones for everybody else."""
    store = await get_store(services, store_id)
    query: dict[str, Any] = {"store_id": store["_id"]}
    if store.get("owner_id") != viewer_id:
        query.update(live_query(datetime.now(UTC)))
    docs, nxt = await keyset_page(services.db.offers, query, score_field=None, descending=True,
                                  position=before, limit=limit)
    return await hydrate_offers(services, docs), nxt
