"""Routes: the loyalty points programme (store settings, balance and history, spend codes, charges,
the store's settlement ledger)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loyalty.ledger import balance_of, history
from loyalty.programme import POINTS_MAX, read_settings, save_settings
from loyalty.settlement import MAX_DAYS, store_ledger
from loyalty.spending import POINTS_MAX as CHARGE_MAX
from loyalty.spending import POINTS_MIN as CHARGE_MIN
from loyalty.spending import charge, charge_public, create_code
from solomo.api.models import StoreSummaryOut, StrictBody
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint

TAGS = ["loyalty"]


class LoyaltySettingsIn(StrictBody):
    enabled: bool
    checkin_points: int = Field(ge=0, le=POINTS_MAX, description="Earned on a user's first check-in of the "
                                                                 "store-local day")
    redemption_points: int = Field(ge=0, le=POINTS_MAX, description="Earned when a voucher of the store is redeemed")


class LoyaltySettingsOut(BaseModel):
    enabled: bool
    checkin_points: int
    redemption_points: int


class PointsOut(BaseModel):
    balance: int
    earned: int
    spent: int


class PointsEntryOut(BaseModel):
    id: str
    store: StoreSummaryOut
    kind: Literal["checkin", "redemption", "spend"]
    points: int = Field(description="Signed: positive earned, negative spent")
    balance_after: int
    created_at: str


class PointsHistoryPage(Page[PointsEntryOut]):
    pass


class SpendCodeOut(BaseModel):
    code: str = Field(description="Read at the counter, e.g. 7K2QF-M9XRT; valid 5 minutes, charges once")
    qr: str = Field(description="Payload for a QR code; charging it works like the code")
    expires_at: str


class ChargeIn(StrictBody):
    code: str = Field(min_length=1, max_length=64)
    points: int = Field(ge=CHARGE_MIN, le=CHARGE_MAX)


class ChargeOut(BaseModel):
    transaction_id: str
    points: int
    balance_after: int


def _calendar_day(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date YYYY-MM-DD")
    return date.fromisoformat(value)  # a ValueError (2026-02-30) is a 422 like any invalid value


Day = Annotated[date, BeforeValidator(_calendar_day)]
"""``YYYY-MM-DD`` and nothing else (pydantic's lax date would take a Unix time such as ``0``)."""


class LedgerQuery(BaseModel):
    # dates are the store's local calendar days, both inclusive (a comment: see PageQuery)
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Day = Field(alias="from", description="First store-local day, YYYY-MM-DD")
    to: Day = Field(description=f"Last store-local day, YYYY-MM-DD; from..to covers at most {MAX_DAYS} days")


class LedgerDayOut(BaseModel):
    date: str
    issued: int
    spent: int


class LedgerOut(BaseModel):
    issued: int = Field(description="Points the store's customers earned there (the store pays for them)")
    spent: int = Field(description="Points spent at the store (the store is paid for them)")
    net: int = Field(description="issued - spent")
    days: list[LedgerDayOut]


@endpoint("PUT /v1/stores/{store_id}/loyalty",
          summary="Set your store's loyalty programme settings", body=LoyaltySettingsIn, response=LoyaltySettingsOut,
          tags=TAGS, errors={403: "forbidden", 404: "not_found", 422: "invalid"}, operation_id="loyalty_put_settings")
async def put_settings(ctx: Ctx) -> dict[str, Any]:
    body: LoyaltySettingsIn = ctx.body
    return await save_settings(ctx.services, ctx.user.id, ctx.path["store_id"], enabled=body.enabled,
                               checkin_points=body.checkin_points, redemption_points=body.redemption_points)


@endpoint("GET /v1/stores/{store_id}/loyalty",
          summary="Your store's loyalty programme settings", response=LoyaltySettingsOut, tags=TAGS,
          errors={403: "forbidden", 404: "not_found"}, operation_id="loyalty_get_settings")
async def get_settings(ctx: Ctx) -> dict[str, Any]:
    return await read_settings(ctx.services, ctx.user.id, ctx.path["store_id"])


@endpoint("GET /v1/me/points",
          summary="My points balance", response=PointsOut, tags=TAGS, operation_id="loyalty_my_points")
async def my_points(ctx: Ctx) -> dict[str, Any]:
    return await balance_of(ctx.services, ctx.user.id)


@endpoint("GET /v1/me/points/history",
          summary="My points history, newest first", query=PageQuery, response=PointsHistoryPage, tags=TAGS,
          errors={400: "invalid_cursor"}, operation_id="loyalty_my_history")
async def my_history(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    items, after = await history(ctx.services, ctx.user.id, q.limit, ctx.services.cursors.decode_position(q.cursor))
    return ctx.services.cursors.page(items, after)


@endpoint("POST /v1/me/points/spend-codes",
          summary="A one-time code to spend points at a partner store", response=SpendCodeOut, status=201,
          tags=TAGS, rate="spend_code", operation_id="loyalty_create_spend_code",
          description="Valid 5 minutes; shown as a QR code; a partner store charges it once.")
async def post_spend_code(ctx: Ctx) -> dict[str, Any]:
    return await create_code(ctx.services, ctx.user.id)


@endpoint("POST /v1/stores/{store_id}/points/charge",
          summary="Charge points to a customer's spend code at your store", body=ChargeIn, response=ChargeOut,
          tags=TAGS, idempotent=True, rate="points_charge", operation_id="loyalty_charge",
          errors={403: "forbidden, not_in_programme, account_suspended", 404: "unknown_code",
                  409: "code_used, insufficient_points", 410: "code_expired", 429: "rate_limited"},
          description="Nothing is taken unless the whole charge succeeds; a code charges once; the balance "
                      "never goes below zero. Failed attempts are limited per store, and every attempt per "
                      "caller (settings.rate_limits.points_charge): 429 with Retry-After.")
async def post_charge(ctx: Ctx) -> dict[str, Any]:
    body: ChargeIn = ctx.body
    entry = await charge(ctx.services, ctx.user.id, ctx.path["store_id"], body.code, body.points)
    return charge_public(entry)


@endpoint("GET /v1/stores/{store_id}/points/ledger",
          summary="Your store's points settlement per store-local day", query=LedgerQuery, response=LedgerOut,
          tags=TAGS, errors={403: "forbidden", 404: "not_found", 422: "invalid"}, operation_id="loyalty_store_ledger")
async def store_points_ledger(ctx: Ctx) -> dict[str, Any]:
    q: LedgerQuery = ctx.query
    return await store_ledger(ctx.services, ctx.user.id, ctx.path["store_id"], q.from_, q.to)
