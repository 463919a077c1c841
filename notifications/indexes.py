"""MongoDB indexes of the inbox (created at start-up by solomo.db).

* ``by_recipient_newest`` ``(recipient_id, updated_ms, _id)``: the inbox page, newest first, and the
  cap's trim (covered: it skips the newest :data:`notifications.recorder.INBOX_CAP` keys).
* ``by_kind_newest``: the page filtered by ``kind``.
* ``unread``: partial on unread entries, ``(recipient_id, kind, actor_count)``: the unread counts
  read only this index.
* ``open_group``: unique partial on entries still open (unread): one open entry per recipient,
  kind and subject, so concurrent first likes of a post make one group.
* ``seen_actor``: ``(recipient_id, kind, subject, actor_ids)``: "was this actor already counted
  for this subject", the dedupe of like/unlike/like and follow/unfollow/follow.
* ``by_actor``: ``actor_ids`` (multikey, at most 200 per entry): an erased account leaves every inbox.
* ``expires``: TTL on ``expires_at`` (the retention).
"""

from pymongo import ASCENDING, DESCENDING, IndexModel

_NEWEST = [("updated_ms", DESCENDING), ("_id", DESCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    "notifications": [
        IndexModel([("recipient_id", ASCENDING), *_NEWEST], name="by_recipient_newest"),
        IndexModel([("recipient_id", ASCENDING), ("kind", ASCENDING), *_NEWEST], name="by_kind_newest"),
        IndexModel([("recipient_id", ASCENDING), ("kind", ASCENDING), ("actor_count", ASCENDING)], name="unread",
                   partialFilterExpression={"read": False}),
        IndexModel([("recipient_id", ASCENDING), ("kind", ASCENDING), ("subject", ASCENDING)], name="open_group",
                   unique=True, partialFilterExpression={"open": True}),
        IndexModel([("recipient_id", ASCENDING), ("kind", ASCENDING), ("subject", ASCENDING),
                    ("actor_ids", ASCENDING)], name="seen_actor"),
        IndexModel([("actor_ids", ASCENDING)], name="by_actor"),
        IndexModel([("expires_at", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
}
