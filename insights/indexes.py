"""MongoDB indexes of the store insights (created at start-up by solomo.db).

* ``posts``: ``(store_id, created_ms, topic_keys)``, partial on posts that have a topic, for the
  window's top topics: a store's check-in posts mostly have none and stay out of the index.
* ``points_ledger`` is indexed by its owner, the loyalty package.

The day rollups' indexes live with them in :mod:`checkins.indexes`.
"""

from pymongo import ASCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "posts": [
        IndexModel([("store_id", ASCENDING), ("created_ms", ASCENDING), ("topic_keys", ASCENDING)],
                   name="insights_store_topics", partialFilterExpression={"topic_keys.0": {"$exists": True}}),
    ],
}
