"""Routes: check in at a store, list a user's check-ins."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from checkins.checkin import check_in, checkin_public
from checkins.history import shape_checkins, user_checkins
from checkins.rules import ACCURACY_DEFAULT_M, ACCURACY_MAX_M
from feed.blocks import walled_off
from feed.hydrate import post_created
from solomo.api.models import MEDIA_IDS_DESCRIPTION, Lat, Lng, StoreSummaryOut, StrictBody
from solomo.api.posts import PostOut
from solomo.core.ids import parse_id
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint


class CheckinIn(StrictBody):
    store_id: str = Field(min_length=1, max_length=64)
    lat: Lat
    lng: Lng
    accuracy_m: float = Field(ACCURACY_DEFAULT_M, gt=0, le=ACCURACY_MAX_M,
                              description="Reported GPS accuracy in metres; at most 100 of it widens the radius")
    text: str | None = Field(None, min_length=1, max_length=2000,
                             description='Post text; default "checked in at <store name>"')
    media_ids: list[str] | None = Field(None, description=MEDIA_IDS_DESCRIPTION)


class CheckinOut(BaseModel):
    id: str
    user_id: str
    store_id: str
    lat: float | None = Field(description="The device fix for the check-in's own user; the store's latitude "
                                          "for everyone else (null if the store is gone)")
    lng: float | None = Field(description="As lat")
    distance_m: float | None = Field(description="From the fix to the store; null for everyone but its user")
    accuracy_m: float | None = Field(description="The fix's reported accuracy; null for everyone but its user")
    post_id: str | None
    created_at: str = Field(description="RFC 3339; whole seconds for everyone but its user")


class CheckinCreatedOut(BaseModel):
    checkin: CheckinOut
    post: PostOut = Field(description="The check-in's post (kind checkin), located at the store")


class CheckinListedOut(CheckinOut):
    store: StoreSummaryOut | None = Field(description="Where: the store's summary (null if the store is gone)")


class CheckinPage(Page[CheckinListedOut]):
    pass


@endpoint("POST /v1/checkins",
          summary="Check in at a store", body=CheckinIn, response=CheckinCreatedOut, status=201,
          tags=["checkins"], rate="checkin", idempotent=True,
          errors={404: "store not found", 422: "too_far, impossible_travel, invalid_media or invalid input",
                  429: "checkin_too_soon (see Retry-After)"},
          description="Refused with 422 too_far beyond checkin_radius_m + min(accuracy_m, 100) metres, "
                      "429 checkin_too_soon within an hour of the previous check-in at the same store, "
                      "422 impossible_travel when the previous check-in is farther than 300 km/h × elapsed "
                      "time plus both fixes' capped accuracy.")
async def create(ctx: Ctx) -> dict[str, Any]:
    b: CheckinIn = ctx.body
    result = await check_in(ctx.services, ctx.user, parse_id(b.store_id, "store"), b.lat, b.lng,
                            accuracy_m=b.accuracy_m, text=b.text, media_ids=b.media_ids)
    return {"checkin": checkin_public(result.checkin),
            "post": post_created(result.post, ctx.user, result.store)}


@endpoint("GET /v1/users/{user_id}/checkins",
          summary="A user's check-ins, newest first", query=PageQuery, response=CheckinPage, tags=["checkins"],
          errors={400: "invalid_cursor"},
          description="The user sees their own device fixes; everyone else sees each check-in at its store's "
                      "location, with null distance_m and accuracy_m. Empty between two users one of whom "
                      "blocks the other, as their posts are.")
async def of_user(ctx: Ctx) -> dict[str, Any]:
    user = await ctx.services.accounts.get(parse_id(ctx.path["user_id"], "user"))
    before = ctx.services.cursors.decode_position(ctx.query.cursor)
    if await walled_off(ctx.services, ctx.user.id, user["_id"], ctx.user.role):  # where they go is content too
        return ctx.services.cursors.page([], None)
    docs, after = await user_checkins(ctx.services, user["_id"], limit=ctx.query.limit, after=before)
    return ctx.services.cursors.page(await shape_checkins(ctx.services, docs, ctx.user.id), after)

