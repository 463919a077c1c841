"""Routes: a store's insights for its owner."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from insights.insights import DAYS_DEFAULT, DAYS_MAX, DAYS_MIN, store_insights
from solomo.api.models import LaxQuery
from solomo.http import Ctx, endpoint


class InsightsQuery(LaxQuery):
    days: int = Field(DAYS_DEFAULT, ge=DAYS_MIN, le=DAYS_MAX,
                      description="Local days in the window, today included (1..365, default 30)")


class InsightsDayOut(BaseModel):
    date: str = Field(description="YYYY-MM-DD on the store's calendar")
    checkins: int
    unique_visitors: int
    new_visitors: int = Field(description="Whose first check-in ever at the store was this day")
    returning_visitors: int = Field(description="unique_visitors − new_visitors")


class TopicCountOut(BaseModel):
    topic: str
    post_count: int


class OfferFunnelOut(BaseModel):
    offer_id: str
    title: str
    audience: str
    pushed: int
    claimed: int = Field(description="Vouchers handed out, redeemed ones included")
    redeemed: int


class PointsOut(BaseModel):
    issued: int
    spent: int


class InsightsOut(BaseModel):
    days: list[InsightsDayOut] = Field(description="Every day of the window, oldest first, zeros included")
    hours: list[int] = Field(description="24 check-in counts of the window by store-local hour")
    repeat_rate: float = Field(description="Share of the window's visitors who checked in on ≥ 2 distinct days of it")
    top_topics: list[TopicCountOut] = Field(description="Topics of published posts at the store in the window")
    offers: list[OfferFunnelOut] = Field(description="Offers live during the window, newest first")
    points: PointsOut = Field(description="Loyalty points issued and spent at the store in the window")


@endpoint("GET /v1/stores/{store_id}/insights",
          summary="Your store's insights", query=InsightsQuery, response=InsightsOut, tags=["stores"],
          errors={403: "forbidden", 404: "not_found", 422: "invalid"},
          description="The store owner's numbers over the last `days` days of the store's calendar (its "
                      "`timezone`), today included. Another merchant's store is 403 forbidden.")
async def insights(ctx: Ctx) -> dict[str, Any]:
    q: InsightsQuery = ctx.query
    return await store_insights(ctx.services, ctx.user.id, ctx.path["store_id"], q.days)
