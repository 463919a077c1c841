"""MongoDB indexes of search (created at start-up by solomo.db).

* ``stores``: ``(search_keys, _id)`` for a query without a point (best match, then id);
  ``(search_keys, location 2dsphere)`` so a nearest-first read (``$nearSphere``) walks only the stores holding the key.
* ``users``: ``(search_keys, _id)``.
* ``posts``: ``(search_keys, created_ms, _id)`` newest first within one key.
* ``topic_counts``: unique ``key``; ``(prefixes, post_count, _id)`` most used first within a prefix.
"""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "stores": [
        IndexModel([("search_keys", ASCENDING), ("_id", ASCENDING)], name="search_keys_id"),
        IndexModel([("search_keys", ASCENDING), ("location", GEOSPHERE)], name="search_keys_location"),
    ],
    "users": [
        IndexModel([("search_keys", ASCENDING), ("_id", ASCENDING)], name="search_keys_id"),
    ],
    "posts": [
        IndexModel([("search_keys", ASCENDING), ("created_ms", DESCENDING), ("_id", DESCENDING)],
                   name="search_keys_newest"),
    ],
    "topic_counts": [
        IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
        IndexModel([("prefixes", ASCENDING), ("post_count", DESCENDING), ("_id", DESCENDING)],
                   name="prefix_most_used"),
    ],
}
