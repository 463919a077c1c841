"""Notifications and feed events to users, through the real-time publisher.

Publishing happens after the write it reports is committed; a failure to publish is logged and
never undoes or fails the write (the event history is a convenience, MongoDB is the record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from bson import ObjectId

log = logging.getLogger("solomo.feed.notify")


async def publish(services: Any, user_ids: Iterable[ObjectId | str], type: str, data: dict[str, Any]) -> None:
    users = [str(u) for u in user_ids]
    if not users:
        return
    try:
        await services.events.publish(users, type, data)
    except Exception as exc:  # events are best effort; the write they describe is already durable
        log.warning("could not publish %s to %d users: %s", type, len(users), exc)


async def notify(services: Any, user_id: ObjectId | str, data: dict[str, Any]) -> None:
    """One ``notification`` event (``data["kind"]``: like, comment, mention, follow)."""
    await publish(services, [user_id], "notification", data)
