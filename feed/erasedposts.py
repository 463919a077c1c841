"""What an erased account's post keeps until its retraction has run, and the writes that take it.

A post's text gives it ``search_keys`` (its search listings), ``topics``/``topic_keys`` (topic
timelines and counts), ``mentions``/``mention_ids`` (whom it named) and ``flags`` (the filter's
matched words); where it was written gives it ``location`` (the store's position, or the fix
snapped to the public grid). An erasure blanks the text of its user's posts at once
(``profiles.erasure``), but these fields must outlive the text until the post's retraction has run:
the retraction reads them to take the post out of the listings, the timelines, the counts and the
local feed's cells. So they go in the write that marks the retraction done (``feed.fanout``), or in
the erasure's own write for a post whose fan-out was already done. Both writes decide on the
document as it is then (an update pipeline), so a retraction that read the post just before the
erasure marked it still takes them.

A post kept as evidence (``evidence``: under review, hidden or reported when deleted) keeps them
with its text: moderators read them.
"""

from __future__ import annotations

from typing import Any

KEPT_FOR_RETRACTION: dict[str, Any] = {
    "search_keys": [], "topics": [], "topic_keys": [], "mentions": [], "mention_ids": [], "flags": [],
    "location": None,
}
"""Each field, and what it holds once erased (what an unlocated post without words holds)."""

ERASED = {"$and": [{"$eq": ["$account_deleted", True]}, {"$eq": ["$status", "deleted"]},
                   {"$ne": ["$evidence", True]}]}
"""An erased account's post that is not evidence (an aggregation expression on the document)."""


def emptied_when(condition: dict[str, Any]) -> dict[str, Any]:
    """An update pipeline's ``$set`` fields: each of :data:`KEPT_FOR_RETRACTION` emptied where
    ``condition`` holds on the document, kept as it is elsewhere (a field a post never had stays
    absent)."""
    return {field: {"$cond": [condition, {"$literal": empty}, f"${field}"]}
            for field, empty in KEPT_FOR_RETRACTION.items()}
