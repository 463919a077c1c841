"""Which posts a viewer has liked, for ``liked_by_me``: a per-user Redis set, built from MongoDB.

``keys.liked_key(uid)`` is a set of post ids plus one *state* member:

* key missing — never built, expired (:data:`LIKED_TTL_S` after the last read) or flushed;
* ``~b:<token>`` — a build is reading MongoDB; any like or unlike meanwhile deletes the key, so
  that build's result (possibly older than the change) is never stored;
* ``~`` — complete: likes and unlikes after the build are applied to it (:data:`_CHANGE`);
* ``~x`` — the user has more than :data:`LIKED_MAX` likes: not cached (bounded memory), each page
  asks MongoDB for its own posts, as before this cache existed.

MongoDB (``likes``) stays the truth; likes and unlikes update the set after their transaction
commits (:func:`changed`). A build starts by marking the key (``~b:<token>``), *then* reads
MongoDB, then stores its result only if its mark is still there: a change either committed before
the read (and is in it) or deletes the mark (and the result is dropped).
"""

from __future__ import annotations

import uuid
from typing import Any

from bson import ObjectId

from solomo.core.keys import liked_key
from solomo.core.scripts import LuaScript
from solomo.core.services import Services
from solomo.core.ttlrefresh import queue_expire

LIKED_TTL_S = 3600
LIKED_MAX = 1000
READY = "~"
TOO_MANY = "~x"
BUILDING = "~b:"

# KEYS[1]: a user's liked set. ARGV: token, TTL. Starts a build unless the set is complete already.
_BEGIN = LuaScript("liked_begin", """
if redis.call('SISMEMBER', KEYS[1], '~') == 1 or redis.call('SISMEMBER', KEYS[1], '~x') == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '~b:' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
""")

# KEYS[1]: a user's liked set. ARGV: token, TTL, state ('~' or '~x'), then post ids. Stores the
# build's result only if its mark is still there (no like or unlike since the build began).
_FINISH = LuaScript("liked_finish", """
if redis.call('SREM', KEYS[1], '~b:' .. ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
""")

# KEYS[1]: a user's liked set. ARGV: 'add' or 'rem', post id, max size. Applies a committed like
# or unlike to a complete set; a set being built is deleted (the build is void); too big: dropped.
_CHANGE = LuaScript("liked_change", """
if redis.call('SISMEMBER', KEYS[1], '~x') == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[1], '~') == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
if ARGV[1] == 'add' then redis.call('SADD', KEYS[1], ARGV[2]) else redis.call('SREM', KEYS[1], ARGV[2]) end
if redis.call('SCARD', KEYS[1]) > tonumber(ARGV[3]) + 1 then redis.call('DEL', KEYS[1]) end
return 1
""")


def queue_read(pipe: Any, user_id: ObjectId, post_ids: list[ObjectId]) -> None:
    """Queues the lookup of ``post_ids`` in the user's set, then (now and then: :mod:`solomo.core.ttlrefresh`)
    its refresh: one or two commands, the lookup's reply first (see :func:`parse_read`). Callers
    reading later replies of their pipeline count them from its end."""
    key = liked_key(user_id)
    pipe.smismember(key, [READY, TOO_MANY, *(str(p) for p in post_ids)])
    queue_expire(pipe, key, LIKED_TTL_S)  # a read keeps the set (a missing key stays missing)


def parse_read(post_ids: list[ObjectId], flags: list[Any]) -> set[ObjectId] | None:
    """The liked posts among ``post_ids`` from the lookup's reply, or None when the set cannot
    answer (not built, too big)."""
    if not flags[0]:
        return None
    return {pid for pid, flag in zip(post_ids, flags[2:], strict=True) if flag}


async def _from_mongo(services: Services, user_id: ObjectId, post_ids: list[ObjectId]) -> set[ObjectId]:
    return {lk["post_id"] async for lk in services.db.likes.find(
        {"user_id": user_id, "post_id": {"$in": post_ids}}, {"post_id": 1, "_id": 0})}


async def build(services: Services, user_id: ObjectId, post_ids: list[ObjectId]) -> set[ObjectId]:
    """Builds the user's set from MongoDB (unless it is complete already, or too big) and answers
    for ``post_ids`` from what was read: one MongoDB query either way."""
    key = liked_key(user_id)
    token = uuid.uuid4().hex
    if not await _BEGIN(services.redis, [key], [token, LIKED_TTL_S]):
        return await _from_mongo(services, user_id, post_ids)
    rows = await services.db.likes.find({"user_id": user_id}, {"post_id": 1, "_id": 0}).limit(
        LIKED_MAX + 1).to_list(None)
    liked = [r["post_id"] for r in rows]
    if len(liked) > LIKED_MAX:
        await _FINISH(services.redis, [key], [token, LIKED_TTL_S, TOO_MANY])
        return await _from_mongo(services, user_id, post_ids)
    await _FINISH(services.redis, [key], [token, LIKED_TTL_S, READY, *(str(p) for p in liked)])
    wanted = set(post_ids)
    return {p for p in liked if p in wanted}


async def liked_among(services: Services, user_id: ObjectId, post_ids: list[ObjectId]) -> set[ObjectId]:
    """The posts of ``post_ids`` the user has liked (one Redis round trip when the set is built)."""
    if not post_ids:
        return set()
    async with services.redis.pipeline(transaction=False) as pipe:
        queue_read(pipe, user_id, post_ids)
        rows = await pipe.execute()
    known = parse_read(post_ids, rows[0])
    return known if known is not None else await build(services, user_id, post_ids)


async def changed(services: Services, user_id: ObjectId, post_id: ObjectId, liked: bool) -> None:
    """Call after a like (``liked``) or unlike of ``post_id`` by the user is committed."""
    await _CHANGE(services.redis, [liked_key(user_id)], ["add" if liked else "rem", str(post_id), LIKED_MAX])
