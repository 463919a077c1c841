"""Spending points: one-time spend codes the user shows, charged by a partner store's owner.

A code is 50 random bits (:mod:`offers.codes`: read aloud or scanned as a QR code), valid for
:data:`CODE_TTL`. Only its keyed hash is stored (``code_hash``), so neither a reader of the
database nor anything listing codes learns one that works; the counter looks the typed or
scanned code up by its hash. Guessing is limited per store like failed redemptions: unknown codes
count towards ``failed_points_charge``, and once a store has used up its failures every charge
there answers 429 until the window moves on.

A charge is one transaction (:func:`charge`): the code moves ``open`` → ``used`` only while it is
open and unexpired (so it charges once, whatever the concurrency), the user's account is checked
(a suspended user's code is refused), and :func:`loyalty.ledger.debit` takes the points only if
the balance covers them — any refusal aborts the whole transaction, code included, so a refused
charge takes nothing and leaves the code usable. Charges of one user are queued per API process
(:func:`_user_turn`): they all write the one balance document, and a queue is cheaper than
MongoDB's write-conflict retries; across processes the transaction alone keeps them correct.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from loyalty.ledger import debit
from loyalty.programme import require_enabled
from offers import codes
from offers.stores import owned_store
from solomo.core import ratelimit
from solomo.core.errors import Conflict, Forbidden, Gone, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction_again_on_duplicate

CODE_TTL = timedelta(minutes=5)
PURGE_AFTER = timedelta(days=1)
"""Used and expired codes are dropped (TTL index) a day later: 410/409 answers stay meaningful meanwhile."""
QR_PREFIX = "solomo:points:"
FAILED_CHARGE = "failed_points_charge"  # the rate limit action: failed charges per store
CODE_ATTEMPTS = 4
POINTS_MIN, POINTS_MAX = 1, 100_000


def code_hash(services: Services, code: str) -> str:
    """Keyed (the app's secret), so a copy of the collection cannot be searched for a code offline."""
    key = hashlib.sha256(("points-code:" + services.settings.secret_key).encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def normalize(raw: str) -> str | None:
    """What the clerk typed or scanned (the QR payload, any case, dashes and spaces) → the code."""
    text = raw.strip()
    if text.lower().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX):]
    return codes.normalize(text)


async def create_code(services: Services, user_id: ObjectId, now: datetime | None = None) -> dict[str, Any]:
    """A fresh code for the signed-in user (a suspended account cannot sign in, so cannot get one)."""
    now = now or datetime.now(UTC)
    for _ in range(CODE_ATTEMPTS):
        code = codes.new_code()
        expires = now + CODE_TTL
        doc = {"_id": ObjectId(), "user_id": user_id, "code_hash": code_hash(services, code), "status": "open",
               "created_at": now, "expires_at": expires, "purge_at": expires + PURGE_AFTER}
        try:
            await services.db.points_spend_codes.insert_one(doc)
        except DuplicateKeyError:
            continue  # a 50-bit collision: draw another
        shown = codes.display(code)
        return {"code": shown, "qr": QR_PREFIX + shown, "expires_at": rfc3339(expires)}
    raise Conflict("could not allocate a spend code; retry", code="conflict")


@asynccontextmanager
async def _user_turn(services: Services, user_id: ObjectId) -> AsyncIterator[None]:
    """One charge of ``user_id`` at a time in this process (see the module docstring)."""
    turns: dict[ObjectId, list[Any]] = services.extras.setdefault("loyalty.charge_turns", {})
    turn = turns.get(user_id)
    if turn is None:
        turn = turns[user_id] = [asyncio.Lock(), 0]
    turn[1] += 1
    try:
        async with turn[0]:
            yield
    finally:
        turn[1] -= 1
        if turn[1] == 0:
            turns.pop(user_id, None)


async def charge(services: Services, owner_id: ObjectId, store_id: str, raw_code: str, points: int
                 ) -> dict[str, Any]:
    """The owner of an enabled store charges ``points`` to the code's holder.

    403 another's store or ``not_in_programme``, 429 too many failed attempts, 404 ``unknown_code``,
    409 ``code_used`` / ``insufficient_points``, 410 ``code_expired``, 403 ``account_suspended``.
    Returns the ledger entry."""
    if isinstance(points, bool) or not isinstance(points, int) or not POINTS_MIN <= points <= POINTS_MAX:
        raise ValueError(f"points must be an integer {POINTS_MIN}..{POINTS_MAX}")
    store = await owned_store(services, store_id, owner_id)
    require_enabled(store)
    sid = str(store["_id"])
    await ratelimit.ensure_room(services, FAILED_CHARGE, sid)
    code = normalize(raw_code)
    found = await services.db.points_spend_codes.find_one({"code_hash": code_hash(services, code)}) if code else None
    if found is None:
        await ratelimit.count(services, FAILED_CHARGE, sid)
        raise NotFound("no spend code has this code", code="unknown_code")

    async def body(txn: Txn) -> dict[str, Any]:
        db, session = services.db, txn.session
        now = datetime.now(UTC)
        taken = await db.points_spend_codes.update_one(
            {"_id": found["_id"], "status": "open", "expires_at": {"$gt": now}},
            {"$set": {"status": "used", "used_at": now, "store_id": store["_id"], "points": points}},
            session=session)
        if taken.modified_count != 1:
            current = await db.points_spend_codes.find_one({"_id": found["_id"]}, {"status": 1}, session=session)
            if current is None:
                raise NotFound("no spend code has this code", code="unknown_code")
            if current["status"] == "used":
                raise Conflict("this spend code was already used", code="code_used")
            raise Gone("this spend code has expired", code="code_expired")
        holder = await db.users.find_one({"_id": found["user_id"]}, {"status": 1}, session=session)
        if holder is None or holder.get("status") in ("suspended", "deleted"):
            raise Forbidden("this account cannot spend points", code="account_suspended")
        return await debit(services, txn, user_id=found["user_id"], store=store, points=points,
                           source_id=found["_id"], once=f"spend:{found['_id']}", now=now)

    async with _user_turn(services, found["user_id"]):
        return await run_transaction_again_on_duplicate(services, body)


def charge_public(entry: dict[str, Any]) -> dict[str, Any]:
    return {"transaction_id": str(entry["_id"]), "points": -int(entry["points"]),
            "balance_after": int(entry["balance_after"])}
