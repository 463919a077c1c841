"""Blocks and mutes: whom a user has shut out (contract: Blocks and mutes).

A block is one document in ``blocks`` ``{_id, blocker_id, blocked_id, created_at, created_ms}``
(unique per pair); a mute one in ``mutes`` ``{_id, muter_id, muted_id, created_at, created_ms}``.
A block works both ways for what the two see of each other; a mute only for the muter.

This module is the read side every domain asks (feeds, search, notifications): it never
raises for an unknown user and answers from indexed point reads. The writes and their effects
(follows removed both ways, feeds) live beside it in ``feed.blocking``.

Feeds ask once per page through a :class:`Screen`: the viewer's hidden authors (:func:`hidden_authors`)
cached in Redis (``keys.shut_out_key``), a set of id hexes plus one state member, as
:mod:`feed.likedset` keeps likes:

* key missing — never built, expired (:data:`SHUT_TTL_S` after it was built) or invalidated;
* ``~b:<token>`` — a build is reading MongoDB; a block or mute committed meanwhile deletes the key,
  so that build's (possibly older) result is never stored;
* ``~`` — complete.

Every committed block, unblock, mute or unmute calls :func:`invalidate` for the users whose view
changed (both for a block, the muter for a mute). MongoDB stays the truth; a page of a viewer who
shut nobody out costs one ``SMEMBERS`` of a one-member set, queued in the pipeline the page already
sends (:class:`feed.hydrate.PageLoader`).
"""

from __future__ import annotations

import uuid
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from feed.posts import get_visible_post
from solomo.core.errors import Forbidden, NotFound
from solomo.core.keys import shut_out_key
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

MAX_SHUT_OUT = 10_000
"""At most this many blocks and this many mutes per user: one account cannot grow the lists (and
so the filters every page applies) without bound."""


async def is_blocked_between(services: Services, a: ObjectId, b: ObjectId,
                             session: AsyncClientSession | None = None) -> bool:
    """True when either user blocks the other (``session``: read inside that transaction)."""
    found = await services.db.blocks.find_one(
        {"$or": [{"blocker_id": a, "blocked_id": b}, {"blocker_id": b, "blocked_id": a}]}, {"_id": 1},
        session=session)
    return found is not None


async def silences(services: Services, recipient_id: ObjectId, actor_id: ObjectId) -> bool:
    """True when ``recipient_id`` must not hear of ``actor_id``'s actions: the recipient blocks or
    mutes the actor (contract: nobody is notified by a user they block or mute), or the actor blocks
    the recipient (who cannot see the actor's posts either). Answered from the recipient's cached
    shut-out set (:class:`Screen`): two member checks in one round trip, not two MongoDB reads per
    notification."""
    return await Screen(services, recipient_id).holds(actor_id)


async def hidden_authors(services: Services, viewer_id: ObjectId) -> frozenset[ObjectId]:
    """The authors whose posts ``viewer_id`` must not see in feeds and search: those the viewer
    blocks or mutes and those who block the viewer. Bounded by :data:`MAX_SHUT_OUT` per list."""
    hidden: set[ObjectId] = set()
    async for doc in services.db.blocks.find({"blocker_id": viewer_id}, {"blocked_id": 1}).limit(MAX_SHUT_OUT):
        hidden.add(doc["blocked_id"])
    async for doc in services.db.blocks.find({"blocked_id": viewer_id}, {"blocker_id": 1}).limit(MAX_SHUT_OUT):
        hidden.add(doc["blocker_id"])
    async for doc in services.db.mutes.find({"muter_id": viewer_id}, {"muted_id": 1}).limit(MAX_SHUT_OUT):
        hidden.add(doc["muted_id"])
    return frozenset(hidden)


async def ensure_not_blocked(services: Services, actor_id: ObjectId, other_id: ObjectId,
                             session: AsyncClientSession | None = None) -> None:
    """403 ``blocked`` when ``actor_id`` may not interact with ``other_id`` (either blocks the
    other): following, liking, commenting, replying, reposting. Nothing to check for oneself."""
    if actor_id != other_id and await is_blocked_between(services, actor_id, other_id, session):
        raise Forbidden("you cannot interact with this user: one of you blocks the other", code="blocked")


async def walled_off(services: Services, viewer_id: ObjectId, author_id: ObjectId, role: str | None = None) -> bool:
    """Whether ``viewer_id`` must not see ``author_id``'s content at all: one blocks the other (as on
    Weibo, blocked users cannot see each other's posts). Moderators see everything."""
    return role != "moderator" and viewer_id != author_id and await is_blocked_between(services, viewer_id, author_id)


async def open_post(services: Services, post_id: ObjectId, viewer_id: ObjectId,
                    role: str | None = None) -> dict[str, Any]:
    """``GET /v1/posts/{id}``: the post as :func:`feed.posts.get_visible_post` allows, and 404 (as for
    a post that does not exist) between users one of whom blocks the other."""
    doc = await get_visible_post(services, post_id, viewer_id, role)
    if await walled_off(services, viewer_id, doc["author_id"], role):
        raise NotFound("post not found")
    return doc


# --- the per-viewer cache the feeds read ---------------------------------------------------------

SHUT_TTL_S = 3600
"""A built set lives this long (a rebuild is three indexed queries); changes delete it at once."""
READY = "~"
BUILDING = "~b:"
_CHUNK = 1000  # members per SADD inside the script (Lua's unpack has a stack limit)

# KEYS[1]: a viewer's shut-out set. ARGV: token, TTL. Starts a build unless the set is complete.
_BEGIN = LuaScript("shut_begin", """
if redis.call('SISMEMBER', KEYS[1], '~') == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '~b:' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
""")

# KEYS[1]: a viewer's shut-out set. ARGV: token, TTL, chunk size, '~', then author ids. Stores the
# build's result only if its mark is still there (no block or mute changed since the build began).
_FINISH = LuaScript("shut_finish", """
if redis.call('SREM', KEYS[1], '~b:' .. ARGV[1]) == 0 then return 0 end
local chunk = tonumber(ARGV[3])
for i = 4, #ARGV, chunk do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
""")


async def invalidate(services: Services, user_ids: list[ObjectId]) -> None:
    """Call after a block or mute change is committed: these users' cached sets are dropped (a
    build under way is void), the next page rebuilds them. One key per user (each its own slot)."""
    for uid in user_ids:
        await services.redis.delete(shut_out_key(uid))


class Screen:
    """The authors one viewer must not see in a feed, read at most once per request.

    Feeds call :meth:`ready` before filtering (a no-op when :class:`feed.hydrate.PageLoader` already
    read the set in its pipeline through :meth:`queue_read` / :meth:`take`), then :meth:`hides`."""

    def __init__(self, services: Services, viewer_id: ObjectId) -> None:
        self.services = services
        self.viewer_id = viewer_id
        self.hidden: frozenset[ObjectId] | None = None

    @property
    def loaded(self) -> bool:
        return self.hidden is not None

    def queue_read(self, pipe: Any) -> None:
        pipe.smembers(shut_out_key(self.viewer_id))

    async def take(self, members: Any) -> None:
        """Uses a reply of :meth:`queue_read`; builds the set when it was missing or being built."""
        names = {m.decode() if isinstance(m, bytes) else str(m) for m in members or ()}
        if READY in names:
            self.hidden = frozenset(ObjectId(n) for n in names if not n.startswith("~"))
        else:
            self.hidden = await self._build()

    async def ready(self) -> frozenset[ObjectId]:
        if self.hidden is None:
            await self.take(await self.services.redis.smembers(shut_out_key(self.viewer_id)))
        assert self.hidden is not None
        return self.hidden

    async def holds(self, author_id: ObjectId) -> bool:
        """Whether ``author_id`` is shut out for the viewer, by member checks (a long list is not read
        whole); builds the set when it is missing or being built."""
        if self.hidden is None:
            async with self.services.redis.pipeline(transaction=False) as pipe:
                pipe.sismember(shut_out_key(self.viewer_id), READY)
                pipe.sismember(shut_out_key(self.viewer_id), str(author_id))
                complete, member = await pipe.execute()
            if complete:
                return bool(member)
        return author_id in await self.ready()

    def hides(self, doc: dict[str, Any]) -> bool:
        """Whether ``doc`` (a post or its view) is by a hidden author; call after :meth:`ready`."""
        assert self.hidden is not None, "Screen.ready() first"
        return doc.get("author_id") in self.hidden

    async def _build(self) -> frozenset[ObjectId]:
        key = shut_out_key(self.viewer_id)
        token = uuid.uuid4().hex
        began = await _BEGIN(self.services.redis, [key], [token, SHUT_TTL_S])
        hidden = await hidden_authors(self.services, self.viewer_id)
        if began:
            await _FINISH(self.services.redis, [key], [token, SHUT_TTL_S, _CHUNK, READY, *(str(a) for a in hidden)])
        return hidden
