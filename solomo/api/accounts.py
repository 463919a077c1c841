"""Routes: register, login, me, users/{id}."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from starlette.routing import Route

from solomo.accounts import user_public
from solomo.api.models import StrictBody, UserOut
from solomo.http import Ctx, endpoint
from solomo.ids import parse_id


class RegisterIn(StrictBody):
    username: str = Field(pattern=r"^[A-Za-z0-9_]{3,32}$", description="3..32 of [A-Za-z0-9_]")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["user", "merchant"] = "user"
    display_name: str | None = Field(None, min_length=1, max_length=64)


class LoginIn(StrictBody):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class AuthOut(BaseModel):
    user: UserOut
    token: str


@endpoint(summary="Create an account", body=RegisterIn, response=AuthOut, status=201, auth=None,
          tags=["accounts"], errors={409: "username_taken"})
async def register(ctx: Ctx) -> dict:
    body: RegisterIn = ctx.body
    doc = await ctx.services.accounts.create_user(body.username, body.password, body.role, body.display_name)
    token = await ctx.services.accounts.issue_token(doc["_id"])
    return {"user": user_public(doc), "token": token}


@endpoint(summary="Log in", body=LoginIn, response=AuthOut, auth=None, tags=["accounts"],
          errors={401: "invalid_credentials"})
async def login(ctx: Ctx) -> dict:
    doc, token = await ctx.services.accounts.login(ctx.body.username, ctx.body.password)
    return {"user": user_public(doc), "token": token}


@endpoint(summary="Log out (revoke this token)", tags=["accounts"], status=204)
async def logout(ctx: Ctx) -> None:
    header = ctx.request.headers.get("authorization", "")
    await ctx.services.accounts.revoke_token(header.partition(" ")[2].strip())


@endpoint(summary="The signed-in account", response=UserOut, tags=["accounts"])
async def me(ctx: Ctx) -> dict:
    return user_public(await ctx.services.accounts.get(ctx.user.id))


@endpoint(summary="A user's profile", response=UserOut, tags=["accounts"])
async def get_user(ctx: Ctx) -> dict:
    return user_public(await ctx.services.accounts.get(parse_id(ctx.path["user_id"], "user")))


routes = [
    Route("/v1/auth/register", register, methods=["POST"]),
    Route("/v1/auth/login", login, methods=["POST"]),
    Route("/v1/auth/logout", logout, methods=["POST"]),
    Route("/v1/me", me, methods=["GET"]),
    Route("/v1/users/{user_id}", get_user, methods=["GET"]),
]
