"""Point reads by ``_id`` of concurrent requests, one MongoDB query per turn of the event loop.

The profile of the nearby-stores page under load (docs/benchmarks.md) put a sixth of the API's
CPU in the ``send`` of pymongo's queries: every request read its page's 21 stores with a query of
its own. A page's documents are wanted by many requests at once, so, as the Redis reads do
(:mod:`solomo.core.autopipe`), the requests of one turn share one ``find({_id: {$in: …}})``
(what GraphQL servers call a DataLoader):

* :meth:`IdLoads.load` adds the caller's ids to the turn's batch (:class:`TurnBatch`, the
  mechanism, also used for other reads that many requests make at once, such as the home feed's
  "which of the pull authors do I follow"); the first caller schedules the query with
  ``call_soon``, after every callback already due in this turn. A caller alone waits no longer
  than before.
* Each caller gets copies of its own documents (it may change them); an error reaches every
  caller of the batch.
* Reads only, outside transactions (a session's reads must stay in their session): what a
  request reads after its own committed write, it sees — the query is sent after the call.

Declared once per kind of read (collection + projection) as an :class:`IdLoads`; the per-process
state lives in ``services.extras``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, cast

from bson import ObjectId

from solomo.core.groupwrite import retrieved
from solomo.core.services import Services

MAX_IDS = 1000
"""A batch goes out at once when it names this many documents (or queries)."""

Docs = dict[ObjectId, dict[str, Any]]
Q = TypeVar("Q")
R = TypeVar("R")


class TurnBatch(Generic[Q, R]):
    """The queries of one turn of the event loop, answered by one ``fetch(queries)`` whose result
    every caller of the batch shares (each picks its own part). The mechanism of the module."""

    def __init__(self, fetch: Callable[[list[Q]], Awaitable[R]]) -> None:
        self.fetch = fetch
        self.pending: tuple[list[Q], asyncio.Future[R]] | None = None
        self.sending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def submit(self, queries: Iterable[Q]) -> R:
        loop = asyncio.get_running_loop()
        if self.pending is None:
            answer: asyncio.Future[R] = loop.create_future()
            answer.add_done_callback(retrieved)  # every caller may have left: no "never retrieved" warning
            self.pending = ([], answer)
            loop.call_soon(self._flush, self.pending)
        batch = self.pending
        batch[0].extend(queries)
        if len(batch[0]) >= MAX_IDS:
            self._flush(batch)
        return await asyncio.shield(batch[1])  # one caller's cancellation leaves the others' answer

    def _flush(self, batch: tuple[list[Q], asyncio.Future[R]]) -> None:
        if self.pending is not batch:  # sent already (it was full)
            return
        self.pending = None
        task = asyncio.get_running_loop().create_task(self._send(*batch), name="solomo.idloader")
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, queries: list[Q], answer: asyncio.Future[R]) -> None:
        try:
            result = await self.fetch(queries)
        except BaseException as exc:
            answer.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        answer.set_result(result)


class IdLoads:
    """One kind of point read: ``STORES_FOR_PAGES = IdLoads("stores", {"search_keys": 0})``, then
    ``docs = await STORES_FOR_PAGES.load(services, ids)`` → ``{_id: document}`` of those that exist."""

    def __init__(self, collection: str, projection: Mapping[str, Any] | None = None) -> None:
        self.collection = collection
        self.projection = dict(projection) if projection is not None else None
        self.key = f"solomo.idloads.{collection}.{sorted((projection or {}).items())}"

    async def load(self, services: Services, ids: Iterable[ObjectId]) -> Docs:
        wanted = list(ids)
        if not wanted:
            return {}
        found = await turn_batch(services, self.key, lambda: self._fetcher(services)).submit(wanted)
        return {oid: dict(found[oid]) for oid in wanted if oid in found}  # copies: a caller may change its own

    def _fetcher(self, services: Services) -> Callable[[list[ObjectId]], Awaitable[Docs]]:
        collection = services.db[self.collection]

        async def fetch(ids: list[ObjectId]) -> Docs:
            return {d["_id"]: d async for d in collection.find({"_id": {"$in": list(set(ids))}}, self.projection)}

        return fetch

    def __repr__(self) -> str:
        return f"IdLoads({self.collection!r})"


def turn_batch(services: Services, key: str, make_fetch: Callable[[], Callable[[list[Q]], Awaitable[R]]]
               ) -> TurnBatch[Q, R]:
    """The process's :class:`TurnBatch` named ``key`` (made with ``make_fetch()`` on first use)."""
    batch = services.extras.get(key)
    if batch is None:
        batch = services.extras[key] = TurnBatch(make_fetch())
    return cast(TurnBatch[Q, R], batch)
