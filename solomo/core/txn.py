"""MongoDB transactions, and the tasks sent once they commit.

Every write that touches more than one document goes through :func:`run_transaction`; every task
sent from the API goes through :func:`send_task` (directly after a single-document write, or
collected with :meth:`Txn.after_commit` inside a transaction). Sending is best effort, after the
data is durable: a broker that is down is logged, never raised, because each write leaves a
trace its sweeper finds — a post's ``fanout: "pending"`` (``feed.fanout.sweep_pending``), an
offer's ``targeting: "pending"`` (``offers.sweeps``), a rebuild lock that expires — so a lost
task delays the Redis side of a change, never its correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pymongo
from pymongo import WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from solomo.core.idempotency import mark_written
from solomo.core.tasknames import args_text

if TYPE_CHECKING:
    from solomo.core.services import Services

T = TypeVar("T")
log = logging.getLogger("solomo.core.txn")
TRANSIENT = "TransientTransactionError"
ABORT_TIMEOUT_S = 0.5
"""The longest an abort may take (found by the MongoDB drill: an unbounded one after the primary died
added a second server-selection wait to the 503)."""
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"
MAX_TIME_EXPIRED = 50
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.005, 0.5
"""Retries wait a random share of an exponentially growing step (as PyMongo's own loop does): racing
transactions on one document spread out instead of conflicting again at once."""


class Txn:
    """One attempt of a transaction: its ``session`` (pass it to every read and write) and the
    tasks to send once it commits."""

    def __init__(self, session: AsyncClientSession) -> None:
        self.session = session
        self.tasks: list[tuple[str, tuple[Any, ...]]] = []

    def after_commit(self, name: str, *args: Any) -> None:
        """Send task ``name`` (a :mod:`solomo.core.tasknames` constant) with ``args`` after the
        commit, best effort; dropped if this attempt does not commit."""
        self.tasks.append((name, args))


async def run_transaction(services: Services, body: Callable[[Txn], Awaitable[T]],
                          write_concern: WriteConcern | None = None) -> T:
    """Runs ``body`` in one MongoDB transaction, then sends the tasks it collected. ``write_concern``:
    the commit's, when not the client's (:data:`solomo.core.mongo.REDONE` for bookkeeping).

    A transient error (a write conflict with a concurrent transaction, a primary stepping down)
    re-runs ``body``, so each attempt gets a fresh :class:`Txn`: only the tasks of the attempt that
    committed are sent. Any exception ``body`` raises aborts the transaction and propagates
    unchanged, as do MongoDB's own errors (the app answers 503 for those).

    The retry loop is PyMongo's ``with_transaction`` with two budgets instead of its one of two
    minutes: contention (write conflicts) is retried for ``transaction_retry_s``, since 500
    claims racing for one offer do all succeed or sell out given time; but an unreachable MongoDB
    only for ``transaction_outage_s`` — enough to ride out an election, short enough that a
    request in flight when the primary dies answers 503 within seconds instead of hanging until
    MongoDB is back (found by the MongoDB drill, ``tests/faults/test_mongo_outage.py``). That
    budget counts from the first connection error, not from the start: a transaction that waited
    out write conflicts for seconds still rides out an election that begins then (found by the
    election drill, ``tests/faults/test_mongo_election.py``). A server-selection timeout is not
    retried: no primary for ``serverSelectionTimeoutMS`` (2 s) is longer than an election (about
    1 s here), so MongoDB is down and the request answers 503 at once.
    """
    started = time.monotonic()
    settings = services.settings
    outage_since: float | None = None

    def may_retry(exc: PyMongoError) -> bool:
        nonlocal outage_since
        now = time.monotonic()
        if isinstance(exc, ServerSelectionTimeoutError):
            return False
        if isinstance(exc, ConnectionFailure):  # not writable primary, a connection cut: an election
            outage_since = now if outage_since is None else outage_since
            return now - outage_since < settings.transaction_outage_s
        return now - started < settings.transaction_retry_s

    async with services.mongo.start_session() as session:
        for retry in itertools.count():
            if retry:
                await asyncio.sleep(random.random() * min(BACKOFF_FIRST_S * 1.5 ** retry, BACKOFF_MAX_S))
            txn = Txn(session)
            await session.start_transaction(write_concern=write_concern)
            try:
                with _outage_bound(outage_since, settings.transaction_outage_s):
                    await mark_written(services, session)  # an Idempotency-Key's request that wrote keeps its key
                    result = await body(txn)
            except Exception as exc:
                if session.in_transaction:
                    # bounded: with the primary gone, an abort would wait a whole server selection
                    # (2 s) for nothing; the server drops an abandoned transaction by itself
                    with contextlib.suppress(PyMongoError), pymongo.timeout(ABORT_TIMEOUT_S):
                        await session.abort_transaction()
                if isinstance(exc, PyMongoError) and exc.has_error_label(TRANSIENT) and may_retry(exc):
                    continue
                raise
            if await _commit(session, may_retry, lambda: _outage_bound(outage_since, settings.transaction_outage_s)):
                break
    await send_tasks(services, txn.tasks)
    return result


DUPLICATE_ATTEMPTS = 3
"""Runs of a transaction that meets a racing first write (:func:`run_transaction_again_on_duplicate`)."""


def is_duplicate(exc: BaseException) -> bool:
    """A duplicate key: alone, or every error of a bulk write."""
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or []
        return bool(errors) and all(e.get("code") == 11000 for e in errors)
    return False


async def run_transaction_again_on_duplicate(services: Services, body: Callable[[Txn], Awaitable[T]]) -> T:
    """:func:`run_transaction`, run again when a racing first write (another request's first
    document of a kind — a points balance, a check-in guard, a visitor row — inserted after this
    transaction's snapshot) surfaces as a duplicate key: that aborted the transaction as a whole,
    and the next attempt sees the document. The duplicate propagates after
    :data:`DUPLICATE_ATTEMPTS` runs."""
    for attempt in itertools.count(1):
        try:
            return await run_transaction(services, body)
        except (DuplicateKeyError, BulkWriteError) as exc:
            if not is_duplicate(exc) or attempt >= DUPLICATE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _outage_bound(outage_since: float | None, outage_s: float) -> AbstractContextManager[object]:
    """Once a connection error was seen, every later operation of the transaction (server selection
    included) runs under what is left of the outage budget: without it, each retry could wait a
    whole ``serverSelectionTimeoutMS`` and PyMongo's own retry of a commit another one (found by the
    MongoDB drill: answers 6 s after the kill instead of within the budget)."""
    if outage_since is None:
        return contextlib.nullcontext()
    return pymongo.timeout(max(0.05, outage_s - (time.monotonic() - outage_since)))


async def _commit(session: AsyncClientSession, may_retry: Callable[[PyMongoError], bool],
                  bound: Callable[[], AbstractContextManager[object]]) -> bool:
    """Commits; False when the whole transaction must run again (a transient commit error)."""
    while True:
        try:
            with bound():
                await session.commit_transaction()
            return True
        except PyMongoError as exc:
            if (exc.has_error_label(UNKNOWN_COMMIT) and may_retry(exc)
                    and not (isinstance(exc, OperationFailure) and exc.code == MAX_TIME_EXPIRED)):
                continue  # the commit may have happened: committing again is safe
            if exc.has_error_label(TRANSIENT) and may_retry(exc):
                return False
            raise


async def send_task(services: Services, name: str, *args: Any) -> bool:
    """Best-effort enqueue of a state change already durable; returns whether the broker took it.

    A broker error is logged, never raised: the caller's sweeper (see the module docstring) or
    the next read repairs what the lost task would have done."""
    try:
        await services.tasks.send(name, *args)
        return True
    except Exception as exc:  # broker down: logged, the data is already right
        log.warning("could not enqueue %s%s: %s", name, args_text(name, args), exc)
        return False


async def send_tasks(services: Services, tasks: list[tuple[str, tuple[Any, ...]]]) -> None:
    """:func:`send_task` for each of ``tasks``, those of one name in one round trip, in order."""
    if len(tasks) == 1:
        await send_task(services, tasks[0][0], *tasks[0][1])
        return
    by_name: dict[str, list[tuple[Any, ...]]] = {}
    for name, args in tasks:
        by_name.setdefault(name, []).append(args)
    for name, arg_lists in by_name.items():
        try:
            await services.tasks.send_many(name, arg_lists)
        except Exception as exc:  # broker down: logged, the data is already right
            log.warning("could not enqueue %d × %s: %s", len(arg_lists), name, exc)


def outbox_fields(now: datetime) -> dict[str, Any]:
    """What a status change ``$set``s on a post (with ``$unset: {"fanout_progress": ""}``, for a
    fresh run, and ``$inc: {"status_version": 1}``, so a fan-out task that read the older status
    applies the new one rather than mark its work done) in its own transaction, so that
    ``feed.fanout.sweep_pending`` brings the feeds in line even if the post-commit task is lost: its
    ``fanout.post`` pushes a published post and retracts any other. ``fanout_swept_at = now`` gives
    the fast-path task one sweep interval before the sweep re-sends the work, so a healthy broker
    does not fan the post out twice."""
    return {"fanout": "pending", "fanout_swept_at": now}
