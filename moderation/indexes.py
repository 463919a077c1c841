"""MongoDB indexes this package's queries need (created at start-up by solomo.db)."""

from pymongo import ASCENDING, DESCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "reports": [
        IndexModel([("post_id", ASCENDING), ("reporter_id", ASCENDING)], unique=True, name="one_per_user"),
        IndexModel([("post_id", ASCENDING), ("created_at", ASCENDING)], name="by_post"),
    ],
    "audit": [
        IndexModel([("created_ms", DESCENDING), ("_id", DESCENDING)], name="newest"),
        IndexModel([("target_id", ASCENDING), ("created_ms", DESCENDING)], name="by_target"),
    ],
    # The review queue: posts waiting for a decision, oldest first (see moderation.queue).
    "posts": [
        IndexModel([("queued_ms", ASCENDING), ("_id", ASCENDING)], name="mod_queue",
                   partialFilterExpression={"queued_ms": {"$exists": True}}),
        IndexModel([("status", ASCENDING), ("created_ms", ASCENDING), ("_id", ASCENDING)], name="mod_by_status",
                   partialFilterExpression={"status": "pending_review"}),
    ],
    # Comments held for review, oldest first (see moderation.comments).
    "comments": [
        IndexModel([("status", ASCENDING), ("created_ms", ASCENDING), ("_id", ASCENDING)], name="mod_comment_queue",
                   partialFilterExpression={"status": "pending_review"}),
    ],
}
