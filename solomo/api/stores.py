"""Routes: create a store (merchants), read one, find stores nearby."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from checkins.localtime import DEFAULT_TIMEZONE
from checkins.nearby import RADIUS_DEFAULT_M, RADIUS_MAX_M, nearby_stores
from checkins.storeedit import update_store
from checkins.stores import CATEGORIES, create_store, get_store, hydrate_store, stores_json
from solomo.api.models import Lat, Lng, StrictBody, UserSummaryOut
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint

# built from the one list in checkins.stores (mypy cannot read a Literal from a tuple)
Category = Literal[CATEGORIES]  # type: ignore[valid-type]


class StoreIn(StrictBody):
    name: str = Field(min_length=1, max_length=80)
    lat: Lat
    lng: Lng
    category: Category = Field("other", description="One of a fixed set; default other")
    address: str | None = Field(None, max_length=200)
    checkin_radius_m: int = Field(200, ge=20, le=2000, description="Check-in radius in metres (20..2000)")
    timezone: str = Field(DEFAULT_TIMEZONE, max_length=64,
                          description="IANA time zone name (default Asia/Shanghai): the store's days and hours")


class StorePatchIn(StrictBody):
    """Only the fields sent change; only ``address`` may be null (clears it)."""

    name: str | None = Field(None, min_length=1, max_length=80)
    category: Category | None = Field(None, description="One of a fixed set")
    address: str | None = Field(None, max_length=200, description="null or empty clears it")
    checkin_radius_m: int | None = Field(None, ge=20, le=2000, description="Check-in radius in metres (20..2000)")
    lat: Lat | None = None
    lng: Lng | None = None
    timezone: str | None = Field(None, max_length=64, description="IANA time zone name")

    @field_validator("name", "category", "checkin_radius_m", "lat", "lng", "timezone", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may be left out but not null")
        return v


class StoreOut(BaseModel):
    id: str
    name: str
    lat: float
    lng: float
    category: str
    address: str | None
    owner_id: str
    checkin_radius_m: int
    timezone: str = Field(description="IANA time zone name: the store's days and hours (insights, points)")
    checkins_count: int
    followers_count: int
    mayor: UserSummaryOut | None = Field(description="Most distinct check-in days in the last 60 days")
    created_at: str


class NearbyStoreOut(StoreOut):
    distance_m: float = Field(description="Spherical distance from the query point, metres")


class StorePage(Page[NearbyStoreOut]):
    pass


class NearbyQuery(PageQuery):
    lat: Lat
    lng: Lng
    radius_m: float = Field(RADIUS_DEFAULT_M, gt=0, le=RADIUS_MAX_M, description="Metres, at most 50000")
    category: Category | None = None


@endpoint("POST /v1/stores",
          summary="Create a store", body=StoreIn, response=StoreOut, status=201, auth=("merchant",),
          tags=["stores"], errors={422: "invalid, content_rejected", 429: "rate_limited"},
          description="The name and address pass the word filter: a block or review word → 422 "
                      "content_rejected (store names and addresses have no review queue). A merchant has at most "
                      "20 stores: the 21st is 429 rate_limited.")
async def create(ctx: Ctx) -> dict[str, Any]:
    b: StoreIn = ctx.body
    doc = await create_store(ctx.services, ctx.user.id, name=b.name, lat=b.lat, lng=b.lng, category=b.category,
                             address=b.address, checkin_radius_m=b.checkin_radius_m,
                             timezone=b.timezone)
    return await hydrate_store(ctx.services, doc)


@endpoint("GET /v1/stores/{store_id}",
          summary="A store", response=StoreOut, tags=["stores"])
async def get_one(ctx: Ctx) -> dict[str, Any]:
    return await hydrate_store(ctx.services, await get_store(ctx.services, ctx.path["store_id"]))


@endpoint("GET /v1/stores/nearby",
          summary="Stores near a point, nearest first", query=NearbyQuery, response=StorePage, tags=["stores"],
          errors={400: "invalid_cursor"})
async def nearby(ctx: Ctx) -> dict[str, Any]:
    q: NearbyQuery = ctx.query
    page = await nearby_stores(ctx.services, q.lat, q.lng, radius_m=q.radius_m, category=q.category,
                               limit=q.limit, after=ctx.services.cursors.decode_position(q.cursor))
    items = await stores_json(ctx.services, page.docs, [doc["distance_m"] for doc in page.docs],
                              names_generation=page.names_generation)
    return ctx.services.cursors.page(items, page.after)



@endpoint("PATCH /v1/stores/{store_id}",
          summary="Edit your store", body=StorePatchIn, response=StoreOut, tags=["stores"], rate="store_edit",
          errors={403: "forbidden", 404: "not_found", 422: "invalid, content_rejected", 429: "rate_limited"},
          description="Only the fields sent change (address null clears it; an unknown timezone is 422 invalid). "
                      "Nearby stores, the store's offers "
                      "(nearby and pushed on arrival), the posts at the store (local feeds) and the names shown in "
                      "posts follow at once. Edits are limited per caller (settings.rate_limits.store_edit) and "
                      "moves per store (store_move): 429 rate_limited with Retry-After. The name and address "
                      "pass the word filter: a block or review word → 422 content_rejected.")
async def patch(ctx: Ctx) -> dict[str, Any]:
    b: StorePatchIn = ctx.body
    fields = {k: getattr(b, k) for k in b.model_fields_set}
    doc = await update_store(ctx.services, ctx.user.id, ctx.path["store_id"], **fields)
    return await hydrate_store(ctx.services, doc)
