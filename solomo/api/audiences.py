"""Routes: the audience preview of a store's next offer (owner only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from offers.audiences import DAYS_MAX, DAYS_MIN, VISITS_MAX, VISITS_MIN, audience_of
from offers.offers import RADIUS_MAX_M, RADIUS_MIN_M
from offers.preview import preview
from solomo.http import Ctx, endpoint


class AudienceQuery(BaseModel):
    # Query strings are text, numbers parsed from it; unknown parameters are refused. The values are
    # checked by offers.audiences.audience_of (one rule for offers and previews).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    audience: str = Field("followers", description="followers | visitors | regulars | nearby")
    audience_days: int | None = Field(None, description=f"visitors only, {DAYS_MIN}..{DAYS_MAX} (default 90)")
    min_visits: int | None = Field(None, description=f"regulars only, {VISITS_MIN}..{VISITS_MAX} (default 3)")
    radius_m: int | None = Field(None, description=f"{RADIUS_MIN_M}..{RADIUS_MAX_M}; default: the store's last "
                                                   "offer's radius, or 500")


class AudienceOut(BaseModel):
    size: int = Field(description="Users the audience holds (followers, distinct visitors, regulars, or for "
                                  "nearby the users with a fresh position within the radius)")
    online_in_radius: int = Field(description="Of those, how many an offer would reach now: a fresh position "
                                              "within the radius and an open socket or a Web Push subscription")
    radius_m: int = Field(description="The radius used")
    capped: bool = Field(description="size is a lower bound: the window held more check-ins than one preview reads")


@endpoint("GET /v1/stores/{store_id}/audience",
          summary="Preview an offer audience of your store", query=AudienceQuery, response=AudienceOut,
          tags=["offers"], errors={403: "forbidden", 404: "not_found", 422: "invalid"}, operation_id="offers_audience",
          rate="audience_preview",
          description="How many users the audience holds and how many of them are reachable within the radius now.")
async def get_audience(ctx: Ctx) -> dict[str, Any]:
    q: AudienceQuery = ctx.query
    return await preview(ctx.services, ctx.user.id, ctx.path["store_id"],
                         audience_of(q.audience, q.audience_days, q.min_visits), q.radius_m)
