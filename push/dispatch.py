"""Which published events become Web Push messages, and for whom.

:class:`PushSink` sits on the :class:`~solomo.core.events.EventPublisher` (installed by the
composition root, :func:`install`): every event recorded for a user passes it, whoever published it
(offer targeting, notifications, any future publisher). It takes ``offer`` events and
``notification`` events of kind mention, comment, reply and follow (the contract's list), keeps the
users with no open socket anywhere (:func:`solomo.core.presence.is_online`) and at least one
subscription, and enqueues ``push.deliver`` with their frames: the exact text a socket would have
received. The HTTP requests happen in the worker (:mod:`push.sender`), never here.

Best effort, like the event itself: a failure here is logged, never raised into the publisher
(an offer's dedupe set already holds the user, and the app shows the event from the history on
its next open).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from push import subscriptions, vapid
from solomo.core import tasknames
from solomo.core.presence import is_online
from solomo.core.services import Services
from solomo.core.txn import send_task

log = logging.getLogger("solomo.push")

PUSH_KINDS = frozenset({"mention", "comment", "reply", "follow"})
"""Notification kinds worth waking a phone for (likes and reposts wait for the inbox)."""
BATCH = 200
"""Messages per ``push.deliver`` task."""


def _ttl_s(services: Services, type: str, data: dict[str, Any]) -> int:
    """How long the push service should keep the message: offers no longer than they are live."""
    ttl = services.settings.push_ttl_s
    if type == "offer" and isinstance(data.get("expires_at"), str):
        try:
            left = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")) - datetime.now(UTC)
        except ValueError:
            return ttl
        if left.total_seconds() <= 0:
            return -1  # expired: not sent
        ttl = min(ttl, int(left.total_seconds()))
    return ttl


class PushSink:
    def __init__(self, services: Services) -> None:
        self.services = services

    def wants(self, type: str) -> bool:
        return type in ("offer", "notification")

    async def recorded(self, type: str, frames: list[tuple[str, str]]) -> None:
        try:
            await self._recorded(type, frames)
        except Exception as exc:  # best effort: the event itself is recorded and announced
            log.warning("web push of %d %s events not queued: %s", len(frames), type, exc)

    async def _recorded(self, type: str, frames: list[tuple[str, str]]) -> None:
        wanted: list[tuple[str, str, int]] = []
        ttl_shared: int | None = None
        for uid, frame in frames:
            if type == "notification":
                data = orjson.loads(frame)["data"]
                if data.get("kind") not in PUSH_KINDS:
                    continue
                wanted.append((uid, frame, _ttl_s(self.services, type, data)))
            else:  # an offer's data is the same for everyone but the distance: read it once
                if ttl_shared is None:
                    ttl_shared = _ttl_s(self.services, type, orjson.loads(frame)["data"])
                wanted.append((uid, frame, ttl_shared))
        if not wanted:
            return
        online = await is_online(self.services.redis, [uid for uid, _, _ in wanted])
        offline = [item for item, on in zip(wanted, online, strict=True) if not on]
        if not offline:
            return
        subscribed = await subscriptions.subscribed_users(self.services, list({uid for uid, _, _ in offline}))
        items = [[uid, frame, ttl] for uid, frame, ttl in offline if uid in subscribed and ttl >= 0]
        for start in range(0, len(items), BATCH):
            await send_task(self.services, tasknames.PUSH_DELIVER, items[start:start + BATCH])


def install(services: Services) -> None:
    """Called once by the composition root: Web Push joins the event path. The VAPID key is loaded
    (or made) here, so a malformed ``SOLOMO_VAPID_PRIVATE_KEY`` stops the start, not a request."""
    vapid.private_key(services.settings)
    services.events.sink = PushSink(services)
