"""Accounts: registration, login, bearer tokens (revocable at once), the CLI's user creation.

Tokens are opaque random strings; only their SHA-256 is stored, so a leaked database does not
leak sessions, and revoking one (or suspending its user) takes effect on the next request.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from solomo.errors import ApiError, Conflict, Invalid, NotFound, Unauthorized
from solomo.jsonio import rfc3339

Role = Literal["user", "merchant", "moderator"]
ROLES: tuple[str, ...] = ("user", "merchant", "moderator")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{3,32}$")

INDEXES = {
    "users": [IndexModel([("username_lower", ASCENDING)], unique=True, name="username_unique")],
    "tokens": [
        IndexModel([("user_id", ASCENDING)], name="by_user"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl"),
    ],
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    id: ObjectId
    username: str
    display_name: str
    role: str

    @property
    def sid(self) -> str:
        return str(self.id)


def user_public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "username": doc["username"],
        "display_name": doc.get("display_name") or doc["username"],
        "role": doc["role"],
        "followers_count": int(doc.get("followers_count", 0)),
        "following_count": int(doc.get("following_count", 0)),
        "created_at": rfc3339(doc["created_at"]),
    }


def user_summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(doc["_id"]), "username": doc["username"],
            "display_name": doc.get("display_name") or doc["username"]}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PasswordHashing:
    """argon2id; hashing runs in a thread so the event loop keeps serving."""

    def __init__(self, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy = self._hasher.hash("timing-equaliser")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(hashed or self._dummy, password) and hashed is not None
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)


class Accounts:
    def __init__(self, db: AsyncDatabase, hashing: PasswordHashing, token_ttl_days: int) -> None:
        self.db = db
        self.hashing = hashing
        self.token_ttl = timedelta(days=token_ttl_days)

    async def create_user(
        self, username: str, password: str, role: str = "user", display_name: str | None = None
    ) -> dict[str, Any]:
        if not USERNAME_RE.match(username):
            raise Invalid("username must be 3..32 letters, digits or _", code="invalid")
        if len(password) < 8:
            raise Invalid("password must be at least 8 characters", code="invalid")
        if role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}")
        doc = {
            "_id": ObjectId(),
            "username": username,
            "username_lower": username.lower(),
            "display_name": (display_name or "").strip() or username,
            "role": role,
            "password_hash": await self.hashing.hash(password),
            "status": "active",
            "followers_count": 0,
            "following_count": 0,
            "created_at": datetime.now(UTC),
        }
        try:
            await self.db.users.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("that username is taken", code="username_taken") from None
        return doc

    async def issue_token(self, user_id: ObjectId) -> str:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await self.db.tokens.insert_one(
            {"_id": hash_token(token), "user_id": user_id, "created_at": now, "expires_at": now + self.token_ttl}
        )
        return token

    async def login(self, username: str, password: str) -> tuple[dict[str, Any], str]:
        doc = await self.db.users.find_one({"username_lower": username.lower()})
        ok = await self.hashing.verify(doc.get("password_hash") if doc else None, password)
        if not doc or not ok or doc.get("status") == "deleted":
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        if doc.get("status") == "suspended":
            raise Unauthorized("this account is suspended", code="account_suspended")
        return doc, await self.issue_token(doc["_id"])

    async def revoke_token(self, token: str) -> None:
        await self.db.tokens.delete_one({"_id": hash_token(token)})

    async def revoke_all(self, user_id: ObjectId) -> None:
        await self.db.tokens.delete_many({"user_id": user_id})

    async def get(self, user_id: ObjectId) -> dict[str, Any]:
        doc = await self.db.users.find_one({"_id": user_id, "status": {"$ne": "deleted"}})
        if doc is None:
            raise NotFound("user not found")
        return doc

    async def by_usernames(self, names: list[str]) -> list[dict[str, Any]]:
        lowered = list({n.lower() for n in names})
        if not lowered:
            return []
        cursor = self.db.users.find({"username_lower": {"$in": lowered}, "status": {"$ne": "deleted"}})
        return await cursor.to_list(None)

    async def delete_user(self, user_id: ObjectId) -> None:
        """Marks an account deleted and revokes its tokens (used by the CLI and tests)."""
        await self.db.users.update_one({"_id": user_id}, {"$set": {"status": "deleted"}})
        await self.revoke_all(user_id)


class Authenticator:
    """Bearer token → :class:`Principal`, checked against MongoDB on every request."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def principal_for_token(self, token: str) -> Principal:
        if not token or len(token) > 256:
            raise Unauthorized("missing or invalid token")
        tok = await self.db.tokens.find_one({"_id": hash_token(token)})
        if tok is None or _aware(tok["expires_at"]) <= datetime.now(UTC):
            raise Unauthorized("missing or invalid token")
        user = await self.db.users.find_one(
            {"_id": tok["user_id"]}, {"username": 1, "display_name": 1, "role": 1, "status": 1}
        )
        if user is None or user.get("status") == "deleted":
            raise Unauthorized("missing or invalid token")
        if user.get("status") == "suspended":
            raise ApiError("this account is suspended", status=401, code="account_suspended")
        return Principal(user["_id"], user["username"], user.get("display_name") or user["username"], user["role"])

    async def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized("send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send Authorization: Bearer <token>")
        return await self.principal_for_token(token.strip())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
