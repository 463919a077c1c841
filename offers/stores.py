"""The store rule offers need: only the store's owner manages its offers and redemptions."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from checkins.stores import get_store
from solomo.core.errors import Forbidden
from solomo.core.services import Services


async def owned_store(services: Services, store_id: ObjectId | str, owner_id: ObjectId) -> dict[str, Any]:
    """The store if ``owner_id`` owns it; 404 when it does not exist, 403 when it is someone else's."""
    store = await get_store(services, store_id)
    if store.get("owner_id") != owner_id:
        raise Forbidden("only the store's owner may do this")
    return store
