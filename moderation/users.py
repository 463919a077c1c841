"""Suspending and unsuspending accounts.

- A suspended account keeps its tokens, but :class:`solomo.accounts.Authenticator` answers 401
  ``account_suspended`` for every one of them from the next request on (it reads the status
  each time), so nothing it tries — posting, commenting, checking in, claiming — gets through;
  unsuspending makes the same tokens work again. Its open sockets are closed with 4403 in every
  API process: at once by a pub/sub message (``solomo.core.control.disconnect_user``), and, if
  that is lost, by the ``socket_close`` outbox the suspension writes in its own transaction.
  Its posts stay as they are; a moderator hides or removes them separately if needed.
- Moderators cannot be suspended through the API (403 ``forbidden``), by another moderator or by
  themselves: moderator accounts are managed from the command line, where they are created.
- ``suspend`` needs an active account and ``unsuspend`` a suspended one (else 409
  ``invalid_transition``); a missing or deleted account is 404.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from moderation import audit
from solomo.accounts import Principal
from solomo.core.closecodes import FORBIDDEN
from solomo.core.control import SOCKET_CLOSE, close_command, disconnect_user
from solomo.core.errors import Conflict, Forbidden, Invalid, NotFound
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

log = logging.getLogger("solomo.moderation")

USER_ACTIONS: tuple[str, ...] = ("suspend", "unsuspend")
_TRANSITIONS = {"suspend": ("active", "suspended"), "unsuspend": ("suspended", "active")}


async def moderate_user(
    services: Services, moderator: Principal, user_id: ObjectId, action: str, reason: str
) -> dict[str, Any]:
    if action not in _TRANSITIONS:
        raise Invalid(f"action must be one of {', '.join(USER_ACTIONS)}")
    if user_id == moderator.id:
        raise Forbidden(f"you cannot {action} yourself")
    before, after = _TRANSITIONS[action]

    async def body(txn: Txn) -> dict[str, Any]:
        session = txn.session
        user = await services.db.users.find_one({"_id": user_id}, session=session)
        if user is None or user.get("status") == "deleted":
            raise NotFound("user not found")
        if user["role"] == "moderator":
            raise Forbidden("moderator accounts are managed from the command line, not suspended here")
        current = user.get("status", "active")
        if current != before:
            raise Conflict(f"cannot {action} an account that is {current}", code="invalid_transition")
        now = datetime.now(UTC)
        change: dict[str, Any] = {"status": after,
                                  "suspension": {"action": action, "by": moderator.id, "reason": reason, "at": now}}
        if action == "suspend":  # the outbox: every hub closes the sockets even if the message below is lost
            close = close_command(FORBIDDEN, "account suspended", now)
            update: dict[str, Any] = {"$set": {**change, SOCKET_CLOSE: close}}
        else:  # a socket opened after unsuspending must not be closed by a leftover command
            update = {"$set": change, "$unset": {SOCKET_CLOSE: ""}}
        doc = await services.db.users.find_one_and_update(
            {"_id": user_id, "status": before}, update, return_document=ReturnDocument.AFTER, session=session,
        )
        if doc is None:
            raise Conflict("the account changed meanwhile; try again", code="conflict")
        await audit.record(services, session, moderator_id=moderator.id, action=action, target_type="user",
                           target_id=user_id, reason=reason, before={"status": before}, after={"status": after})
        return doc

    doc = await run_transaction(services, body)
    await services.authenticator.forget_user(user_id)  # cached tokens are checked afresh at once
    if action == "suspend":
        await close_sockets(services, str(user_id))
    return doc


async def close_sockets(services: Services, user_id: str) -> bool:
    """The fast path: closes the user's sockets everywhere at once. Best effort: the suspension's
    ``socket_close`` outbox (``solomo.core.control``) closes them within a poll interval if this
    message is lost."""
    try:
        await disconnect_user(services, user_id, FORBIDDEN)
    except Exception as exc:  # the suspension is committed either way; the outbox repairs the push
        log.warning("could not close sockets of %s: %s", user_id, exc)
        return False
    return True
