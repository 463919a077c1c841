"""MongoDB indexes this package's queries need (created at start-up by solomo.db).

* ``stores``: one 2dsphere index on ``location`` (with ``category`` so the nearby filter is served
  by the same index) for ``$geoNear``; ``owner_id`` for a merchant's own stores; the few stores
  whose rollups wait for a rebuild in their new time zone (:data:`checkins.visitdays.PENDING`).
* ``checkins``: ``(user_id, created_at, _id)`` newest first for a user's list and their previous
  check-in (travel rule); ``(user_id, store_id, created_at)`` for the one-hour rule;
  ``(store_id, created_at, user_id, day)`` covers the mayor aggregation (60-day window).
* ``store_visitors``: one document per (store, user) ever seen — the unique-visitor counter (and
  each visitor's newest two visit days, :mod:`checkins.visitdays`).
* ``store_days``: unique ``(store_id, day)``, one rollup per store-local day; ``store_topic_days``:
  unique ``(store_id, day, topic)``, and the same with ``n`` so the window's top topics are
  summed from the index alone.
* ``checkin_guards``: one document per user, keyed by ``_id``; no extra index.
"""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "stores": [
        IndexModel([("location", GEOSPHERE), ("category", ASCENDING)], name="location_2dsphere_category"),
        IndexModel([("owner_id", ASCENDING), ("_id", DESCENDING)], name="by_owner"),
        # the few stores whose rollups are not in their time zone yet (maintenance.rollups_sweep)
        IndexModel([("rollups_pending_since", ASCENDING)], name="rollups_pending",
                   partialFilterExpression={"rollups_pending_since": {"$exists": True}}),
    ],
    "checkins": [
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="by_user_newest"),
        IndexModel([("user_id", ASCENDING), ("store_id", ASCENDING), ("created_at", DESCENDING)],
                   name="by_user_store"),
        IndexModel([("store_id", ASCENDING), ("created_at", ASCENDING), ("user_id", ASCENDING), ("day", ASCENDING)],
                   name="by_store_window"),
    ],
    "store_visitors": [
        IndexModel([("store_id", ASCENDING), ("user_id", ASCENDING)], unique=True, name="store_user_unique"),
    ],
    "store_topic_days": [
        IndexModel([("store_id", ASCENDING), ("day", ASCENDING), ("topic", ASCENDING)], unique=True,
                   name="store_day_topic_unique"),
        IndexModel([("store_id", ASCENDING), ("day", ASCENDING), ("topic", ASCENDING), ("n", ASCENDING)],
                   name="store_day_topic_n"),
    ],
    "store_days": [
        IndexModel([("store_id", ASCENDING), ("day", ASCENDING)], unique=True, name="store_day_unique"),
    ],
}
