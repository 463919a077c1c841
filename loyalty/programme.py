"""A store's membership of the programme: ``loyalty`` on the store document.

``{"enabled": bool, "checkin_points": 0..1000, "redemption_points": 0..1000}``, kept on the store
itself (not a collection of its own): every earning already has the store document in hand (the
check-in and the redemption load it), so reading the settings costs nothing, and a store that never
joined simply has no ``loyalty`` field (:data:`DEFAULT`: not enabled).
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from offers.stores import owned_store
from solomo.core.errors import Forbidden
from solomo.core.services import Services

POINTS_MAX = 1000
DEFAULT: dict[str, Any] = {"enabled": False, "checkin_points": 0, "redemption_points": 0}


def settings_of(store: dict[str, Any]) -> dict[str, Any]:
    """The store's settings as the contract shows them (defaults for a store that never joined)."""
    saved = store.get("loyalty") or {}
    return {"enabled": bool(saved.get("enabled", False)), "checkin_points": int(saved.get("checkin_points", 0)),
            "redemption_points": int(saved.get("redemption_points", 0))}


def is_enabled(store: dict[str, Any]) -> bool:
    return bool((store.get("loyalty") or {}).get("enabled"))


def require_enabled(store: dict[str, Any]) -> None:
    """403 ``not_in_programme`` for a store that has not joined (or left)."""
    if not is_enabled(store):
        raise Forbidden("this store does not take part in the points programme", code="not_in_programme")


async def read_settings(services: Services, owner_id: ObjectId, store_id: str) -> dict[str, Any]:
    return settings_of(await owned_store(services, store_id, owner_id))


async def save_settings(services: Services, owner_id: ObjectId, store_id: str, *, enabled: bool,
                        checkin_points: int, redemption_points: int) -> dict[str, Any]:
    """The owner's settings (the API validated the ranges; checked again here for other callers)."""
    for value in (checkin_points, redemption_points):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= POINTS_MAX:
            raise ValueError(f"points must be integers 0..{POINTS_MAX}")
    store = await owned_store(services, store_id, owner_id)
    saved = {"enabled": enabled, "checkin_points": checkin_points, "redemption_points": redemption_points}
    await services.db.stores.update_one({"_id": store["_id"]}, {"$set": {"loyalty": saved}})
    return settings_of({"loyalty": saved})
