"""Views of documents kept in Redis, each guarded by a generation: the one mechanism behind the post
cache (:mod:`feed.postcache`) and the store cache (:mod:`checkins.storeviews`).

A *view* is what a page needs of a document, already shaped for JSON; a page reads its views with
one ``MGET`` (one per hash tag on a cluster) instead of a MongoDB read and a render per item.

MongoDB stays the truth. Correctness rests on one rule, which each user of this module states for
its own documents: **every change to a field a view holds calls** :meth:`ViewCache.invalidate`
**after it is committed**. An invalidation gives the document's generation key a new value and drops its view;
a reader that missed reads the generation *before* reading MongoDB and stores its view only if
the generation is still the same (:data:`_FILL`), so a view read before a change can never be
stored after it. Views also expire (``ttl_s``), which bounds the harm of a lost invalidation
(Redis down at that moment); a Redis flush only costs a refill from MongoDB.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

from bson import ObjectId

from solomo.core.idloader import IdLoads
from solomo.core.keys import by_hash_tag
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

View = dict[str, Any]

# KEYS: a view key, its generation key. ARGV: the generation read before reading MongoDB ('' for
# none), the view, its TTL. Stores the view only if no invalidation happened since.
_FILL = LuaScript("viewcache_fill", """
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
""")

# KEYS: a view key, its generation key. ARGV: TTL, a new generation. Sets the generation to a value
# never used before (a counter would start again at 1 once its key expired, and could then match
# what a reader read just before), drops the view.
_INVALIDATE = LuaScript("viewcache_invalidate", """
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[1]))
redis.call('DEL', KEYS[1])
return 1
""")


class ViewCache:
    """The cached views of one kind of document.

    ``view_key``/``gen_key``: a document id → its keys (the two share a hash tag); ``documents``:
    the MongoDB reads of a fill; ``to_view``/``encode``/``decode``: document → view → stored text →
    view (``decode`` may memoise, but then hands out copies)."""

    def __init__(self, *, view_key: Callable[[ObjectId], str], gen_key: Callable[[ObjectId], str],
                 documents: IdLoads, to_view: Callable[[dict[str, Any]], View], encode: Callable[[View], bytes],
                 decode: Callable[[str | bytes], View], ttl_s: int) -> None:
        self.view_key, self.gen_key = view_key, gen_key
        self.documents = documents
        self.to_view, self.encode, self.decode = to_view, encode, decode
        self.ttl_s = ttl_s

    def _groups(self, services: Services, keys: list[str]) -> list[list[str]]:
        """One group on one Redis; one group per hash tag on a cluster (MGET needs one slot)."""
        return by_hash_tag(keys) if services.settings.redis_cluster else [keys]

    def queue_read(self, services: Services, pipe: Any, ids: list[ObjectId]) -> int:
        """Queues the ``MGET`` of the views; returns how many results to hand :meth:`parse_read`."""
        groups = self._groups(services, [self.view_key(oid) for oid in ids])
        for group in groups:
            pipe.execute_command("MGET", *group)  # redis-py refuses pipe.mget() on a cluster; one slot is fine
        return len(groups)

    def read_groups(self, services: Services, ids: list[ObjectId]) -> int:
        """How many results :meth:`queue_read` queues for ``ids`` (one ``MGET`` per hash tag)."""
        if not services.settings.redis_cluster:
            return 1 if ids else 0
        return len(self._groups(services, [self.view_key(oid) for oid in ids]))

    def parse_read(self, services: Services, ids: list[ObjectId],
                   rows: list[Any]) -> tuple[dict[ObjectId, View], list[ObjectId]]:
        """(views found, ids that missed)."""
        if len(rows) == 1:
            bodies = rows[0]
        else:  # groups by hash tag: put the answers back in key order
            by_key = {k: v for group, values in zip(
                self._groups(services, [self.view_key(oid) for oid in ids]), rows, strict=True)
                for k, v in zip(group, values, strict=True)}
            bodies = [by_key[self.view_key(oid)] for oid in ids]
        found: dict[ObjectId, View] = {}
        missed: list[ObjectId] = []
        for oid, body in zip(ids, bodies, strict=True):
            if body is not None:
                found[oid] = self.decode(body)
            else:
                missed.append(oid)
        return found, missed

    async def generations(self, services: Services, ids: list[ObjectId]) -> dict[ObjectId, str]:
        """The documents' generations ('' for none): read before MongoDB by whoever fills."""
        keys = [self.gen_key(oid) for oid in ids]
        async with services.redis.pipeline(transaction=False) as pipe:
            groups = self._groups(services, keys)
            for group in groups:
                pipe.execute_command("MGET", *group)
            rows = await pipe.execute()
        values = {k: v for group, vals in zip(groups, rows, strict=True) for k, v in zip(group, vals, strict=True)}
        return {oid: values[key] or "" for oid, key in zip(ids, keys, strict=True)}

    async def fill(self, services: Services, missed: list[ObjectId],
                   seen: dict[ObjectId, str] | None = None) -> dict[ObjectId, View]:
        """Reads the missed documents from MongoDB and stores their views (unless invalidated
        meanwhile); returns the views of those that exist. ``seen``: their generations, if read."""
        if not missed:
            return {}
        if seen is None:
            seen = await self.generations(services, missed)  # before MongoDB: that is the guard
        views = {oid: self.to_view(d) for oid, d in (await self.documents.load(services, missed)).items()}
        if views:
            async with services.redis.pipeline(transaction=False) as pipe:
                for oid, view in views.items():
                    _FILL.queue(pipe, [self.view_key(oid), self.gen_key(oid)],
                                [seen[oid], self.encode(view), self.ttl_s])
                await pipe.execute()
        return views

    async def load(self, services: Services, ids: list[ObjectId]) -> dict[ObjectId, View]:
        """Views of ``ids`` (missing documents left out): one pipeline, MongoDB for the misses."""
        if not ids:
            return {}
        rows = await services.batch.run(lambda pipe: self.queue_read(services, pipe, ids))
        found, missed = self.parse_read(services, ids, rows)
        found.update(await self.fill(services, missed))
        return found

    async def invalidate(self, services: Services, ids: Iterable[ObjectId]) -> None:
        """Call after committing any change to what these documents' views hold."""
        wanted = list(ids)
        if not wanted:
            return
        def queue(pipe: Any) -> None:  # with the other requests' of this turn (a group of check-ins)
            for oid in wanted:
                _INVALIDATE.queue(pipe, [self.view_key(oid), self.gen_key(oid)], [self.ttl_s, secrets.token_hex(8)])

        await services.batch.run(queue)
