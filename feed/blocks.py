"""Blocks and mutes: whom a user has shut out (contract: Blocks and mutes).

A block is one document in ``blocks`` ``{_id, blocker_id, blocked_id, created_at, created_ms}``
(unique per pair); a mute one in ``mutes`` ``{_id, muter_id, muted_id, created_at, created_ms}``.
A block works both ways for what the two see of each other; a mute only for the muter.

This module is the read side every domain asks (feeds, search, notifications): it never
raises for an unknown user and answers from indexed point reads. The writes and their effects
(follows removed both ways, feeds) live beside it in ``feed.blocking``.
"""

from __future__ import annotations

from bson import ObjectId

from solomo.core.services import Services

MAX_SHUT_OUT = 10_000
"""At most this many blocks and this many mutes per user: one account cannot grow the lists (and
so the filters every page applies) without bound."""


async def is_blocked_between(services: Services, a: ObjectId, b: ObjectId) -> bool:
    """True when either user blocks the other."""
    found = await services.db.blocks.find_one(
        {"$or": [{"blocker_id": a, "blocked_id": b}, {"blocker_id": b, "blocked_id": a}]}, {"_id": 1})
    return found is not None


async def silences(services: Services, recipient_id: ObjectId, actor_id: ObjectId) -> bool:
    """True when ``recipient_id`` must not hear of ``actor_id``'s actions: the recipient blocks or
    mutes the actor (contract: nobody is notified by a user they block or mute)."""
    if await services.db.blocks.find_one({"blocker_id": recipient_id, "blocked_id": actor_id}, {"_id": 1}):
        return True
    return await services.db.mutes.find_one({"muter_id": recipient_id, "muted_id": actor_id}, {"_id": 1}) is not None


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
