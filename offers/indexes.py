"""MongoDB indexes this package's queries need (created at start-up by solomo.db).

* ``offers``: 2dsphere on ``location`` (the store's point) with ``expires_at`` for the nearby
  listing; ``(store_id, _id)`` for a store's offers (stats); ``(targeting, created_at)`` for the
  sweep that re-sends a targeting task lost on its way to the broker; ``(status, created_ms, _id)``
  for the offers waiting in the moderation queue (``pending_review``), oldest first; ``expires_at``
  for the sweep that restores live offers missing from the Redis index.
* ``vouchers``: one per (offer, user) — the "one per user" rule, and the covered read of an offer's
  holders when its claim gate is built (:mod:`offers.gate`); the code is unique (lookup at
  the counter); ``(user_id, created_ms, _id)`` for "my vouchers"; ``(offer_id, status)`` for stats.
"""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "offers": [
        IndexModel([("location", GEOSPHERE), ("expires_at", ASCENDING)], name="location_2dsphere_expiry"),
        IndexModel([("store_id", ASCENDING), ("_id", DESCENDING)], name="by_store"),
        IndexModel([("targeting", ASCENDING), ("created_at", ASCENDING)], name="by_targeting"),
        IndexModel([("status", ASCENDING), ("created_ms", ASCENDING), ("_id", ASCENDING)], name="by_status_age"),
        IndexModel([("expires_at", ASCENDING)], name="by_expiry"),
    ],
    "vouchers": [
        IndexModel([("offer_id", ASCENDING), ("user_id", ASCENDING)], unique=True, name="one_per_user"),
        IndexModel([("code", ASCENDING)], unique=True, name="code_unique"),
        IndexModel([("user_id", ASCENDING), ("created_ms", DESCENDING), ("_id", DESCENDING)], name="by_user_newest"),
        IndexModel([("offer_id", ASCENDING), ("status", ASCENDING)], name="by_offer_status"),
    ],
}
