"""Routes: Web Push — the application server key, subscribing and unsubscribing a browser."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from push import subscriptions, vapid
from solomo.accounts import hash_token
from solomo.api.models import StrictBody
from solomo.http import Ctx, endpoint

TAGS = ["push"]
_ERRORS = {422: "invalid_endpoint, invalid_keys"}


class PushKeyOut(BaseModel):
    public_key: str = Field(description="The VAPID application server key (uncompressed P-256 point, base64url): "
                            "PushManager.subscribe's applicationServerKey")


class PushKeysIn(StrictBody):
    p256dh: str = Field(min_length=1, max_length=256, description="The browser's P-256 public key, base64url")
    auth: str = Field(min_length=1, max_length=64, description="The 16-byte authentication secret, base64url")


class SubscriptionIn(StrictBody):
    endpoint: str = Field(min_length=1, max_length=4096, description="The push service URL the browser gave")
    keys: PushKeysIn
    expirationTime: float | None = Field(None, description="Sent by PushSubscription.toJSON(); ignored")


class SubscriptionOut(BaseModel):
    endpoint: str


class UnsubscribeIn(StrictBody):
    endpoint: str = Field(min_length=1, max_length=4096)


@endpoint("GET /v1/push/key",
          summary="The VAPID application server key", response=PushKeyOut, tags=TAGS,
          description="Subscribe the browser with it (PushManager.subscribe({applicationServerKey})).")
async def push_key(ctx: Ctx) -> dict[str, Any]:
    return {"public_key": vapid.application_server_key(ctx.services.settings)}


@endpoint("POST /v1/push/subscriptions",
          summary="Subscribe this browser to Web Push", body=SubscriptionIn, response=SubscriptionOut, status=201,
          tags=TAGS, errors=_ERRORS,
          description="Offers and notifications of kind mention, comment, reply and follow reach the user while "
                      "no socket of theirs is open, as Web Push messages whose decrypted body is the event frame "
                      "`{id, type, data}`. The endpoint must be `https` on a public host (port 443), unless its "
                      "`host:port` is listed in `SOLOMO_PUSH_ALLOWED_HOSTS` (then `http` is allowed too); "
                      "otherwise 422 `invalid_endpoint`, decided without any request or DNS lookup. `keys.p256dh` "
                      "must be a P-256 point and `keys.auth` 16 bytes (422 `invalid_keys`). Subscribing an "
                      "endpoint again refreshes it (and moves it to this user); a user keeps at most "
                      "`SOLOMO_PUSH_MAX_SUBSCRIPTIONS` (10), a new one replacing the oldest. A subscription lasts "
                      "as long as the session (token) that made it: signing out ends it.")
async def subscribe(ctx: Ctx) -> dict[str, Any]:
    body: SubscriptionIn = ctx.body
    token = ctx.request.headers["authorization"].partition(" ")[2].strip()  # authenticated: present
    await subscriptions.subscribe(ctx.services, ctx.user.id, hash_token(token), body.endpoint, body.keys.p256dh,
                                  body.keys.auth)
    return {"endpoint": body.endpoint}


@endpoint("DELETE /v1/push/subscriptions",
          summary="Unsubscribe a browser (idempotent)", body=UnsubscribeIn, status=204, tags=TAGS,
          description="Only the caller's own subscription of that endpoint is removed.")
async def unsubscribe(ctx: Ctx) -> None:
    body: UnsubscribeIn = ctx.body
    await subscriptions.unsubscribe(ctx.services, ctx.user.id, body.endpoint)
