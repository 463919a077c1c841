"""The ``points`` event: a user's open pages see the balance move as soon as the entry commits.

Sent as the task ``loyalty.announce`` (:func:`solomo.core.txn.Txn.after_commit`) by every ledger
entry, so the event never announces a change that did not commit. The task reads the entry and
the balance as they are when it runs (a later entry may have moved the balance on: the event
carries the balance of that moment, never an older one than the page may already show), and
publishes best effort. An entry anonymised meanwhile (account deleted) announces nothing.
"""

from __future__ import annotations

from bson import ObjectId

from loyalty.ledger import balance_of, entry_public
from solomo.core.eventtypes import PointsEntry, PointsEvent, publish_event
from solomo.core.ids import maybe_id
from solomo.core.services import Services


async def announce(services: Services, entry_id: str) -> None:
    oid = maybe_id(entry_id)
    entry = await services.db.points_ledger.find_one({"_id": oid}) if oid is not None else None
    if entry is None or not isinstance(entry.get("user_id"), ObjectId):
        return
    store = await services.db.stores.find_one({"_id": entry["store_id"]}, {"name": 1, "location": 1})
    event = PointsEvent(**await balance_of(services, entry["user_id"]), entry=PointsEntry(**entry_public(entry, store)))
    await publish_event(services, [entry["user_id"]], event)
