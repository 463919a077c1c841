"""MongoDB indexes of the media package (created at start-up by solomo.db).

* ``media``: unique ``key`` (the unguessable part of the URLs: every GET looks it up); a partial
  ``expires_at`` index over uploads not (yet) used, for the expiry sweep; ``(owner_id, created_at)``.
* GridFS bucket ``mediafs`` (``mediafs.files`` / ``mediafs.chunks``): PyMongo creates its own
  indexes on first write.
"""

from pymongo import ASCENDING, DESCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "media": [
        IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
        IndexModel([("expires_at", ASCENDING)], name="unattached_expiry",
                   partialFilterExpression={"expires_at": {"$exists": True}}),
        IndexModel([("owner_id", ASCENDING), ("created_at", DESCENDING)], name="by_owner_newest"),
    ],
}
