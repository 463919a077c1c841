"""The real-time event types and their payloads: the one catalogue, and the typed way to publish.

Every event a user receives on ``/v1/ws`` (frame ``{"id", "type", "data"}``) is one of the
:data:`EVENTS` below: the class names the ``type`` (``event_type``) and its fields are the
``data``. Models forbid unknown fields, so a misspelt field fails where the event is built.
``docs/design.md`` ("Real-time events") documents each type — who emits it, who receives it,
when — and ``tests/realtime/test_event_catalogue.py`` keeps that table and this module in step.

:func:`publish_event` is best effort: it runs after the write it reports is committed, and a
failure is logged, never raised (MongoDB is the record; the event history is a convenience).
:func:`publish_each_event` (with a dedupe set) raises, so that its task is retried. Notifications
are published by :func:`notifications.record.announce` only (the inbox entry is their record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import orjson
from bson import ObjectId
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from solomo.core.events import OnceKey
    from solomo.core.services import Services

log = logging.getLogger("solomo.core.eventtypes")


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserSummary(Payload):
    """The user who acted (the contract's UserSummary)."""

    id: str
    username: str
    display_name: str


class StoreSummary(Payload):
    id: str
    name: str
    lat: float
    lng: float


def _json_fragment(value: Any) -> Any:
    """A rendered post's pre-serialised parts (``orjson.Fragment``: its Media list, kept per version
    of the post by ``feed.hydrate``) as plain values: pydantic does not know the type."""
    if isinstance(value, orjson.Fragment):
        return orjson.loads(orjson.dumps(value))
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class Event(Payload):
    """One event's payload; ``event_type`` is the frame's ``type``."""

    event_type: ClassVar[str]

    def data(self) -> dict[str, Any]:
        """The frame's ``data``, as JSON-ready values."""
        return self.model_dump(mode="json", fallback=_json_fragment)


class FeedNew(Event):
    """A post arrived in the reader's home feed."""

    event_type: ClassVar[str] = "feed.new"
    post_id: str


class PostDeleted(Event):
    """A post left the reader's home feed (deleted by its author, hidden or removed)."""

    event_type: ClassVar[str] = "post.deleted"
    post_id: str


NOTIFICATION_KINDS = ("like", "comment", "reply", "mention", "repost", "follow", "offer")
"""The kinds of the inbox (contract: Notifications), in the order the unread counts list them."""

NotificationKind = Literal["like", "comment", "reply", "mention", "repost", "follow", "offer"]


class NotificationEvent(Event):
    """An inbox entry was created or gained an actor (:mod:`notifications.record`): the contract's
    Notification as the receiver sees it, plus the receiver's new unread ``total``."""

    event_type: ClassVar[str] = "notification"
    id: str
    kind: NotificationKind
    actors: list[UserSummary]
    actor_count: int
    post: dict[str, Any] | None
    comment: dict[str, Any] | None
    offer: dict[str, Any] | None
    read: bool
    updated_at: str
    total: int


class OfferEvent(Event):
    """A live offer near the receiver: the Offer plus its distance."""

    event_type: ClassVar[str] = "offer"
    id: str
    store: StoreSummary
    title: str
    description: str
    radius_m: int
    stock: int | None
    claimed: int
    audience: str
    status: str
    expires_at: str
    created_at: str
    distance_m: float


class PointsEntry(Payload):
    """One ledger entry as the history lists it (contract: Loyalty points)."""

    id: str
    store: StoreSummary
    kind: Literal["checkin", "redemption", "spend"]
    points: int
    balance_after: int
    created_at: str


class PointsEvent(Event):
    """The receiver's points balance changed (:mod:`loyalty.announce`, after the entry's commit): the
    new balance and the entry that moved it."""

    event_type: ClassVar[str] = "points"
    balance: int
    earned: int
    spent: int
    entry: PointsEntry


EVENTS: tuple[type[Event], ...] = (FeedNew, PostDeleted, NotificationEvent, OfferEvent, PointsEvent)
"""Every event payload model."""


def event_types() -> list[str]:
    """The distinct ``type`` values, in catalogue order."""
    return list(dict.fromkeys(e.event_type for e in EVENTS))


async def publish_event(services: Services, user_ids: Iterable[ObjectId | str], event: Event) -> None:
    """Records and announces ``event`` for each user; best effort (a failure is logged)."""
    users = [str(u) for u in user_ids]
    if not users:
        return
    try:
        await services.events.publish(users, event.event_type, event.data())
    except Exception as exc:  # events are best effort; the write they describe is already durable
        log.warning("could not publish %s to %d users: %s", event.event_type, len(users), exc)


async def publish_each_event(services: Services, items: Sequence[tuple[str, Event]], *,
                             once_key: OnceKey | None = None,
                             once_ttl_s: int = 86400) -> list[tuple[str, str]]:
    """One event per ``(user id, event)``, all of one type; with ``once_key`` (the dedupe set of a
    reader bucket) users already in their bucket's set are skipped. Returns ``(user id, event id)``
    for the events recorded; raises on a Redis failure (the caller's task is retried, and the dedupe
    set keeps that exactly-once)."""
    if not items:
        return []
    types = {event.event_type for _, event in items}
    if len(types) != 1:
        raise ValueError(f"publish_each_event takes events of one type, not {sorted(types)}")
    return await services.events.publish_each(types.pop(), [(uid, event.data()) for uid, event in items],
                                              once_key=once_key, once_ttl_s=once_ttl_s)
