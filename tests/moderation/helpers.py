"""Helpers for the moderation tests: posts written through the feed's domain code, word lists."""

from __future__ import annotations

import uuid
from typing import Any

from bson import ObjectId

from solomo.accounts import Principal
from tests.support import Account, random_point


def principal(acct: Account) -> Principal:
    return Principal(ObjectId(acct.id), acct.username, acct.username, acct.role)


async def make_post(services: Any, acct: Account, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """A post document stored the way ``POST /v1/posts`` stores it (feed.posts.create_post)."""
    from feed.posts import create_post

    if "lat" not in kwargs:
        kwargs["lat"], kwargs["lng"] = random_point()
    return await create_post(services, principal(acct), text or f"hello {uuid.uuid4().hex[:8]}", **kwargs)


async def establish(services: Any, acct: Account) -> Account:
    """Makes an account one whose reports count toward the automatic hide: a day old, with a post."""
    from datetime import UTC, datetime, timedelta

    age = timedelta(hours=services.settings.report_min_account_age_h, minutes=1)
    await services.db.users.update_one({"_id": ObjectId(acct.id)}, {"$set": {"created_at": datetime.now(UTC) - age}})
    await make_post(services, acct)
    return acct


def token(prefix: str = "zq") -> str:
    """A random ASCII word no other test text contains."""
    return prefix + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def has_route(app: Any, path: str, method: str) -> bool:
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": method}
    return any(getattr(r, "matches", None) and r.matches(scope)[0] == Match.FULL for r in app.routes)
