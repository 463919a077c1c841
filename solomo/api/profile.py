"""Routes: the signed-in user manages their account — profile edits, password change, deletion."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from profiles.erasure import erase_account
from profiles.password import change_password
from profiles.profile import BIO_MAX, DISPLAY_NAME_MAX, me_public, update_profile
from solomo.accounts import hash_token
from solomo.api.models import MeOut, ObjectIdStr, StrictBody
from solomo.http import Ctx, endpoint


class ProfileIn(StrictBody):
    """Only the fields sent change; ``avatar_media_id`` null removes the photo."""

    display_name: str | None = Field(None, min_length=1, max_length=DISPLAY_NAME_MAX)
    bio: str | None = Field(None, max_length=BIO_MAX, description="0..160 characters")
    avatar_media_id: ObjectIdStr | None = Field(None, description="An image you uploaded (POST /v1/media), or null")
    offers_from_unfollowed: bool | None = Field(
        None, description="false: no offers from stores you do not follow")

    @field_validator("display_name", "bio", "offers_from_unfollowed", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may be left out but not null")
        return v


class PasswordIn(StrictBody):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class DeleteIn(StrictBody):
    password: str = Field(min_length=1, max_length=256)


def _token_hash(ctx: Ctx) -> str:
    return hash_token(ctx.request.headers.get("authorization", "").partition(" ")[2].strip())


@endpoint("PATCH /v1/me",
          summary="Edit your profile", body=ProfileIn, response=MeOut, tags=["profile"], rate="profile_edit",
          errors={422: "invalid, content_rejected, invalid_media"}, operation_id="profile_update",
          description="Display name and bio pass the word filter: a block or review word → 422 content_rejected. "
                      "A new name shows at once in posts and answers. Edits are limited per user "
                      "(settings.rate_limits.profile_edit): 429 rate_limited with Retry-After.")
async def patch_me(ctx: Ctx) -> dict[str, Any]:
    b: ProfileIn = ctx.body
    doc = await update_profile(ctx.services, ctx.user.id, **{k: getattr(b, k) for k in b.model_fields_set})
    return me_public(doc)


@endpoint("POST /v1/me/password",
          summary="Change your password", body=PasswordIn, status=204, tags=["profile"],
          errors={403: "invalid_credentials", 422: "invalid", 429: "rate_limited"},
          operation_id="profile_change_password",
          description="Every other token of the account stops working at once (its sockets close with 4401); "
                      "the token making the change keeps working. A wrong old password → 403 invalid_credentials; "
                      "too many wrong ones → 429 rate_limited (settings.rate_limits.password).")
async def post_password(ctx: Ctx) -> None:
    b: PasswordIn = ctx.body
    await change_password(ctx.services, ctx.user.id, _token_hash(ctx), b.old_password, b.new_password)


@endpoint("DELETE /v1/me",
          summary="Delete your account", body=DeleteIn, status=204, tags=["profile"],
          errors={403: "invalid_credentials", 429: "rate_limited"}, operation_id="profile_delete",
          description="Tokens revoked and sockets closed at once; posts and comments leave every feed; check-ins "
                      "(with their device fixes), the live position, likes and follows are erased; vouchers and "
                      "reports are anonymised. The username stays reserved. A wrong password → 403 "
                      "invalid_credentials (limited as for a password change).")
async def delete_me(ctx: Ctx) -> None:
    await erase_account(ctx.services, ctx.user.id, ctx.body.password)
