"""User search (contract: Search): username prefix first, then display-name substring; deleted
accounts never. A user's ``search_keys`` (:func:`solomo.core.searchkeys.user_keys`) are written with
the name they come from, in the same write: at registration and by ``PATCH /v1/me``
(:mod:`profiles.profile`), so no failure can leave a name with another name's keys."""

from __future__ import annotations

import re
from typing import Any

from search import tiers
from search.query import parse_q
from solomo.core.pagination import Position
from solomo.core.searchkeys import fold, substring_keys
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

