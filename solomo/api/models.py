"""Pydantic models shared by several API modules (validation in, documentation out)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from solomo.core.pagination import Page


class StrictBody(BaseModel):
    """A JSON body: unknown fields refused, no type coercion (``"1"`` is not a number), no NaN."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, str_strip_whitespace=False)


class LaxQuery(BaseModel):
    """Query strings are text, so numbers are parsed from it; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


def _to_utc(v: datetime) -> datetime:
    try:
        return v.astimezone(UTC)
    except OverflowError:
        raise ValueError("date is out of range") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An RFC 3339 time with a zone, converted to UTC (a year-1 or year-9999 edge is a 422, not a crash)."""

Lat = Annotated[float, Field(ge=-90, le=90, description="Latitude, decimal degrees"), AfterValidator(_finite)]
Lng = Annotated[float, Field(ge=-180, le=180, description="Longitude, decimal degrees"), AfterValidator(_finite)]
ObjectIdStr = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", description="An id")]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class UserSummaryOut(BaseModel):
    id: str
    username: str
    display_name: str


class UserOut(UserSummaryOut):
    role: str
    bio: str = Field(description="0..160 characters, empty when unset")
    avatar_url: str | None = Field(description="The profile photo, null when unset")
    followers_count: int
    following_count: int
    created_at: str


class MeOut(UserOut):
    """The signed-in user: the User plus settings only they see."""

    offers_from_unfollowed: bool = Field(description="Offers from stores you do not follow (default true)")


class StoreSummaryOut(BaseModel):
    id: str
    name: str
    lat: float
    lng: float


class UserPage(Page[UserOut]):
    pass


class MediaOut(BaseModel):
    """A photo (contract: Media)."""

    id: str
    type: str = Field(description='"image"')
    width: int
    height: int
    url: str = Field(description="The picture (orientation applied, metadata stripped): unguessable, public, "
                                 "immutable; 404 once its post is removed or deleted")
    thumb_url: str = Field(description="At most 400 px on its longer side")
    blurhash: str = Field(description="A BlurHash placeholder to draw while the picture loads")
    created_at: str


MEDIA_IDS_DESCRIPTION = ("Up to 9 of your own uploads (POST /v1/media) not used yet, shown in this order; "
                         "else 422 invalid_media")
