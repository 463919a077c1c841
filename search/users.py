"""User search (contract: Search): username prefix first, then display-name substring; deleted
accounts never. :func:`reindex_user` is the one call a change of a display name must make
(``PATCH /v1/me``)."""

from __future__ import annotations

import re
from typing import Any

from bson import ObjectId

from search import tiers
from search.query import parse_q
from solomo.core.pagination import Position
from solomo.core.searchkeys import fold, substring_keys, user_keys
from solomo.core.services import Services

_USERNAME = re.compile(r"[A-Za-z0-9_]{1,32}")
_FIELDS = {"search_keys": 0, "password_hash": 0}


async def search_users(services: Services, q: str, *, position: Position | None, limit: int) -> tiers.Result:
    """A page of user documents: username prefix matches, then display names containing ``q``."""
    trimmed = parse_q(q)
    lowered, folded = trimmed.lower(), fold(trimmed)
    if not folded:  # nothing visible (zero-width characters only): nothing to look for
        return [], None
    keys = substring_keys(folded)
    filters: list[dict[str, Any] | None] = [
        {"search_keys": "u:" + lowered} if _USERNAME.fullmatch(lowered) else None,
        {"search_keys": {"$all": keys}} if len(keys) > 1 else {"search_keys": keys[0]},
    ]

    def tier_of(doc: dict[str, Any]) -> int | None:
        if doc["username"].lower().startswith(lowered):
            return 0
        return 1 if folded in fold(doc.get("display_name") or "") else None

    return await tiers.by_id(services.db.users, filters, tier_of, extra={"status": {"$ne": "deleted"}},
                             position=position, limit=limit, projection=_FIELDS)


async def reindex_user(services: Services, user_id: ObjectId) -> None:
    """Recomputes a user's keys from the stored username and display name; call it after every
    committed change of a display name. Guarded like :func:`search.stores.reindex_store`."""
    for _ in range(5):
        doc = await services.db.users.find_one({"_id": user_id}, {"username": 1, "display_name": 1})
        if doc is None:
            return
        display = doc.get("display_name") or doc["username"]
        result = await services.db.users.update_one(
            {"_id": user_id, "display_name": doc.get("display_name")},
            {"$set": {"search_keys": user_keys(doc["username"], display)}})
        if result.matched_count:
            return
