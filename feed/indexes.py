"""MongoDB indexes this package's queries need (created at start-up by solomo.db).

* ``posts``: ``(author_id, created_ms, _id)`` user feeds, home-feed rebuilds and pulls;
  ``(store_id, …)`` store feeds and store-owner posts; ``(topic_keys, …)`` topic listings;
  ``(location 2dsphere, created_ms)`` local fallbacks and cell rebuilds; ``(topic_keys, location
  2dsphere, created_ms)`` a topic's posts near a point (:mod:`feed.topicnear`); a partial index on
  pending fan-outs for the sweeper (the outbox); partial ``(repost_of, …)`` and ``(repost_via, …)``
  for the reposts of a post (only reposts carry those fields).
* ``follows``: unique ``(follower_id, target_type, target_id)``; ``(target_type, target_id, _id,
  follower_id)`` covers the fan-out's batched follower reads; newest-first follower/following lists.
* ``follower_pages``: unique ``(target_type, target_id, n)``, an audience's pages in order
  (:mod:`feed.followerpages`).
* ``likes``: unique ``(post_id, user_id)`` (also serves ``liked_by_me`` for a page).
* ``comments``: ``(post_id, created_ms, _id)`` oldest first; ``reply_to`` for cascading deletes.
* ``blocks`` / ``mutes``: unique per pair, the reverse direction of blocks, newest-first lists.
* ``users`` / ``stores``: partial ``feed_pull`` (the authors merged at read time).
* ``comments``, ``follows``, ``likes``, ``posts``: partial ``notify_pending`` on the notifications
  an action still owes, oldest first, for the sweep (:mod:`notifications.outbox`, the outbox).
"""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

TOPIC_NEAR_INDEX = "by_topic_location_newest"

_NEWEST = [("created_ms", DESCENDING), ("_id", DESCENDING)]
# notifications.outbox.FIELD (not imported: this module stays a leaf for solomo.db)
_NOTIFY_PENDING = IndexModel([("notify.since", ASCENDING)], name="notify_pending",
                             partialFilterExpression={"notify": {"$exists": True}})

INDEXES: dict[str, list[IndexModel]] = {
    "posts": [
        IndexModel([("author_id", ASCENDING), *_NEWEST], name="by_author_newest"),
        IndexModel([("store_id", ASCENDING), *_NEWEST], name="by_store_newest"),
        IndexModel([("topic_keys", ASCENDING), *_NEWEST], name="by_topic_newest"),
        IndexModel([("location", GEOSPHERE), ("created_ms", DESCENDING)], name="location_2dsphere_newest"),
        IndexModel([("topic_keys", ASCENDING), ("location", GEOSPHERE), ("created_ms", DESCENDING)],
                   name=TOPIC_NEAR_INDEX),
        IndexModel([("fanout", ASCENDING), ("created_at", ASCENDING)], name="fanout_pending",
                   partialFilterExpression={"fanout": "pending"}),
        IndexModel([("repost_of", ASCENDING), *_NEWEST], name="reposts_newest",
                   partialFilterExpression={"repost_of": {"$exists": True}}),
        IndexModel([("repost_via", ASCENDING), *_NEWEST], name="reposts_via_newest",
                   partialFilterExpression={"repost_via": {"$exists": True}}),
        _NOTIFY_PENDING,
    ],
    "follows": [
        IndexModel([("follower_id", ASCENDING), ("target_type", ASCENDING), ("target_id", ASCENDING)],
                   unique=True, name="follow_unique"),
        IndexModel([("target_type", ASCENDING), ("target_id", ASCENDING), ("_id", ASCENDING),
                    ("follower_id", ASCENDING)], name="fanout_batches"),
        IndexModel([("target_type", ASCENDING), ("target_id", ASCENDING), *_NEWEST], name="followers_newest"),
        IndexModel([("follower_id", ASCENDING), ("target_type", ASCENDING), *_NEWEST], name="following_newest"),
        _NOTIFY_PENDING,
    ],
    "follower_pages": [
        IndexModel([("target_type", ASCENDING), ("target_id", ASCENDING), ("n", ASCENDING)], unique=True,
                   name="audience_pages"),
    ],
    "likes": [
        IndexModel([("post_id", ASCENDING), ("user_id", ASCENDING)], unique=True, name="like_unique"),
        IndexModel([("user_id", ASCENDING), ("post_id", ASCENDING)], name="by_user"),
        _NOTIFY_PENDING,
    ],
    "comments": [
        IndexModel([("post_id", ASCENDING), ("created_ms", ASCENDING), ("_id", ASCENDING)], name="by_post_oldest"),
        IndexModel([("reply_to", ASCENDING)], name="by_parent"),
        _NOTIFY_PENDING,
    ],
    "blocks": [
        IndexModel([("blocker_id", ASCENDING), ("blocked_id", ASCENDING)], unique=True, name="block_unique"),
        IndexModel([("blocked_id", ASCENDING), ("blocker_id", ASCENDING)], name="by_blocked"),
        IndexModel([("blocker_id", ASCENDING), *_NEWEST], name="blocks_newest"),
    ],
    "mutes": [
        IndexModel([("muter_id", ASCENDING), ("muted_id", ASCENDING)], unique=True, name="mute_unique"),
        IndexModel([("muter_id", ASCENDING), *_NEWEST], name="mutes_newest"),
    ],
    "users": [
        IndexModel([("feed_pull", ASCENDING)], name="feed_pull", partialFilterExpression={"feed_pull": True}),
    ],
    "stores": [
        IndexModel([("feed_pull", ASCENDING)], name="feed_pull", partialFilterExpression={"feed_pull": True}),
    ],
}
