"""MongoDB indexes erasure needs (created at start-up by solomo.db): every step of
:mod:`profiles.erasure` finds the user's documents through an index, never a collection scan.

The other packages' indexes already serve posts by author, likes, follows both ways, check-ins,
vouchers by user and blocks by blocker or blocked; these add the rest.
"""

from pymongo import ASCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    # the few deleted accounts whose erasure a failure cut short (maintenance.erasure_sweep)
    "users": [IndexModel([("deleted_at", ASCENDING)], name="erasure_pending",
                         partialFilterExpression={"erasure": "pending"})],
    "comments": [IndexModel([("author_id", ASCENDING)], name="by_author")],
    "reports": [IndexModel([("reporter_id", ASCENDING)], name="by_reporter")],
    "store_visitors": [IndexModel([("user_id", ASCENDING)], name="by_user")],
    "stores": [IndexModel([("mayor_id", ASCENDING)], name="by_mayor",
                          partialFilterExpression={"mayor_id": {"$type": "objectId"}})],
    "mutes": [IndexModel([("muted_id", ASCENDING)], name="by_muted")],
    # only posts that mention someone are in it (partial), so plain posts cost no index entry
    "posts": [IndexModel([("mention_ids", ASCENDING)], name="by_mention",
                         partialFilterExpression={"mention_ids.0": {"$exists": True}})],
}
