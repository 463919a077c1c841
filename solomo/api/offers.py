"""Routes: offers (create, read, nearby), claims, my vouchers, redemptions at the counter, store stats."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from offers.audiences import (
    DAYS_DEFAULT,
    DAYS_MAX,
    DAYS_MIN,
    REGULAR_WINDOW_DAYS,
    VISITS_DEFAULT,
    VISITS_MAX,
    VISITS_MIN,
    audience_of,
)
from offers.ending import end_offer, store_offers
from offers.offers import RADIUS_MAX_M, RADIUS_MIN_M, create_offer, get_offer, nearby_offers, offer_public
from offers.stats import store_stats
from offers.vouchers import claim, my_vouchers, redeem, voucher_public
from solomo.api.models import Lat, Lng, StoreSummaryOut, StrictBody, UtcDatetime
from solomo.core.ids import parse_id
from solomo.core.jsonio import JSONResponse
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint

AUDIENCE_DOC = ("Who it is pushed to: followers (the store's followers, default), visitors (checked in within "
                "audience_days), regulars (min_visits check-in days in the last 90), nearby (anyone within the "
                "radius; at most 3 nearby offers a day reach a non-follower, none after an opt-out)")


class OfferIn(StrictBody):
    title: str = Field(min_length=1, max_length=120)
    description: str | None = Field(None, max_length=1000)
    radius_m: int = Field(ge=RADIUS_MIN_M, le=RADIUS_MAX_M, description="Push radius around the store, metres")
    expires_at: UtcDatetime = Field(description="RFC 3339 with a time zone; in the future, at most 90 days ahead")
    stock: int | None = Field(None, ge=1, le=1_000_000, description="Vouchers available; null = unlimited")
    audience: str = Field("followers", description=AUDIENCE_DOC)
    audience_days: int | None = Field(None, description=f"visitors only: checked in within this many days "
                                                        f"({DAYS_MIN}..{DAYS_MAX}, default {DAYS_DEFAULT})")
    min_visits: int | None = Field(None, description=f"regulars only: at least this many check-in days in the "
                                                     f"last {REGULAR_WINDOW_DAYS} ({VISITS_MIN}..{VISITS_MAX}, "
                                                     f"default {VISITS_DEFAULT})")


class OfferOut(BaseModel):
    id: str
    store: StoreSummaryOut
    title: str
    description: str
    radius_m: int
    stock: int | None
    claimed: int
    audience: Literal["followers", "visitors", "regulars", "nearby"] = Field(description=AUDIENCE_DOC)
    audience_days: int | None = Field(None, description="visitors: the look-back in days")
    min_visits: int | None = Field(None, description="regulars: check-in days needed in the last 90")
    status: Literal["live", "pending_review", "ended", "expired", "sold_out"] = Field(
        description="pending_review: held for a moderator (a review word matched), not pushed yet; "
                    "ended: its owner ended it (or a moderator removed it)")
    expires_at: str
    created_at: str


class NearbyOfferOut(OfferOut):
    distance_m: float = Field(description="Distance from the query point to the store, metres")


class OfferPage(Page[NearbyOfferOut]):
    pass


class StoreOfferPage(Page[OfferOut]):
    pass


class NearbyOffersQuery(PageQuery):
    lat: Lat
    lng: Lng


class VoucherOut(BaseModel):
    id: str
    offer_id: str
    store_id: str
    user_id: str
    code: str = Field(description="Read at the counter, e.g. 7K2QF-M9XRT")
    qr: str = Field(description="Payload for a QR code; redeeming it works like the code")
    status: str = Field(description="claimed | redeemed | expired")
    expires_at: str
    redeemed_at: str | None
    created_at: str


class VoucherPage(Page[VoucherOut]):
    pass


class RedemptionIn(StrictBody):
    code: str = Field(min_length=1, max_length=64)


class RedemptionOut(BaseModel):
    voucher: VoucherOut


class OfferStatsOut(BaseModel):
    offer_id: str
    pushed: int
    claimed: int
    redeemed: int


class StoreStatsOut(BaseModel):
    checkins: int
    unique_visitors: int
    followers: int
    offers: list[OfferStatsOut] = Field(description="The store's latest 100 offers, newest first")


@endpoint("POST /v1/stores/{store_id}/offers",
          summary="Create an offer for your store", body=OfferIn, response=OfferOut, status=201, tags=["offers"],
          errors={403: "forbidden", 404: "not_found", 409: "too_many_live_offers", 422: "invalid, content_rejected",
                  429: "rate_limited"}, operation_id="offers_create", idempotent=True, rate="offer",
          description="Pushed at once (an `offer` event) to the users of its audience online (or Web Push "
                      "subscribed) within radius_m, and later to those who come within it while it is live; "
                      "nobody gets it twice. A bad audience, audience_days or min_visits is 422 invalid. "
                      "Title and description pass the word filter: a block word is 422 content_rejected; a "
                      "review word creates the offer with status pending_review, pushed only once a "
                      "moderator approves it. A store has at most 5 live offers (409 too_many_live_offers) "
                      "and 20 offers in any 24 hours (429 rate_limited with Retry-After); each caller's "
                      "attempts, refused ones included, are limited too (settings.rate_limits.offer).")
async def post_offer(ctx: Ctx) -> dict[str, Any]:
    body: OfferIn = ctx.body
    doc, store = await create_offer(ctx.services, ctx.user.id, ctx.path["store_id"], title=body.title,
                                    description=body.description, radius_m=body.radius_m,
                                    expires_at=body.expires_at, stock=body.stock,
                                    audience=audience_of(body.audience, body.audience_days, body.min_visits))
    return offer_public(doc, store)


@endpoint("GET /v1/offers/{offer_id}",
          summary="An offer", response=OfferOut, tags=["offers"], errors={404: "not_found"})
async def get_one(ctx: Ctx) -> dict[str, Any]:
    doc, store = await get_offer(ctx.services, parse_id(ctx.path["offer_id"], "offer"), ctx.user)
    return offer_public(doc, store)


@endpoint("GET /v1/offers/nearby",
          summary="Live offers whose radius covers a point", query=NearbyOffersQuery, response=OfferPage,
          tags=["offers"], errors={400: "invalid_cursor"},
          description="Not expired and not sold out, nearest store first.")
async def nearby(ctx: Ctx) -> dict[str, Any]:
    q: NearbyOffersQuery = ctx.query
    items, after = await nearby_offers(ctx.services, q.lat, q.lng, q.limit,
                                       ctx.services.cursors.decode_position(q.cursor))
    return ctx.services.cursors.page(items, after)


@endpoint("POST /v1/offers/{offer_id}/claim",
          summary="Claim a voucher for an offer", response=VoucherOut, status=201, tags=["offers"], rate="claim",
          errors={404: "not_found", 409: "sold_out", 410: "offer_expired"}, operation_id="offers_claim",
          idempotent=True,
          description="201 with a new voucher; 200 with the same voucher when you already claimed this offer.")
async def post_claim(ctx: Ctx) -> dict[str, Any] | JSONResponse:
    voucher, created = await claim(ctx.services, ctx.user.id, parse_id(ctx.path["offer_id"], "offer"))
    if created:
        return voucher_public(voucher)
    return JSONResponse(voucher_public(voucher), status_code=200)


@endpoint("POST /v1/stores/{store_id}/redemptions",
          summary="Redeem a voucher at your store", body=RedemptionIn, response=RedemptionOut, tags=["offers"],
          errors={403: "forbidden", 404: "unknown_code", 409: "already_redeemed", 410: "voucher_expired",
                  429: "rate_limited"}, operation_id="offers_redeem",
          description="Codes are case-insensitive; dashes and spaces are ignored; the QR payload works too. "
                      "Failed attempts are limited per store (429 with Retry-After).")
async def post_redemption(ctx: Ctx) -> dict[str, Any]:
    voucher = await redeem(ctx.services, ctx.user.id, ctx.path["store_id"], ctx.body.code)
    return {"voucher": voucher_public(voucher)}


@endpoint("GET /v1/me/vouchers",
          summary="My vouchers, newest first", query=PageQuery, response=VoucherPage, tags=["offers"],
          errors={400: "invalid_cursor"})
async def list_mine(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    items, after = await my_vouchers(ctx.services, ctx.user.id, q.limit, ctx.services.cursors.decode_position(q.cursor))
    return ctx.services.cursors.page(items, after)


@endpoint("GET /v1/stores/{store_id}/stats",
          summary="Your store's funnel", response=StoreStatsOut, tags=["offers"], errors={403: "forbidden"})
async def stats(ctx: Ctx) -> dict[str, Any]:
    return await store_stats(ctx.services, ctx.user.id, ctx.path["store_id"])



@endpoint("GET /v1/stores/{store_id}/offers",
          summary="A store's offers, newest first", query=PageQuery, response=StoreOfferPage, tags=["offers"],
          errors={400: "invalid_cursor", 404: "not_found"}, operation_id="offers_of_store",
          description="The store's owner sees every offer (held for review, ended, expired, sold out); "
                      "everybody else sees the live ones only.")
async def list_for_store(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    items, after = await store_offers(ctx.services, ctx.user.id, ctx.path["store_id"], q.limit,
                                      ctx.services.cursors.decode_position(q.cursor))
    return ctx.services.cursors.page(items, after)


@endpoint("POST /v1/offers/{offer_id}/end",
          summary="End your offer now", response=OfferOut, tags=["offers"], operation_id="offers_end",
          errors={403: "forbidden", 404: "not_found", 409: "invalid_transition"},
          description="Status ended at once: claims answer 410 offer_ended, nobody else is pushed it, vouchers "
                      "already claimed stay redeemable until they expire. Ending an ended offer answers it "
                      "again; an expired or removed one is 409 invalid_transition.")
async def end(ctx: Ctx) -> dict[str, Any]:
    doc = await end_offer(ctx.services, ctx.user.id, parse_id(ctx.path["offer_id"], "offer"))
    return offer_public(*await get_offer(ctx.services, doc["_id"]))
