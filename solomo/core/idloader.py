"""Point reads by ``_id`` of concurrent requests, one MongoDB query per turn of the event loop.

The profile of the nearby-stores page under load (docs/benchmarks.md) put a sixth of the API's
CPU in the ``send`` of pymongo's queries: every request read its page's 21 stores with a query of
its own. A page's documents are wanted by many requests at once, so, as the Redis reads do
(:mod:`solomo.core.autopipe`), the requests of one turn share one ``find({_id: {$in: …}})``
(what GraphQL servers call a DataLoader):

* :meth:`IdLoads.load` adds the caller's ids to the turn's set; the first caller schedules the
  query with ``call_soon``, after every callback already due in this turn. A caller alone waits
  no longer than before.
* Each caller gets copies of its own documents (it may change them); an error reaches every
  caller of the batch.
* Reads only, outside transactions (a session's reads must stay in their session): what a
  request reads after its own committed write, it sees — the query is sent after the call.

Declared once per kind of read (collection + projection) as an :class:`IdLoads`; the per-process
state lives in ``services.extras``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from bson import ObjectId

from solomo.core.services import Services

MAX_IDS = 1000
"""A batch goes out at once when it names this many documents."""

Docs = dict[ObjectId, dict[str, Any]]


class _Batcher:
    def __init__(self, collection: Any, projection: Mapping[str, Any] | None) -> None:
        self.collection = collection
        self.projection = dict(projection) if projection is not None else None
        self.pending: tuple[set[ObjectId], asyncio.Future[Docs]] | None = None
        self.sending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def load(self, ids: Iterable[ObjectId]) -> Docs:
        wanted_now = list(ids)
        if not wanted_now:
            return {}
        loop = asyncio.get_running_loop()
        if self.pending is None:
            answer: asyncio.Future[Docs] = loop.create_future()
            answer.add_done_callback(_retrieved)  # every caller may have left: no "never retrieved" warning
            self.pending = (set(), answer)
            loop.call_soon(self._flush, self.pending)
        batch = self.pending
        batch[0].update(wanted_now)
        if len(batch[0]) >= MAX_IDS:
            self._flush(batch)
        found = await asyncio.shield(batch[1])  # one caller's cancellation leaves the others' answer
        return {oid: dict(found[oid]) for oid in wanted_now if oid in found}

    def _flush(self, batch: tuple[set[ObjectId], asyncio.Future[Docs]]) -> None:
        if self.pending is not batch:  # sent already (it was full)
            return
        self.pending = None
        task = asyncio.get_running_loop().create_task(self._send(*batch), name="solomo.idloader")
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, ids: set[ObjectId], answer: asyncio.Future[Docs]) -> None:
        try:
            docs = {d["_id"]: d async for d in self.collection.find({"_id": {"$in": list(ids)}}, self.projection)}
        except BaseException as exc:
            answer.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        answer.set_result(docs)


def _retrieved(answer: asyncio.Future[Docs]) -> None:
    if not answer.cancelled():
        answer.exception()


class IdLoads:
    """One kind of point read: ``STORES_FOR_PAGES = IdLoads("stores", {"search_keys": 0})``, then
    ``docs = await STORES_FOR_PAGES.load(services, ids)`` → ``{_id: document}`` of those that exist."""

    def __init__(self, collection: str, projection: Mapping[str, Any] | None = None) -> None:
        self.collection = collection
        self.projection = projection
        self.key = f"solomo.idloads.{collection}.{sorted((projection or {}).items())}"

    async def load(self, services: Services, ids: Iterable[ObjectId]) -> Docs:
        batcher = services.extras.get(self.key)
        if batcher is None:
            batcher = services.extras[self.key] = _Batcher(services.db[self.collection], self.projection)
        return await batcher.load(ids)

    def __repr__(self) -> str:
        return f"IdLoads({self.collection!r})"
