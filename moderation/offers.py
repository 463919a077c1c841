"""Moderator decisions on offers held for review: approve (→ live, then pushed) or remove.

==========  ======================  ========
action      from                    to
==========  ======================  ========
approve     pending_review          live
remove      pending_review, live    removed
==========  ======================  ========

Anything else is 409 ``invalid_transition``. The change and its audit entry (``target_type:
"offer"``) are written in one transaction. An approved offer is marked ``targeting: "pending"``
and its targeting task is sent after the commit (the offers sweep re-sends it if the broker lost
it); targeting registers it in the live index, so followers arriving later get it too. A removed
offer leaves the live index at once: nobody is pushed it or can claim it any more.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from redis.exceptions import RedisError

from moderation import audit
from offers import gate, live
from offers.offers import stored_status
from solomo.accounts import Principal
from solomo.core import tasknames
from solomo.core.errors import Conflict, NotFound
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

TRANSITIONS: dict[str, dict[str, str]] = {
    "approve": {"pending_review": "live"},
    "remove": {"pending_review": "removed", "live": "removed"},
}


async def moderate_offer(services: Services, moderator: Principal, offer_id: ObjectId, action: str,
                         reason: str) -> dict[str, Any]:
    """Applies one decision; returns the updated offer document."""

    async def body(txn: Txn) -> dict[str, Any]:
        offer = await services.db.offers.find_one({"_id": offer_id}, session=txn.session)
        if offer is None:
            raise NotFound("offer not found")
        before = stored_status(offer)
        after = TRANSITIONS.get(action, {}).get(before)
        if after is None:
            raise Conflict(f"cannot {action} an offer that is {before}", code="invalid_transition")
        now = datetime.now(UTC)
        update: dict[str, Any] = {"status": after, "moderation": {"action": action, "by": moderator.id,
                                                                  "reason": reason, "at": now}}
        if after == "live":
            update["targeting"] = "pending"
            txn.after_commit(tasknames.OFFERS_TARGET, str(offer_id))
        doc = await services.db.offers.find_one_and_update(
            {"_id": offer_id, "status": offer.get("status")}, {"$set": update},
            return_document=ReturnDocument.AFTER, session=txn.session)
        if doc is None:  # not expected: a racing writer makes the driver retry the transaction
            raise Conflict("the offer changed meanwhile; try again", code="conflict")
        await audit.record(services, txn.session, moderator_id=moderator.id, action=action, target_type="offer",
                           target_id=offer_id, reason=reason, before={"status": before}, after={"status": after})
        return doc

    doc = await run_transaction(services, body)
    if stored_status(doc) == "removed":
        # best effort after the commit: a stale live-index entry is never pushed or claimed (both
        # read the status in MongoDB) and leaves the index when the offer expires
        with contextlib.suppress(RedisError):
            await live.unregister(services.redis, [str(offer_id)])
        with contextlib.suppress(RedisError):  # claims answer 410 from Redis (MongoDB refuses them anyway)
            await gate.close(services, offer_id, "offer_ended")
    return doc
