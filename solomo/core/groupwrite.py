"""Group commit: concurrent writes of one process queued and committed together by one task.

A transaction costs the API and MongoDB per round trip, not per document, so under load the
writes that arrive together are worth committing together: a request queues its item and awaits
its own outcome, and a single writer task takes what is queued (the writer's ``take`` function
decides which items may share a transaction), commits them, and answers each. At low load a group is one
item and this costs nothing but a task switch.

The writer runs with an empty context: it belongs to no request (one request cancelled must not
cancel the others' commit, so each request awaits its outcome through :func:`asyncio.shield`).
A group that fails as a whole with an error that may concern one item only (:attr:`per_item`) is
retried item by item, so every request gets its own answer; any other error (MongoDB down) is
every item's answer. An outage (:data:`OUTAGE`: MongoDB unreachable for longer than a
transaction's outage budget) is also the answer of every item queued behind that group: they have
waited through the same outage, and trying each group in turn would make the last request wait
one server selection more per group ahead of it (found by the MongoDB drill: three check-ins at
one store, in flight at the kill, answered after 4, 6 and 8 s).

Used by :mod:`checkins.groupcommit` (one queue; a group holds at most one check-in per user and
per store) and :mod:`offers.voucherwrites` (a queue per offer; a group is its first 256 winners).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from pymongo.errors import ConnectionFailure

Item = TypeVar("Item")
Out = TypeVar("Out")

Answer = tuple[Item, "asyncio.Future[Out]"]

OUTAGE: tuple[type[BaseException], ...] = (ConnectionFailure,)
"""A group's errors that are also the answer of everything queued behind it: no primary (server
selection timed out), connections refused or cut past the transaction's outage budget."""


class GroupWriter(Generic[Item, Out]):
    """Per process: the queue and its writer task.

    ``write(items)`` commits a group and returns one outcome per item: its result, or the exception
    that item alone is answered with (refused by a rule, say) while the rest of the group commits.
    ``take(items)`` returns the positions of the queued items that may go into the next group (at
    least one); the others wait for a later one, in order. One group is written at a time: with
    two at once each was half the size, and the API spent more per item (docs/benchmarks.md).
    """

    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Out | BaseException]]], *,
                 take: Callable[[list[Item]], list[int]], per_item: tuple[type[BaseException], ...]) -> None:
        self._write = write
        self._take = take
        self.per_item = per_item
        self._queue: list[Answer[Item, Out]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """Nothing queued and no group being written."""
        return self._task is None and not self._queue

    async def submit(self, item: Item) -> Out:
        """Queues ``item`` and returns its outcome (or raises it)."""
        done: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        done.add_done_callback(retrieved)  # a request cancelled meanwhile leaves no unread error behind
        self._queue.append((item, done))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._queue:
                chosen = set(self._take([item for item, _ in self._queue]) or [0])
                group = [entry for i, entry in enumerate(self._queue) if i in chosen]
                self._queue = [entry for i, entry in enumerate(self._queue) if i not in chosen]
                await self._commit(group)
        except BaseException as exc:  # cancelled (shutdown): the queued requests learn it too
            for _, done in self._queue:
                settle(done, exc)
            self._queue = []
            raise
        finally:
            self._task = None

    async def _commit(self, group: list[Answer[Item, Out]]) -> None:
        try:
            outcomes = await self._write([item for item, _ in group])
        except self.per_item as exc:
            if len(group) == 1:
                settle(group[0][1], exc)
                return
            for i, entry in enumerate(group):  # each on its own: every request gets its own answer
                await self._commit([entry])
                if (outage := _outage_of(entry[1])) is not None:  # the rest waited through it too
                    for _, done in group[i + 1:]:
                        settle(done, outage)
                    return
            return
        except BaseException as exc:  # MongoDB down (no use retrying each), or cancelled: all learn it
            for _, done in group:
                settle(done, exc)
            if isinstance(exc, OUTAGE):  # and those that waited behind it (see the module's note)
                queued, self._queue = self._queue, []
                for _, done in queued:
                    settle(done, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, done), outcome in zip(group, outcomes, strict=True):
            settle(done, outcome)


def retrieved(done: asyncio.Future[Any]) -> None:
    """A done callback: reads the exception, so a future nobody awaits any more logs no warning."""
    if not done.cancelled():
        done.exception()


def _outage_of(done: asyncio.Future[Any]) -> BaseException | None:
    """The :data:`OUTAGE` error ``done`` was answered with, if any."""
    if done.done() and not done.cancelled() and isinstance(done.exception(), OUTAGE):
        return done.exception()
    return None


def settle(done: asyncio.Future[Out], outcome: Out | BaseException) -> None:
    """Answers ``done`` with a result or an exception (a cancellation cancels it), once."""
    if done.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        done.cancel()
    elif isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
