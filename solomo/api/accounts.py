"""Routes: register, login, me, users/{id}."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from moderation.screen import screen_profile_text
from profiles.profile import DISPLAY_NAME_MAX, me_public
from solomo.accounts import hash_token, user_public
from solomo.api.models import MeOut, StrictBody, UserOut
from solomo.core import ratelimit
from solomo.core.closecodes import UNAUTHORIZED
from solomo.core.control import disconnect_user
from solomo.core.errors import ApiError
from solomo.core.ids import parse_id
from solomo.http import Ctx, endpoint

log = logging.getLogger("solomo.accounts")


class RegisterIn(StrictBody):
    username: str = Field(pattern=r"^[A-Za-z0-9_]{3,32}$", description="3..32 of [A-Za-z0-9_]")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["user", "merchant"] = "user"
    # the bound PATCH /v1/me keeps: a name given at registration can be sent back unchanged
    display_name: str | None = Field(None, min_length=1, max_length=DISPLAY_NAME_MAX)


class LoginIn(StrictBody):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class AuthOut(BaseModel):
    user: UserOut
    token: str


@endpoint("POST /v1/auth/register",
          summary="Create an account", body=RegisterIn, response=AuthOut, status=201, auth=None,
          tags=["accounts"], errors={409: "username_taken", 422: "content_rejected", 429: "rate_limited"},
          description="New accounts are limited per client address (settings.rate_limits.register): "
                      "429 rate_limited with Retry-After. The display name passes the word filter: a block "
                      "or review word → 422 content_rejected (names have no review queue).")
async def register(ctx: Ctx) -> dict[str, Any]:
    body: RegisterIn = ctx.body
    await ratelimit.enforce(ctx.services, "register", ratelimit.client_ip(ctx.request))
    await screen_profile_text(ctx.services, body.display_name)
    accounts = ctx.services.accounts
    generation = await accounts.token_cache.generation()  # before the account exists: see TokenCache
    doc = await accounts.create_user(body.username, body.password, body.role, body.display_name)
    token = await accounts.issue_token(doc["_id"], user=doc, generation=generation)
    return {"user": user_public(doc), "token": token}


@endpoint("POST /v1/auth/login",
          summary="Log in", body=LoginIn, response=AuthOut, auth=None, tags=["accounts"],
          errors={401: "invalid_credentials, account_suspended", 429: "rate_limited"},
          description="Throttled against password guessing, per client address: failed logins per "
                      "username and address (settings.rate_limits.login), failed logins per address "
                      "(login_failed_ip) and all attempts per address (login_ip) → 429 rate_limited with "
                      "Retry-After, answered before the password is checked. Failures from other addresses "
                      "never lock an account's owner out.")
async def login(ctx: Ctx) -> dict[str, Any]:
    body: LoginIn = ctx.body
    services, ip = ctx.services, ratelimit.client_ip(ctx.request)
    # per username *and* address: someone guessing from elsewhere cannot lock the owner out
    pair = ratelimit.login_key(body.username, ip)
    await ratelimit.enforce(services, "login_ip", ip)
    await ratelimit.ensure_room(services, "login_failed_ip", ip)
    await ratelimit.ensure_room(services, "login", pair)
    try:
        doc, token = await services.accounts.login(body.username, body.password)
    except ApiError as exc:
        if exc.code == "invalid_credentials":
            await ratelimit.count(services, "login", pair)
            await ratelimit.count(services, "login_failed_ip", ip)
        raise
    return {"user": user_public(doc), "token": token}


@endpoint("POST /v1/auth/logout",
          summary="Log out (revoke this token)", tags=["accounts"], status=204,
          description="The token stops working at once, and sockets opened with it close with 4401; the "
                      "account's other tokens and their sockets are not affected.")
async def logout(ctx: Ctx) -> None:
    header = ctx.request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    await ctx.services.accounts.revoke_token(token)
    try:
        await disconnect_user(ctx.services, ctx.user.sid, UNAUTHORIZED, "logged out", token_hash=hash_token(token))
    except Exception as exc:  # the token is revoked: a socket left open is refused when it reconnects
        log.warning("could not close the sockets of a revoked token: %s", exc)


@endpoint("GET /v1/me",
          summary="The signed-in account", response=MeOut, tags=["accounts"])
async def me(ctx: Ctx) -> dict[str, Any]:
    return me_public(await ctx.services.accounts.get(ctx.user.id))


@endpoint("GET /v1/users/{user_id}",
          summary="A user's profile", response=UserOut, tags=["accounts"])
async def get_user(ctx: Ctx) -> dict[str, Any]:
    return user_public(await ctx.services.accounts.get(parse_id(ctx.path["user_id"], "user")))

