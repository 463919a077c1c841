"""Accounts: registration, login, bearer tokens (revocable at once), the CLI's user creation.

Tokens are opaque random strings; only their SHA-256 is stored, so a leaked database does not
leak sessions, and revoking one (or suspending its user) takes effect on the next request.

Checking a token is on every request, so its answer is kept in Redis for a minute
(:class:`TokenCache`) and every write that could change it — logout, revoking a user's tokens,
deleting or suspending a user — deletes it at once, for every API process. Only tokens of active
users are cached; a token's entry never outlives the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError
from redis.exceptions import RedisError

from solomo.core.autopipe import shared
from solomo.core.closecodes import UNAUTHORIZED
from solomo.core.control import SOCKET_CLOSE, close_command, publish_disconnect
from solomo.core.errors import ApiError, Conflict, Invalid, NotFound, Unauthorized
from solomo.core.jsonio import rfc3339
from solomo.core.keys import TOKEN_GENERATION, TOKEN_PREFIX, TOKEN_USER_PREFIX
from solomo.core.mongo import Database
from solomo.core.redistypes import RedisClient
from solomo.core.scripts import LuaScript
from solomo.core.searchkeys import user_keys
from solomo.core.timeutil import aware

log = logging.getLogger("solomo.accounts")

Role = Literal["user", "merchant", "moderator"]
ROLES: tuple[str, ...] = ("user", "merchant", "moderator")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{3,32}$")

INDEXES = {
    "users": [
        IndexModel([("username_lower", ASCENDING)], unique=True, name="username_unique"),
        # the few users with a pending socket close (solomo.core.control), read by every hub
        IndexModel([(f"{SOCKET_CLOSE}.at", ASCENDING)], name="socket_close_pending",
                   partialFilterExpression={SOCKET_CLOSE: {"$exists": True}}),
    ],
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

    @classmethod
    def of(cls, user: dict[str, Any]) -> Principal:
        """The principal of a user document (``_id``, ``username``, ``display_name``, ``role``)."""
        return cls(user["_id"], user["username"], user.get("display_name") or user["username"],
                   user.get("role", "user"))

    @property
    def sid(self) -> str:
        return str(self.id)

    def summary(self) -> dict[str, str]:
        """The contract's UserSummary of the caller (as :func:`user_summary` gives it for a document)."""
        return {"id": self.sid, "username": self.username, "display_name": self.display_name}


def user_public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "username": doc["username"],
        "display_name": doc.get("display_name") or doc["username"],
        "role": doc["role"],
        "bio": doc.get("bio") or "",
        "avatar_url": doc.get("avatar_url"),
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
    def __init__(self, db: Database, hashing: PasswordHashing, token_ttl_days: int,
                 token_cache: TokenCache | None = None, max_tokens: int = 50) -> None:
        self.db = db
        self.hashing = hashing
        self.token_ttl = timedelta(days=token_ttl_days)
        self.token_cache = token_cache or TokenCache(None)
        self.max_tokens = max_tokens
        """Live tokens per account (``settings.max_tokens_per_user``): :meth:`issue_token` keeps the newest."""

    async def create_user(
        self, username: str, password: str, role: str = "user", display_name: str | None = None
    ) -> dict[str, Any]:
        if not USERNAME_RE.match(username):
            raise Invalid("username must be 3..32 letters, digits or _", code="invalid")
        self.check_new_password(password)
        if role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}")
        shown = (display_name or "").strip() or username
        doc = {
            "_id": ObjectId(),
            "username": username,
            "username_lower": username.lower(),
            "display_name": shown,
            "role": role,
            "password_hash": await self.hashing.hash(password),
            "status": "active",
            "followers_count": 0,
            "following_count": 0,
            "created_at": datetime.now(UTC),
        }
        doc["search_keys"] = user_keys(username, shown)  # search (solomo.core.searchkeys)
        try:
            await self.db.users.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("that username is taken", code="username_taken") from None
        return doc

    async def issue_token(self, user_id: ObjectId, *, user: dict[str, Any] | None = None,
                          generation: str | None = None) -> str:
        """A new token for ``user_id``. With ``user``, the active user's document read *after*
        ``generation`` (:meth:`TokenCache.generation`), the token's principal is cached at once: the
        session's first request then finds it in Redis instead of checking MongoDB (a suspension
        between the read and the fill bumps the generation, and the fill is skipped).

        The account keeps its newest :attr:`max_tokens` tokens: each sign-in adds one for 30 days
        (and entries in the token cache), so without a cap one account could pile up any number."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires_at = now + self.token_ttl
        await self.db.tokens.insert_one(
            {"_id": hash_token(token), "user_id": user_id, "created_at": now, "expires_at": expires_at}
        )
        if user is not None and generation is not None:
            await self.token_cache.put(hash_token(token), Principal.of(user), generation, expires_at)
        await self._keep_newest(user_id)
        return token

    async def _keep_newest(self, user_id: ObjectId) -> None:
        """Revokes the user's tokens past the newest :attr:`max_tokens` (a short sort: the cap keeps
        every account's list short)."""
        cursor = self.db.tokens.find({"user_id": user_id}, {"_id": 1}, sort=[("created_at", -1), ("_id", -1)],
                                     skip=self.max_tokens)
        stale = [str(doc["_id"]) async for doc in cursor]
        if stale:
            await self.revoke_hashes(user_id, stale, "signed in on too many devices")

    async def login(self, username: str, password: str) -> tuple[dict[str, Any], str]:
        generation = await self.token_cache.generation()  # before the user is read: see TokenCache
        doc = await self.db.users.find_one({"username_lower": username.lower()})
        ok = await self.hashing.verify(doc.get("password_hash") if doc else None, password)
        if not doc or not ok or doc.get("status") == "deleted":
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        if doc.get("status") == "suspended":
            raise Unauthorized("this account is suspended", code="account_suspended")
        return doc, await self.issue_token(doc["_id"], user=doc, generation=generation)

    async def revoke_token(self, token: str) -> None:
        hashed = hash_token(token)
        doc = await self.db.tokens.find_one_and_delete({"_id": hashed}, {"user_id": 1})
        await self.token_cache.forget(doc["user_id"] if doc else None, hashed)

    async def revoke_hashes(self, user_id: ObjectId, hashes: list[str], reason: str) -> None:
        """Revokes these tokens of the user as a logout revokes one, at once in every API process:
        MongoDB first, then the user's cached entries, then the sockets opened with them close with
        4401 (best effort, as in :meth:`revoke_all`)."""
        await self.db.tokens.delete_many({"_id": {"$in": hashes}, "user_id": user_id})
        await self.token_cache.forget(user_id, *hashes)
        if self.token_cache.redis is None:
            return
        try:
            for hashed in hashes:
                await publish_disconnect(self.token_cache.redis, str(user_id), UNAUTHORIZED, reason, token_hash=hashed)
        except RedisError as exc:
            log.warning("could not close the sockets of %s: %s", user_id, exc)

    async def revoke_all(self, user_id: ObjectId, reason: str = "tokens revoked") -> None:
        """Revokes every token of the user; their sockets close with 4401 at once (best effort: a
        socket that misses it fails its next token re-check, ``settings.ws_recheck_s``)."""
        await self.db.tokens.delete_many({"user_id": user_id})
        await self.token_cache.forget(user_id)
        if self.token_cache.redis is not None:
            try:
                await publish_disconnect(self.token_cache.redis, str(user_id), UNAUTHORIZED, reason)
            except RedisError as exc:
                log.warning("could not close the sockets of %s: %s", user_id, exc)

    async def revoke_others(self, user_id: ObjectId, keep_hash: str, reason: str = "password changed") -> None:
        """Revokes every token of the user but ``keep_hash`` (the caller's), at once in every API
        process: MongoDB first, then the cached entries (all of the user's: the kept one is simply
        checked afresh), then the other tokens' sockets close with 4401 (best effort, as in
        :meth:`revoke_all`)."""
        await self.db.tokens.delete_many({"user_id": user_id, "_id": {"$ne": keep_hash}})
        await self.token_cache.forget(user_id)
        if self.token_cache.redis is not None:
            try:
                await publish_disconnect(self.token_cache.redis, str(user_id), UNAUTHORIZED, reason, keep=keep_hash)
            except RedisError as exc:
                log.warning("could not close the sockets of %s: %s", user_id, exc)

    async def check_password(self, user_id: ObjectId, password: str) -> dict[str, Any]:
        """The active account if ``password`` is its password; else 403 ``invalid_credentials``
        (the caller is signed in: a 401 would tell a client its token is bad)."""
        doc = await self.get(user_id)
        if not await self.hashing.verify(doc.get("password_hash"), password):
            raise ApiError("the password is wrong", status=403, code="invalid_credentials")
        return doc

    @staticmethod
    def check_new_password(password: str) -> None:
        """422 for a password too short to be set."""
        if len(password) < 8:
            raise Invalid("password must be at least 8 characters", code="invalid")

    async def set_password(self, user_id: ObjectId, password: str) -> None:
        self.check_new_password(password)
        await self.db.users.update_one({"_id": user_id}, {"$set": {"password_hash": await self.hashing.hash(password)}})

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
        """Marks an account deleted and revokes its tokens (used by the CLI and tests); its sockets
        close at once, and through the ``socket_close`` outbox if that message is lost."""
        await self.db.users.update_one({"_id": user_id}, {"$set": {
            "status": "deleted", SOCKET_CLOSE: close_command(UNAUTHORIZED, "account deleted")}})
        await self.revoke_all(user_id, "account deleted")


TOKEN_CACHE_TTL_S = 300.0
"""How long a cached token may be used without MongoDB. Revocation, suspension and deletion drop the
entries explicitly (:meth:`TokenCache.forget`); this only bounds an entry that survived a failed drop.
Was 60 s: 2,000 sockets re-checking their tokens every 30 s then missed together once a minute, and the
MongoDB reads behind those misses were a fifth of the API's CPU in the soak."""

TOKEN_CACHE_SPREAD = 0.2
"""Each entry lives a random 80–100 % of the TTL, so entries filled together do not expire together."""


# KEYS: the generation, the entry, the user's set (one hash tag). ARGV: the generation read before
# the MongoDB reads, the entry, its ttl (ms), the token hash, the set's ttl (s).
_FILL = LuaScript("token_cache_fill", """
local seen = redis.call('GET', KEYS[1]) or ''
if seen ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return 1
""")


# KEYS: the generation, the user's set of cached hashes (or nothing). Bumps the generation and
# returns the hashes cached for the user.
_BUMP = LuaScript("token_cache_bump", """
redis.call('INCR', KEYS[1])
if KEYS[2] then return redis.call('SMEMBERS', KEYS[2]) end
return {}
""")


class TokenCache:
    """token hash → :class:`Principal` in Redis, for :data:`TOKEN_CACHE_TTL_S` at most.

    Keys (one hash tag, ``{auth}``): ``{auth}:tok:<hash>`` (the principal), ``{auth}:user:<uid>``
    (the hashes cached for a user, so a user's entries can all be deleted) and ``{auth}:gen``, a
    counter every invalidation bumps.

    A fill must not store what an invalidation has just deleted: a request that read an active
    user from MongoDB just before a suspension could otherwise write its stale answer back after
    the suspension's delete. So a filler reads ``auth:gen`` *before* its MongoDB reads and stores
    only if it is unchanged (one script: compare, then set). An invalidation runs after its
    MongoDB write, bumps the counter, *then* lists the user's entries and deletes them: a fill
    that read MongoDB before that write either finds the counter changed or wrote an entry before
    the bump, which the invalidation then lists and deletes.

    With no Redis (``redis=None``) or when Redis fails, tokens are simply checked in MongoDB.
    """

    PREFIX: ClassVar[str] = TOKEN_PREFIX
    USER_PREFIX: ClassVar[str] = TOKEN_USER_PREFIX
    GEN: ClassVar[str] = TOKEN_GENERATION

    def __init__(self, redis: RedisClient | None, ttl_s: float = TOKEN_CACHE_TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def lookup(self, hashed: str) -> tuple[Principal | None, str | None]:
        """(the cached principal, or None; the generation to fill with on a miss, None: do not
        fill) — one round trip: the generation is read with the entry, before any MongoDB read."""
        if self.redis is None:
            return None, None
        try:
            keys = (self.PREFIX + hashed, self.GEN)  # one slot ({auth}): one MGET on a cluster too
            raw, generation = (await shared(self.redis).run(lambda pipe: pipe.execute_command("MGET", *keys)))[0]
        except RedisError as exc:
            log.warning("token cache unavailable: %s", exc)
            return None, None
        if raw is None:
            return None, str(generation or "")
        uid, username, display_name, role = orjson.loads(raw)
        return Principal(ObjectId(uid), username, display_name, role), None

    async def get(self, hashed: str) -> Principal | None:
        return (await self.lookup(hashed))[0]

    async def generation(self) -> str | None:
        """Read before the MongoDB reads of a fill; ``None``: do not fill."""
        if self.redis is None:
            return None
        try:
            return str(await self.redis.get(self.GEN) or "")
        except RedisError:
            return None

    async def put(self, hashed: str, principal: Principal, generation: str, expires_at: datetime) -> None:
        spread = self.ttl_s * (1.0 - TOKEN_CACHE_SPREAD * random.random())
        ttl_ms = int(min(spread, (expires_at - datetime.now(UTC)).total_seconds()) * 1000)
        if self.redis is None or ttl_ms <= 0:
            return
        value = orjson.dumps([principal.sid, principal.username, principal.display_name, principal.role])
        try:
            await _FILL(self.redis, [self.GEN, self.PREFIX + hashed, self.USER_PREFIX + principal.sid],
                        [generation, value, ttl_ms, hashed, int(self.ttl_s) * 2 + 1])
        except RedisError as exc:
            log.warning("token cache unavailable: %s", exc)

    async def forget(self, user_id: ObjectId | None, *hashes: str) -> None:
        """Drops every cached token of ``user_id`` (if given) and the given token hashes.

        Call it after the MongoDB write it reflects. A Redis failure is logged, not raised: the
        write is committed; an entry that survived it lives :data:`TOKEN_CACHE_TTL_S` at most.
        """
        if self.redis is None:
            return
        user_set = self.USER_PREFIX + str(user_id) if user_id is not None else None
        try:
            # First the generation (a fill that read MongoDB before the caller's write can no longer
            # store), then the user's entries as they are now: every entry stored before the bump.
            cached = [str(h) for h in await _BUMP(self.redis, [self.GEN, *([user_set] if user_set else [])])]
            doomed = [self.PREFIX + h for h in dict.fromkeys([*cached, *hashes])]
            if user_set is not None:
                doomed.append(user_set)
            if doomed:
                await self.redis.delete(*doomed)
        except RedisError as exc:
            log.error("could not drop cached tokens of %s: %s", user_id, exc)


class Authenticator:
    """Bearer token → :class:`Principal`: from the :class:`TokenCache`, else checked in MongoDB."""

    def __init__(self, db: Database, token_cache: TokenCache | None = None) -> None:
        self.db = db
        self.cache = token_cache or TokenCache(None)

    async def principal_for_token(self, token: str, *, fresh: bool = False) -> Principal:
        """``fresh``: read MongoDB, not the cache (a socket just registered re-checks this way,
        so a suspension that raced its handshake is seen)."""
        if not token or len(token) > 256:
            raise Unauthorized("missing or invalid token")
        hashed = hash_token(token)
        cached, generation = (None, None) if fresh else await self.cache.lookup(hashed)
        if cached is not None:
            return cached
        tok = await self._token_with_user(hashed)
        if tok is None or aware(tok["expires_at"]) <= datetime.now(UTC):
            raise Unauthorized("missing or invalid token")
        user = tok["user"][0] if tok["user"] else None
        if user is None or user.get("status") == "deleted":
            raise Unauthorized("missing or invalid token")
        if user.get("status") == "suspended":
            raise ApiError("this account is suspended", status=401, code="account_suspended")
        principal = Principal.of(user)
        if generation is not None:
            await self.cache.put(hashed, principal, generation, aware(tok["expires_at"]))
        return principal

    async def _token_with_user(self, hashed: str) -> dict[str, Any] | None:
        """The token document with its user (``user``: a list of at most one) — one round trip."""
        cursor = await self.db.tokens.aggregate([
            {"$match": {"_id": hashed}},
            {"$lookup": {"from": "users", "localField": "user_id", "foreignField": "_id", "as": "user",
                         "pipeline": [{"$project": {"username": 1, "display_name": 1, "role": 1, "status": 1}}]}},
        ])
        rows = await cursor.to_list(1)
        return rows[0] if rows else None

    async def forget_user(self, user_id: ObjectId) -> None:
        """After a change to the user's status (suspension): its tokens are checked afresh."""
        await self.cache.forget(user_id)

    async def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized("send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send Authorization: Bearer <token>")
        return await self.principal_for_token(token.strip())
