"""Routes: the notifications inbox — a page newest first, unread counts, mark read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from notifications import inbox
from solomo.api.models import StrictBody, UserSummaryOut
from solomo.api.offers import OfferOut
from solomo.api.posts import CommentOut, PostOut
from solomo.core.eventtypes import NotificationKind
from solomo.core.ids import parse_id
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint


class NotificationOut(BaseModel):
    id: str
    kind: NotificationKind
    actors: list[UserSummaryOut] = Field(description="Who did it, newest first, at most 3 (empty for an offer)")
    actor_count: int = Field(description="How many did it (a group of likes or reposts of one post while unread)")
    post: PostOut | None = Field(description="The post concerned; null when there is none or it is no longer "
                                             "visible to you")
    comment: CommentOut | None = Field(description="The comment (comment, reply, mention in a comment)")
    offer: OfferOut | None = Field(description="The offer delivered to you (kind offer)")
    read: bool
    updated_at: str = Field(description="When it last changed (a new actor in a group moves it up)")


class NotificationPage(Page[NotificationOut]):
    pass


class NotificationsQuery(PageQuery):
    kind: NotificationKind | None = Field(None, description="Only this kind")


class UnreadOut(BaseModel):
    total: int = Field(description="Unread actions: each actor of an unread group counts, other entries 1 each")
    by_kind: dict[Literal["like", "comment", "reply", "mention", "repost", "follow", "offer"], int]


class ReadIn(StrictBody):
    up_to: str | None = Field(None, max_length=64, description=(
        "A notification id of yours: it and every older one are marked read; absent = all"))


@endpoint("GET /v1/notifications",
          summary="My notifications, newest first", query=NotificationsQuery, response=NotificationPage,
          tags=["notifications"], errors={400: "invalid_cursor"})
async def list_notifications(ctx: Ctx) -> dict[str, Any]:
    q: NotificationsQuery = ctx.query
    items, nxt = await inbox.list_page(ctx.services, ctx.user.id, q.kind,
                                       ctx.services.cursors.decode_position(q.cursor), q.limit)
    return ctx.services.cursors.page(items, nxt)


@endpoint("GET /v1/notifications/unread",
          summary="Unread notification counts, in all and per kind", response=UnreadOut, tags=["notifications"])
async def unread(ctx: Ctx) -> dict[str, Any]:
    return await inbox.unread_counts(ctx.services, ctx.user.id)


@endpoint("POST /v1/notifications/read",
          summary="Mark notifications read (all, or up to one)", body=ReadIn, status=204, tags=["notifications"],
          errors={404: "not_found (up_to is not one of your notifications)"},
          description="Send `{}` to mark all read. Reading a group closes it: the next like starts a new one.")
async def mark_read(ctx: Ctx) -> None:
    body: ReadIn = ctx.body
    up_to = parse_id(body.up_to, "notification") if body.up_to is not None else None
    await inbox.mark_read(ctx.services, ctx.user.id, up_to)
