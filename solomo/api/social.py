"""Routes: follow and unfollow users and stores; follower and following lists."""

from __future__ import annotations

from typing import Any, Literal

from feed import follows
from solomo.accounts import user_public
from solomo.api.models import UserPage
from solomo.core.ids import parse_id
from solomo.core.pagination import PageQuery
from solomo.http import Ctx, endpoint

_ERRORS = {404: "not_found", 422: "cannot_follow_self"}
RATE = "follow"  # follow and unfollow share one per-user budget (each toggle notifies and backfills)


@endpoint("POST /v1/users/{user_id}/follow",
          summary="Follow a user (idempotent)", status=204, tags=["social"], rate=RATE,
          errors={**_ERRORS, 409: "too_many_follows"})
async def follow_user(ctx: Ctx) -> None:
    await follows.follow(ctx.services, ctx.user.id, "user", parse_id(ctx.path["user_id"], "user"))


@endpoint("DELETE /v1/users/{user_id}/follow",
          summary="Unfollow a user (idempotent)", status=204, tags=["social"], rate=RATE, errors=_ERRORS)
async def unfollow_user(ctx: Ctx) -> None:
    await follows.unfollow(ctx.services, ctx.user.id, "user", parse_id(ctx.path["user_id"], "user"))


@endpoint("POST /v1/stores/{store_id}/follow",
          summary="Follow a store (idempotent)", status=204, tags=["social"], rate=RATE,
          errors={404: "not_found", 409: "too_many_follows"},
          description="Posts the store's owner makes about the store reach its followers' home feeds.")
async def follow_store(ctx: Ctx) -> None:
    await follows.follow(ctx.services, ctx.user.id, "store", parse_id(ctx.path["store_id"], "store"))


@endpoint("DELETE /v1/stores/{store_id}/follow",
          summary="Unfollow a store (idempotent)", status=204, tags=["social"], rate=RATE, errors={404: "not_found"})
async def unfollow_store(ctx: Ctx) -> None:
    await follows.unfollow(ctx.services, ctx.user.id, "store", parse_id(ctx.path["store_id"], "store"))


async def _list(ctx: Ctx, direction: Literal["followers", "following"]) -> dict[str, Any]:
    q: PageQuery = ctx.query
    before = ctx.services.cursors.decode_position(q.cursor)
    users, nxt = await follows.page_users(ctx.services, parse_id(ctx.path["user_id"], "user"),
                                          direction, before, q.limit)
    return ctx.services.cursors.page([user_public(u) for u in users], nxt)


@endpoint("GET /v1/users/{user_id}/followers",
          summary="A user's followers, newest first", query=PageQuery, response=UserPage, tags=["social"],
          errors={400: "invalid_cursor"})
async def followers(ctx: Ctx) -> dict[str, Any]:
    return await _list(ctx, "followers")


@endpoint("GET /v1/users/{user_id}/following",
          summary="The users a user follows, newest first", query=PageQuery, response=UserPage, tags=["social"],
          errors={400: "invalid_cursor"})
async def following(ctx: Ctx) -> dict[str, Any]:
    return await _list(ctx, "following")

