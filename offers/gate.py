"""The claim gate: a flash sale's losers are answered by one Redis script, never by MongoDB.

Per offer, three keys under one hash tag (:func:`solomo.core.keys.claim_gate` and its siblings,
so every script below runs on one Redis and on a Redis Cluster):

* the **gate** hash: ``stock`` (-1 when unlimited), ``exp`` (expiry, ms) and ``closed`` (an error
  code once the offer ended or sold out for good — both are final);
* **holders**: the users whose voucher is committed in MongoDB;
* **pending**: user → reserved-at (ms), the claims let through whose MongoDB write is in flight.

:data:`TAKE` answers a claim in one round trip: ``held`` (the user holds or is claiming a voucher:
MongoDB has the answer), ``offer_ended``/``sold_out``/``offer_expired``, ``reserved`` (a slot is
now this user's: write the voucher), ``go`` (unlimited stock: MongoDB decides) or ``miss`` (no
gate: :func:`build` it from MongoDB). A winner :func:`confirm`\\ s after its commit (pending →
holders) or :func:`release`\\ s its slot when the write failed.

MongoDB stays the truth and keeps its own guards (the stock condition on ``claimed`` and the unique
``(offer_id, user_id)`` index), so the gate is an optimisation that may let too many through —
MongoDB then refuses them — but must never refuse a claim MongoDB would accept. Hence:

* holders only ever grow by committed vouchers (a confirm after the commit, or a build that reads
  them from MongoDB); vouchers are never deleted, so holders never count a voucher that does not
  exist. A confirm is a set insertion: repeating it, or racing a rebuild, never counts twice;
* a reservation whose holder died (a killed process) would hold its slot forever, so reservations
  older than :data:`RESERVATION_TTL_MS` are dropped — by :data:`TAKE` itself when the gate looks
  full, and by the offers sweep (:func:`reconcile`). Dropping a live one only lets one claim too
  many reach MongoDB, which refuses it;
* a build is ``SET NX``-like (the script creates the gate only if it is missing) and starts with no
  pending reservations: the in-flight claims of a lost gate are not counted, so the rebuilt gate
  is at worst too permissive.

Answers are only as exact as the data: a user whose confirm was lost (Redis down at that moment)
and who asks again once the gate says sold out gets ``sold_out`` instead of their voucher until
the sweep (:func:`reconcile`) or MongoDB's own sold-out answer (:func:`build` with ``force``)
re-reads the holders.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Final

from bson import ObjectId

from offers.offers import expires_ms, stored_status
from solomo.core import keys
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

RESERVATION_TTL_MS: Final = 120_000
"""How long a reservation may wait for its MongoDB write before its slot is given back: longer than
a claim may take (``transaction_retry_s`` of write conflicts is the worst case, 60 s by default)."""
KEEP_AFTER_EXPIRY_MS: Final = 3_600_000
"""The gate outlives its offer by an hour, answering ``offer_expired`` from Redis."""
CLOSED_TTL_MS: Final = 3_600_000
"""How long the gate of an ended offer answers ``offer_ended`` before it is read from MongoDB again."""
HOLDERS_CHUNK: Final = 1000

# Verdicts of TAKE
HELD, RESERVED, GO, MISS = "held", "reserved", "go", "miss"
SOLD_OUT, ENDED, EXPIRED = "sold_out", "offer_ended", "offer_expired"

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

TAKE = LuaScript("claim_gate_take", _NOW_MS + """
local gate, holders, pending = KEYS[1], KEYS[2], KEYS[3]
local user, ttl = ARGV[1], tonumber(ARGV[2])
local g = redis.call('HMGET', gate, 'stock', 'exp', 'closed')
if not g[1] then return 'miss' end
if redis.call('SISMEMBER', holders, user) == 1 or redis.call('ZSCORE', pending, user) then
  return 'held'
end
if g[3] and g[3] ~= '' then return g[3] end
if now >= tonumber(g[2]) then return 'offer_expired' end
local stock = tonumber(g[1])
if stock < 0 then return 'go' end
local taken = redis.call('SCARD', holders) + redis.call('ZCARD', pending)
if taken >= stock then
  taken = taken - redis.call('ZREMRANGEBYSCORE', pending, '-inf', now - ttl)
  if taken >= stock then return 'sold_out' end
end
redis.call('ZADD', pending, now, user)
local ttl = redis.call('PTTL', gate)
if ttl > 0 then redis.call('PEXPIRE', pending, ttl) end
return 'reserved'
""")

CONFIRM = LuaScript("claim_gate_confirm", """
local gate, holders, pending = KEYS[1], KEYS[2], KEYS[3]
redis.call('ZREM', pending, ARGV[1])
local ttl = redis.call('PTTL', gate)
if ttl < 0 then return 0 end
redis.call('SADD', holders, ARGV[1])
redis.call('PEXPIRE', holders, ttl)
return 1
""")

RELEASE = LuaScript("claim_gate_release", """
return redis.call('ZREM', KEYS[1], ARGV[1])
""")

CLOSE = LuaScript("claim_gate_close", """
local gate, holders, pending = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', gate) == 0 then return 0 end
redis.call('HSET', gate, 'closed', ARGV[1])
redis.call('DEL', pending)
redis.call('PEXPIRE', gate, ARGV[2])
redis.call('PEXPIRE', holders, ARGV[2])
return 1
""")

BUILD = LuaScript("claim_gate_build", """
local gate, holders, pending, fresh = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local force, stock, exp, closed, expire_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if force ~= '1' and redis.call('EXISTS', gate) == 1 then
  redis.call('DEL', fresh)
  return 0
end
redis.call('DEL', gate, pending)
if redis.call('EXISTS', fresh) == 1 then
  redis.call('RENAME', fresh, holders)
else
  redis.call('DEL', holders)
end
redis.call('HSET', gate, 'stock', stock, 'exp', exp, 'closed', closed)
redis.call('PEXPIREAT', gate, expire_at)
redis.call('PEXPIREAT', holders, expire_at)
return 1
""")

RECONCILE = LuaScript("claim_gate_reconcile", _NOW_MS + """
local gate, holders, pending = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', gate) == 0 then return -1 end
redis.call('ZREMRANGEBYSCORE', pending, '-inf', now - tonumber(ARGV[1]))
return redis.call('SCARD', holders)
""")


def _keys(offer_id: ObjectId | str) -> list[str]:
    return [keys.claim_gate(offer_id), keys.claim_holders(offer_id), keys.claim_pending(offer_id)]


async def take(services: Services, offer_id: ObjectId, user_id: ObjectId) -> str:
    """The gate's verdict for one claim (see the module); ``miss`` when the offer has no gate."""
    return str(await TAKE(services.redis, _keys(offer_id), [str(user_id), RESERVATION_TTL_MS]))


async def confirm(services: Services, offer_id: ObjectId, user_id: ObjectId) -> None:
    """After the voucher's commit: the user holds one (their reservation, if any, is spent)."""
    await CONFIRM(services.redis, _keys(offer_id), [str(user_id)])


async def release(services: Services, offer_id: ObjectId, user_id: ObjectId) -> None:
    """The reserved claim wrote nothing: its slot is free again (a no-op if already dropped)."""
    await RELEASE(services.redis, [keys.claim_pending(offer_id)], [str(user_id)])


async def close(services: Services, offer_id: ObjectId | str, code: str) -> None:
    """The offer ended (``offer_ended``) or sold out in MongoDB: the gate answers ``code`` to
    everyone but holders from now on (both are final)."""
    await CLOSE(services.redis, _keys(offer_id), [code, CLOSED_TTL_MS])


def _closed_code(offer: dict[str, Any]) -> str:
    return "offer_ended" if stored_status(offer) in ("removed", "ended") else ""


async def build(services: Services, offer: dict[str, Any], *, force: bool = False) -> bool:
    """Builds the gate of ``offer`` (a document read from MongoDB) unless one exists (with
    ``force``: replaces it); returns whether it wrote one. An offer held for review gets none (its
    claims read MongoDB, which answers 404 until a moderator approves it).

    The holders are read from MongoDB *after* the offer, so they cover at least its ``claimed``;
    they are staged in a key of their own and renamed into place by the script that creates the
    gate, so a claim never sees a gate without its holders."""
    if stored_status(offer) == "pending_review":
        return False
    offer_id = offer["_id"]
    stock = offer.get("stock")
    closed = _closed_code(offer)
    fresh = keys.claim_holders_build(offer_id, secrets.token_hex(6))
    cursor = services.db.vouchers.find({"offer_id": offer_id}, {"_id": 0, "user_id": 1})
    async for chunk in _chunks(cursor):
        async with services.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(fresh, *chunk)
            pipe.pexpire(fresh, RESERVATION_TTL_MS)  # an abandoned build cleans itself up
            await pipe.execute()
    exp = expires_ms(offer)
    now = int(datetime.now(UTC).timestamp() * 1000)
    expire_at = now + CLOSED_TTL_MS if closed else max(exp, now) + KEEP_AFTER_EXPIRY_MS
    args = ["1" if force else "0", -1 if stock is None else int(stock), exp, closed, expire_at]
    return bool(await BUILD(services.redis, [*_keys(offer_id), fresh], args))


async def _chunks(cursor: Any) -> Any:
    chunk: list[str] = []
    async for doc in cursor:
        chunk.append(str(doc["user_id"]))
        if len(chunk) >= HOLDERS_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def reconcile(services: Services, offers: list[dict[str, Any]],
                    stale_after_ms: int = RESERVATION_TTL_MS) -> dict[str, int]:
    """The sweep's repair of the gates of ``offers`` (documents read from MongoDB with ``_id``,
    ``status``, ``stock``, ``claimed``, ``expires_at``), one pipeline: drops reservations older than
    ``stale_after_ms`` (their holder died: the slot is claimable again), and rebuilds a gate whose
    holders count fewer vouchers than MongoDB's ``claimed`` (a confirm was lost). Returns
    ``{"gates": seen, "rebuilt": n}``."""
    if not offers:
        return {"gates": 0, "rebuilt": 0}
    async with services.redis.pipeline(transaction=False) as pipe:
        for offer in offers:
            RECONCILE.queue(pipe, _keys(offer["_id"]), [stale_after_ms])
        held = [int(n) for n in await pipe.execute()]
    stale = [o for o, n in zip(offers, held, strict=True) if 0 <= n < int(o.get("claimed", 0))]
    for offer in stale:
        await build(services, offer, force=True)
    return {"gates": sum(1 for n in held if n >= 0), "rebuilt": len(stale)}
