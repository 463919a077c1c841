"""``Idempotency-Key``: a retried write gets its first answer again and writes nothing twice.

A route declares ``idempotent=True`` on :func:`solomo.http.endpoint`; a request carrying the
header then goes through :func:`run_once`. One MongoDB document per (user, key), collection
``idempotency``, unique on ``(user_id, key)`` and removed by a TTL index 24 h after it was made:

1. reserve: insert ``{state: "in_progress", fingerprint}``; the unique index lets exactly one of
   any number of concurrent duplicates through. ``fingerprint`` hashes the method, the route
   template, the concrete path and the body bytes.
2. the winner runs the handler, then stores its answer (``state: "done"``, status, body) — for a
   success or a client error (4xx but 429, whose retry should run again). A 5xx, a 429 or an
   exception releases the key (deletes the reservation) so that a retry runs again — unless the
   request already committed a transaction (below).
3. a duplicate finds the document: another fingerprint → 422 ``idempotency_key_reused``; done →
   the stored answer with ``Idempotent-Replayed: true``; in progress → it polls for up to
   :data:`WAIT_S` seconds and replays the answer, or answers 409 ``idempotency_in_progress``
   (with ``Retry-After``) if the first request is still running.

Guarantees and their window: concurrent duplicates and sequential retries never both run the
handler. Every :func:`solomo.core.txn.run_transaction` inside the request also sets ``wrote`` on
the reservation, in the same transaction (:func:`mark_written`): a request that fails after such
a commit keeps its key in progress instead of releasing it. A process that dies mid-request
leaves its reservation in progress too. Either way, its repeats get 409 until the key expires and
the handler never runs again for it, since its write may have committed (a client that must go on
uses a new key). So every keyed route writes in a transaction: a post without photos, a single
insert without a key, takes one when it has a key (:func:`feed.posts.create_post`), since a 5xx
after a write made outside a transaction releases the key and a retry would write again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
from bson import Binary, ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError
from starlette.responses import Response

from solomo.core.errors import ApiError, BadRequest, Conflict, Invalid
from solomo.core.jsonio import JSONResponse
from solomo.core.mongo import Session

if TYPE_CHECKING:
    from solomo.core.services import Services

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
WAIT_S = 5.0
"""How long a duplicate waits for the first request's answer before 409 ``idempotency_in_progress``."""
POLL_S = 0.05
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$"
"""1..64 printable ASCII characters; no space at either end (HTTP strips it from header values)."""
_KEY = re.compile(KEY_PATTERN)

INDEXES = {
    "idempotency": [
        IndexModel([("user_id", ASCENDING), ("key", ASCENDING)], unique=True, name="user_key_unique"),
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=int(TTL.total_seconds()), name="ttl_24h"),
    ],
}


_running: ContextVar[ObjectId | None] = ContextVar("idempotency_reservation", default=None)
"""The reservation of the request this task is answering, while its handler runs."""


def parse_key(raw: str | None) -> str | None:
    """The request's key, ``None`` without the header; 400 ``bad_request`` when malformed."""
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise BadRequest(f"{KEY_HEADER} must be 1..64 printable ASCII characters")
    return raw


def fingerprint(method: str, template: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for a key: route and body, byte for byte."""
    digest = hashlib.sha256()
    for part in (method.encode(), template.encode(), path.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.hexdigest()


def stores(status: int) -> bool:
    """Answers replayed to a retry: successes and client errors. A 429 (come back later) and a
    5xx (something failed on our side) release the key instead, so the retry runs again."""
    return status < 500 and status != 429


@dataclass(frozen=True)
class Request:
    user_id: ObjectId
    key: str
    fingerprint: str


async def run_once(services: Services, request: Request, run: Callable[[], Awaitable[Response]]) -> Response:
    """``run()``'s answer, run at most once per (user, key) while the key lives (see the module)."""
    reservation = await _reserve_or_replay(services, request)
    if isinstance(reservation, Response):
        return reservation
    running = _running.set(reservation)
    try:
        try:
            response = await run()
        except ApiError as exc:  # answered here (as the app's handler would) so a 4xx can be stored
            response = JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
    except BaseException:
        with anyio.CancelScope(shield=True):  # a cancelled request still frees its key
            await _release(services, reservation)
        raise
    finally:
        _running.reset(running)
    body = getattr(response, "body", None)
    if stores(response.status_code) and isinstance(body, bytes):
        await services.db.idempotency.update_one(
            {"_id": reservation, "state": "in_progress"},
            {"$set": {"state": "done", "status": response.status_code, "body": Binary(body),
                      "media_type": response.headers.get("content-type"), "done_at": datetime.now(UTC)}})
    else:
        await _release(services, reservation)
    return response


async def _reserve_or_replay(services: Services, request: Request) -> ObjectId | Response:
    """The id of a new reservation, or the first request's stored answer; raises 422/409."""
    coll = services.db.idempotency
    deadline = time.monotonic() + WAIT_S
    while True:
        now = datetime.now(UTC)
        reservation = ObjectId()
        try:
            await coll.insert_one({"_id": reservation, "user_id": request.user_id, "key": request.key,
                                   "fingerprint": request.fingerprint, "state": "in_progress", "created_at": now})
            return reservation
        except DuplicateKeyError:
            pass
        first = await coll.find_one({"user_id": request.user_id, "key": request.key})
        if first is not None and first["created_at"] <= now - TTL:
            # expired, and the TTL monitor (once a minute) has not removed it yet
            await coll.delete_one({"_id": first["_id"]})
        elif first is not None:
            if first["fingerprint"] != request.fingerprint:
                raise Invalid(f"this {KEY_HEADER} was used for another request; use a new key",
                              code="idempotency_key_reused")
            if first["state"] == "done":
                return _replay(first)
        if time.monotonic() >= deadline:
            raise Conflict(f"a request with this {KEY_HEADER} is still running; retry shortly",
                           code="idempotency_in_progress", headers={"Retry-After": "1"})
        if first is not None:
            await asyncio.sleep(POLL_S)


def _replay(first: dict[str, Any]) -> Response:
    return Response(bytes(first["body"]), status_code=first["status"], media_type=first.get("media_type"),
                    headers={REPLAYED_HEADER: "true"})


async def _release(services: Services, reservation: ObjectId) -> None:
    """Frees the key for a retry, unless a transaction of this request committed a write."""
    await services.db.idempotency.delete_one({"_id": reservation, "state": "in_progress", "wrote": {"$ne": True}})


async def mark_written(services: Services, session: Session) -> None:
    """Inside a transaction: if it runs for a request holding a key, records on the reservation
    that the request wrote — committed or rolled back with the write itself."""
    reservation = _running.get()
    if reservation is not None:
        await mark_written_for(services, session, [reservation])


def running_reservation() -> ObjectId | None:
    """The reservation of the request running now (None without an Idempotency-Key): for a write
    committed by another task on the request's behalf (:mod:`solomo.core.groupwrite`)."""
    return _running.get()


async def mark_written_for(services: Services, session: Session, reservations: list[ObjectId]) -> None:
    """:func:`mark_written` for the requests holding ``reservations``, whose writes this transaction
    commits together (:mod:`checkins.groupcommit`)."""
    if reservations:
        await services.db.idempotency.update_many({"_id": {"$in": reservations}}, {"$set": {"wrote": True}},
                                                  session=session)
