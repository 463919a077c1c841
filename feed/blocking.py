"""Blocking and muting: the writes and their effects (contract: Blocks and mutes).

The read side (who is shut out, the feeds' :class:`feed.blocks.Screen`) is :mod:`feed.blocks`.

* A block or mute is one document (``blocks`` / ``mutes``, unique per pair), inserted or deleted in
  one transaction with the owner's counter (``users.blocks_count`` / ``mutes_count``). The counter
  enforces :data:`feed.blocks.MAX_SHUT_OUT` (409 ``too_many_blocks`` / ``too_many_mutes``) and,
  being a write to the owner's user document, makes concurrent changes of one user serialize.
* A block then removes the follows both ways through :func:`feed.follows.unfollow` (counters and
  home feeds stay right). That runs after the commit and again on every repeated block, so an
  interrupted block is repaired by its retry; a follow racing the block is refused inside its own
  transaction (:func:`feed.follows.follow` reads the block there, and both write the same user
  documents, so one of the two transactions retries and sees the other). An unblock removes them
  too before it deletes the block: an interrupted block whose client never retried leaves follows
  made before it (no follow is made while it stands), which must not deliver again afterwards.
* Every committed change drops the cached screens of the users whose feeds change
  (:func:`feed.blocks.invalidate`): both for a block, the muter for a mute. A repeat drops them
  too, so retrying a request whose answer was lost after the commit also repairs the caches.
* The target's past actions leave the owner's inbox (:func:`notifications.recorder.forget_actor`:
  their entries go, groups count them no more), after the commit and on every repeat.
* Moderators cannot be blocked or muted (422): their decisions and answers must reach everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from feed import blocks, follows
from notifications import recorder
from solomo.core.errors import Conflict, Invalid, NotFound
from solomo.core.pagination import Position, keyset_page
from solomo.core.services import Services
from solomo.core.timeutil import ms_of
from solomo.core.txn import Txn, run_transaction

Kind = Literal["block", "mute"]


class _Exists(Exception):
    """Inside the transaction: the pair is recorded already (an idempotent repeat)."""


@dataclass(frozen=True)
class _Shape:
    collection: str
    owner: str  # the field naming who blocks or mutes
    other: str  # the field naming whom
    counter: str  # on the owner's user document


_SHAPES: dict[Kind, _Shape] = {
    "block": _Shape("blocks", "blocker_id", "blocked_id", "blocks_count"),
    "mute": _Shape("mutes", "muter_id", "muted_id", "mutes_count"),
}


async def _target(services: Services, kind: Kind, owner_id: ObjectId, target_id: ObjectId) -> dict[str, Any]:
    if owner_id == target_id:
        raise Invalid(f"you cannot {kind} yourself", code=f"cannot_{kind}_self")
    doc = await services.accounts.get(target_id)  # 404 for unknown and deleted users
    if doc.get("role") == "moderator":
        raise Invalid(f"moderators cannot be {kind}ed", code=f"cannot_{kind}_moderator")
    return doc


def _affected(kind: Kind, owner_id: ObjectId, target_id: ObjectId) -> list[ObjectId]:
    """Whose feeds change: a block works both ways, a mute only for the muter."""
    return [owner_id, target_id] if kind == "block" else [owner_id]


async def shut_out(services: Services, kind: Kind, owner_id: ObjectId, target_id: ObjectId) -> bool:
    """Blocks or mutes ``target_id``; idempotent. Returns True when a new one was recorded."""
    await _target(services, kind, owner_id, target_id)
    shape = _SHAPES[kind]
    now = datetime.now(UTC)
    doc = {"_id": ObjectId(), shape.owner: owner_id, shape.other: target_id, "created_at": now,
           "created_ms": ms_of(now)}

    async def body(txn: Txn) -> None:
        session = txn.session
        # the bound first: a missing counter (no block yet) is below it
        room = await services.db.users.update_one(
            {"_id": owner_id, shape.counter: {"$not": {"$gte": blocks.MAX_SHUT_OUT}}},
            {"$inc": {shape.counter: 1}}, session=session)
        if room.matched_count != 1:
            if await services.db[shape.collection].find_one({shape.owner: owner_id, shape.other: target_id},
                                                            {"_id": 1}, session=session):
                raise _Exists  # at the cap, repeating one that exists is fine
            raise Conflict(f"you have {kind}ed the most users allowed ({blocks.MAX_SHUT_OUT}); undo one first",
                           code=f"too_many_{kind}s")
        await services.db[shape.collection].insert_one(doc, session=session)

    created = True
    try:
        await run_transaction(services, body)
    except (DuplicateKeyError, _Exists):
        created = False
    # also on a repeat: a retry after the commit whose invalidation failed (Redis down) repairs it
    await blocks.invalidate(services, _affected(kind, owner_id, target_id))
    await recorder.forget_actor(services, owner_id, target_id)  # their past actions leave the inbox too
    if kind == "block":  # also when it existed: a retried block finishes an interrupted one
        await _unfollow_both(services, owner_id, target_id)
    return created


async def _unfollow_both(services: Services, one: ObjectId, other: ObjectId) -> None:
    await follows.unfollow(services, one, "user", other)
    await follows.unfollow(services, other, "user", one)


async def let_in(services: Services, kind: Kind, owner_id: ObjectId, target_id: ObjectId) -> bool:
    """Unblocks or unmutes ``target_id``; idempotent. Returns True when one was removed. Follows
    removed by the block are not restored (as on Weibo: following again is the user's choice)."""
    if owner_id == target_id:
        raise Invalid(f"you cannot {kind} yourself", code=f"cannot_{kind}_self")
    # a deleted account can still be let in: its row would otherwise count toward the cap for ever
    target = await services.db.users.find_one({"_id": target_id}, {"status": 1})
    if target is None:
        raise NotFound("user not found")
    shape = _SHAPES[kind]
    if kind == "block" and target.get("status") != "deleted" and await services.db.blocks.find_one(
            {"blocker_id": owner_id, "blocked_id": target_id}, {"_id": 1}):  # (the erasure removes a deleted one's)
        # while this block stands, an interrupted one whose client never retried may have left
        # follows; none can have been made since (a follow is refused while it stands), so they all
        # predate it: finish it. No block, nothing to finish: follows made freely are left alone
        await _unfollow_both(services, owner_id, target_id)

    async def body(txn: Txn) -> bool:
        session = txn.session
        result = await services.db[shape.collection].delete_one({shape.owner: owner_id, shape.other: target_id},
                                                                session=session)
        if result.deleted_count != 1:
            return False
        await services.db.users.update_one({"_id": owner_id}, {"$inc": {shape.counter: -1}}, session=session)
        return True

    removed = await run_transaction(services, body)
    await blocks.invalidate(services, _affected(kind, owner_id, target_id))  # on a repeat too, as above
    return removed


async def page_users(services: Services, kind: Kind, owner_id: ObjectId, before: Position | None,
                     limit: int) -> tuple[list[dict[str, Any]], Position | None]:
    """The users ``owner_id`` blocks (or mutes), newest first: (user documents, next position).
    Deleted accounts are left out of the page (their rows stay: the username stays reserved)."""
    shape = _SHAPES[kind]
    rows, nxt = await keyset_page(services.db[shape.collection], {shape.owner: owner_id}, score_field="created_ms",
                                  descending=True, position=before, limit=limit,
                                  projection={shape.other: 1, "created_ms": 1})
    users = {u["_id"]: u async for u in services.db.users.find(
        {"_id": {"$in": [r[shape.other] for r in rows]}, "status": {"$ne": "deleted"}})}
    return [users[r[shape.other]] for r in rows if r[shape.other] in users], nxt


async def relationship(services: Services, viewer_id: ObjectId, other_id: ObjectId) -> dict[str, bool]:
    """What a profile shows: whether the viewer blocks or mutes ``other_id``, and whether
    ``other_id`` blocks the viewer (the 403 ``blocked`` of any interaction tells as much anyway)."""
    await services.accounts.get(other_id)
    blocking_doc = await services.db.blocks.find_one({"blocker_id": viewer_id, "blocked_id": other_id}, {"_id": 1})
    blocked_by = await services.db.blocks.find_one({"blocker_id": other_id, "blocked_id": viewer_id}, {"_id": 1})
    muting = await services.db.mutes.find_one({"muter_id": viewer_id, "muted_id": other_id}, {"_id": 1})
    return {"blocking": blocking_doc is not None, "muting": muting is not None, "blocked_by": blocked_by is not None}
