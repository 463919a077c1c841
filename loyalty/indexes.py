"""MongoDB indexes of the points programme (created at start-up by solomo.db).

* ``points_ledger``: ``once`` is unique where present — the key that makes an earning happen once
  (``checkin:<store>:<local day>:<user>``, ``redemption:<voucher>``, ``spend:<code>``; erasure
  removes it with the user id); ``(user_id, created_ms, _id)`` pages a user's history, newest
  first; ``(store_id, created_at)`` reads a store's settlement range.
* ``points_balances``: one document per user, ``_id`` = the user id (no index needed).
* ``points_spend_codes``: ``code_hash`` unique (the counter's lookup; only the hash is stored);
  a TTL on ``purge_at`` drops codes a day after they expired or were used.
"""

from pymongo import ASCENDING, DESCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "points_ledger": [
        IndexModel([("once", ASCENDING)], unique=True, name="once_unique",
                   partialFilterExpression={"once": {"$type": "string"}}),
        IndexModel([("user_id", ASCENDING), ("created_ms", DESCENDING), ("_id", DESCENDING)], name="by_user_newest"),
        IndexModel([("store_id", ASCENDING), ("created_at", ASCENDING)], name="by_store_time"),
    ],
    "points_spend_codes": [
        IndexModel([("code_hash", ASCENDING)], unique=True, name="code_hash_unique"),
        IndexModel([("user_id", ASCENDING)], name="by_user"),
        IndexModel([("purge_at", ASCENDING)], expireAfterSeconds=0, name="ttl"),
    ],
}
