"""Routes: block and mute users, and the lists to undo them (contract: Blocks and mutes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from feed import blocking
from feed.blocking import Kind
from solomo.accounts import user_public
from solomo.api.models import UserPage
from solomo.core.ids import parse_id
from solomo.core.pagination import PageQuery
from solomo.http import Ctx, endpoint

RATE = "follow"  # blocking unfollows both ways: it shares the follow budget
_BLOCK = {404: "not_found", 409: "too_many_blocks", 422: "cannot_block_self, cannot_block_moderator"}
_MUTE = {404: "not_found", 409: "too_many_mutes", 422: "cannot_mute_self, cannot_mute_moderator"}


class RelationshipOut(BaseModel):
    blocking: bool = Field(description="You block this user")
    muting: bool = Field(description="You mute this user")
    blocked_by: bool = Field(description="This user blocks you")


def _target(ctx: Ctx) -> Any:
    return parse_id(ctx.path["user_id"], "user")


@endpoint("POST /v1/users/{user_id}/block",
          summary="Block a user (idempotent)", status=204, tags=["social"], rate=RATE, errors=_BLOCK,
          description="Removes the follows both ways. Afterwards the blocked user gets 403 blocked when following, "
                      "liking, commenting on, replying to or reposting the blocker's posts; neither sees the other's "
                      "posts (feeds, search, GET /v1/posts/{id} answers 404, the user's posts list is empty), and "
                      "the blocked user's actions do not notify the blocker. At most 10,000 blocks per user.")
async def block(ctx: Ctx) -> None:
    await blocking.shut_out(ctx.services, "block", ctx.user.id, _target(ctx))


@endpoint("DELETE /v1/users/{user_id}/block",
          summary="Unblock a user (idempotent)", status=204, tags=["social"], rate=RATE,
          errors={404: "not_found", 422: "cannot_block_self"},
          description="The two see each other's posts again; follows removed by the block stay removed.")
async def unblock(ctx: Ctx) -> None:
    await blocking.let_in(ctx.services, "block", ctx.user.id, _target(ctx))


@endpoint("POST /v1/users/{user_id}/mute",
          summary="Mute a user (idempotent)", status=204, tags=["social"], rate=RATE, errors=_MUTE,
          description="The muted user's posts leave your home, local and topic feeds and search, and their actions "
                      "do not notify you. They are not told, and can still follow you and see your posts. "
                      "At most 10,000 mutes per user.")
async def mute(ctx: Ctx) -> None:
    await blocking.shut_out(ctx.services, "mute", ctx.user.id, _target(ctx))


@endpoint("DELETE /v1/users/{user_id}/mute",
          summary="Unmute a user (idempotent)", status=204, tags=["social"], rate=RATE,
          errors={404: "not_found", 422: "cannot_mute_self"})
async def unmute(ctx: Ctx) -> None:
    await blocking.let_in(ctx.services, "mute", ctx.user.id, _target(ctx))


async def _list(ctx: Ctx, kind: Kind) -> dict[str, Any]:
    q: PageQuery = ctx.query
    before = ctx.services.cursors.decode_position(q.cursor)
    users, nxt = await blocking.page_users(ctx.services, kind, ctx.user.id, before, q.limit)
    return ctx.services.cursors.page([user_public(u) for u in users], nxt)


@endpoint("GET /v1/me/blocks",
          summary="The users you block, newest first", query=PageQuery, response=UserPage, tags=["social"],
          errors={400: "invalid_cursor"})
async def my_blocks(ctx: Ctx) -> dict[str, Any]:
    return await _list(ctx, "block")


@endpoint("GET /v1/me/mutes",
          summary="The users you mute, newest first", query=PageQuery, response=UserPage, tags=["social"],
          errors={400: "invalid_cursor"})
async def my_mutes(ctx: Ctx) -> dict[str, Any]:
    return await _list(ctx, "mute")


@endpoint("GET /v1/users/{user_id}/relationship",
          summary="Whether you block or mute a user, and whether they block you", response=RelationshipOut,
          tags=["social"], errors={404: "not_found"})
async def relationship(ctx: Ctx) -> dict[str, Any]:
    return await blocking.relationship(ctx.services, ctx.user.id, _target(ctx))
