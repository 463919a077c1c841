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

**The per-process memo.** A process keeps the views it read lately, each with the generation it
was read with (:class:`LocalViews`). A page then asks Redis only for the *generations* of the
views it holds — nothing for a post never changed, a 16-character token for one that was —
and for the views themselves of the others; a view is used from the memo only while its
generation is still the one Redis has. It is safe for the same reason a fill is: every change
sets a new generation before anyone can read the change, and a view and its generation are read
by one ``MGET`` (one slot), so the pair is always one moment's. Two losses are covered besides:

* a generation set by a change expires after ``ttl_s``, and the memo's entries live at most half
  of that (:attr:`LocalViews.max_age_s`), so none can outlive the generation that would refuse it;
* a Redis that lost its data loses the generations too: every page also reads
  ``keys.VIEWS_EPOCH`` (made by the first reader that finds it missing), and an entry read under
  another epoch is not used.

A view's body is what a page of photo posts spent most on: ~1.5 kB a post to send, read and parse
where a generation is a few bytes (docs/benchmarks.md, seventeenth round).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from bson import ObjectId
from redis.exceptions import RedisError

from solomo.core.idloader import IdLoads
from solomo.core.keys import VIEWS_EPOCH, by_hash_tag
from solomo.core.scripts import LuaScript
from solomo.core.services import Services

log = logging.getLogger(__name__)

View = dict[str, Any]

LOCAL_SIZE = 4096
"""Views a process keeps (:class:`LocalViews`) per kind of document: a few MB at most (0: none)."""

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


@dataclass(slots=True)
class _Held:
    """A view as a page read it: under which epoch and generation, and when."""

    epoch: Any
    generation: Any
    view: View
    born: float
    gen_key: str  # the view's generation key, made once (a page asks for it every time)


class Aged(Protocol):
    born: float
    """When it was read (``time.monotonic()``)."""


K = TypeVar("K", bound=Hashable)
H = TypeVar("H", bound=Aged)


class LocalViews(Generic[K, H]):
    """The views this process read lately (see the module), or any other entries read under a
    generation (the local feed's cell rows: :mod:`feed.cellrows`): at most ``size``, each for at
    most ``max_age_s``, least recently used dropped first."""

    def __init__(self, size: int, max_age_s: float) -> None:
        self.size, self.max_age_s = size, max_age_s
        self._held: OrderedDict[K, H] = OrderedDict()

    def get(self, key: K, now: float) -> H | None:
        """The entry for ``key`` unless older than ``max_age_s`` at ``now`` (``time.monotonic()``)."""
        held = self._held.get(key)
        if held is None:
            return None
        if now - held.born > self.max_age_s:
            del self._held[key]
            return None
        self._held.move_to_end(key)
        return held

    def put(self, key: K, held: H) -> None:
        self._held[key] = held
        self._held.move_to_end(key)
        if len(self._held) > self.size:
            self._held.popitem(last=False)

    def drop(self, key: K) -> None:
        self._held.pop(key, None)

    def __len__(self) -> int:
        return len(self._held)


@dataclass(slots=True)
class ViewRead:
    """One page's read of views (:meth:`ViewCache.plan`): which ids the memo holds (only their
    generations are read) and the ``MGET`` groups; ``results`` is how many pipeline results the
    read queues (:meth:`ViewCache.queue`), to hand to :meth:`ViewCache.parse`."""

    ids: list[ObjectId]
    held: dict[ObjectId, _Held] | None
    """The memo's entries among ``ids`` (None: this cache keeps no memo)."""
    keys: list[str]
    """Per id, in order: its view key (unless held), then its generation key (none without a memo)."""
    groups: list[list[str]]
    results: int


class ViewCache:
    """The cached views of one kind of document.

    ``view_key``/``gen_key``: a document id → its keys (the two share a hash tag); ``documents``:
    the MongoDB reads of a fill; ``to_view``/``encode``/``decode``: document → view → stored text →
    a new view (kept in the process's memo, :class:`LocalViews`: pages get shallow copies of it)."""

    def __init__(self, *, view_key: Callable[[ObjectId], str], gen_key: Callable[[ObjectId], str],
                 documents: IdLoads, to_view: Callable[[dict[str, Any]], View], encode: Callable[[View], bytes],
                 decode: Callable[[str | bytes], View], ttl_s: int, local_size: int = LOCAL_SIZE) -> None:
        self.view_key, self.gen_key = view_key, gen_key
        self.documents = documents
        self.to_view, self.encode, self.decode = to_view, encode, decode
        self.ttl_s = ttl_s
        # half the TTL: see the module
        self.local: LocalViews[ObjectId, _Held] | None = LocalViews(local_size, ttl_s / 2) if local_size else None

    def _groups(self, services: Services, keys: list[str]) -> list[list[str]]:
        """One group on one Redis; one group per hash tag on a cluster (MGET needs one slot)."""
        return by_hash_tag(keys) if services.settings.redis_cluster else [keys]

    def plan(self, services: Services, ids: list[ObjectId]) -> ViewRead:
        """What a page's read of ``ids`` asks Redis: the epoch, the generation of each view the
        memo holds, the view and its generation of each other (one ``MGET`` per hash tag on a
        cluster: a view's keys share its tag)."""
        if self.local is None:  # no memo: the views alone
            keys = [self.view_key(oid) for oid in ids]
            groups = self._groups(services, keys) if keys else []
            return ViewRead(ids, None, keys, groups, len(groups))
        held: dict[ObjectId, _Held] = {}
        keys = []
        now = time.monotonic()
        for oid in ids:
            h = self.local.get(oid, now)
            if h is None:
                keys.append(self.view_key(oid))
                keys.append(self.gen_key(oid))
            else:
                held[oid] = h
                keys.append(h.gen_key)
        groups = self._groups(services, keys) if keys else []
        return ViewRead(ids, held, keys, groups, len(groups) + 1)

    def queue(self, pipe: Any, read: ViewRead) -> None:
        """Queues ``read`` on a pipeline (its :attr:`ViewRead.results` results, in order)."""
        if read.held is not None:
            pipe.get(VIEWS_EPOCH)
        for group in read.groups:
            pipe.execute_command("MGET", *group)  # redis-py refuses pipe.mget() on a cluster; one slot is fine

    def parse(self, read: ViewRead, rows: list[Any]) -> tuple[dict[ObjectId, View], list[ObjectId]]:
        """(views found, ids that missed), from the results of :meth:`queue`. A view read here is
        kept in the memo; one held there is used while its epoch and generation are Redis's. With
        no epoch (Redis lost its data), nothing is used or kept: every id missed, and the fill
        that follows makes a new epoch (:meth:`_stored`)."""
        found: dict[ObjectId, View] = {}
        missed: list[ObjectId] = []
        local = self.local
        if read.held is None or local is None:  # no memo
            for oid, body in zip(read.ids, self._values(read, rows), strict=True):
                if body is None:
                    missed.append(oid)
                else:
                    found[oid] = self.decode(body)
            return found, missed
        epoch, values = rows[0], self._values(read, rows[1:])
        now = time.monotonic()
        at = 0
        for oid in read.ids:
            held = read.held.get(oid)
            if held is not None:
                generation = values[at]
                at += 1
                if epoch is not None and held.epoch == epoch and held.generation == generation:
                    found[oid] = dict(held.view)  # callers may change their copy
                else:  # changed since: the fill reads it again (Redis first), and the next page
                    local.drop(oid)  # reads it with its generation, as one not held
                    missed.append(oid)
                continue
            body, generation = values[at], values[at + 1]
            at += 2
            if body is None or epoch is None:
                missed.append(oid)
                continue
            view = self.decode(body)
            local.put(oid, _Held(epoch, generation, view, now, read.keys[at - 1]))
            found[oid] = dict(view)
        return found, missed

    @staticmethod
    def _values(read: ViewRead, rows: list[Any]) -> list[Any]:
        """The values of ``read.keys``, in order, from its ``MGET`` results."""
        if len(read.groups) <= 1:
            return rows[0] if read.groups else []
        got = {k: v for group, vals in zip(read.groups, rows, strict=True)  # groups by hash tag
               for k, v in zip(group, vals, strict=True)}
        return [got[k] for k in read.keys]

    async def generations(self, services: Services, ids: list[ObjectId]) -> dict[ObjectId, str]:
        """The documents' generations ('' for none), as a fill reads them before MongoDB (the
        tests' way to stand in the middle of one)."""
        keys = [self.gen_key(oid) for oid in ids]
        values = await self._mget(services, keys)
        return {oid: values[key] or "" for oid, key in zip(ids, keys, strict=True)}

    async def _mget(self, services: Services, keys: list[str], *, make_epoch: bool = False) -> dict[str, Any]:
        """The values of ``keys`` (one ``MGET`` per hash tag on a cluster), pipelined; with
        ``make_epoch``, the epoch made if missing, in the same round trip."""
        async with services.redis.pipeline(transaction=False) as pipe:
            groups = self._groups(services, keys)
            for group in groups:
                pipe.execute_command("MGET", *group)
            if make_epoch:
                pipe.set(VIEWS_EPOCH, secrets.token_hex(8), nx=True)
            rows = await pipe.execute()
        return {k: v for group, got in zip(groups, rows[:len(groups)], strict=True)
                for k, v in zip(group, got, strict=True)}

    async def fill(self, services: Services, missed: list[ObjectId],
                   seen: dict[ObjectId, str] | None = None) -> dict[ObjectId, View]:
        """Reads the missed documents from MongoDB and stores their views (unless invalidated
        meanwhile); returns the views of those that exist. ``seen``: their generations, if read."""
        if not missed:
            return {}
        found: dict[ObjectId, View] = {}
        if seen is None:  # the views Redis has (a memo entry changed since: another process filled
            found, seen = await self._stored(services, missed)  # it), and the others' generations
            missed = [oid for oid in missed if oid not in found]  # before MongoDB: that is the guard
            if not missed:
                return found
        views = {oid: self.to_view(d) for oid, d in (await self.documents.load(services, missed)).items()}
        if views:
            async with services.redis.pipeline(transaction=False) as pipe:
                for oid, view in views.items():
                    _FILL.queue(pipe, [self.view_key(oid), self.gen_key(oid)],
                                [seen[oid], self.encode(view), self.ttl_s])
                await pipe.execute()
        return {**found, **views}

    async def _stored(self, services: Services,
                      ids: list[ObjectId]) -> tuple[dict[ObjectId, View], dict[ObjectId, str]]:
        """(the views Redis holds, the generations of the others ('' for none)), one read. A page
        that found no epoch ends here (its ids all missed): the first such page after Redis lost
        its data makes the new one, which no memo entry holds."""
        values = await self._mget(services, [key for oid in ids for key in (self.view_key(oid), self.gen_key(oid))],
                                  make_epoch=self.local is not None)
        found: dict[ObjectId, View] = {}
        seen: dict[ObjectId, str] = {}
        for oid in ids:
            body = values[self.view_key(oid)]
            if body is not None:
                found[oid] = self.decode(body)
            else:
                seen[oid] = values[self.gen_key(oid)] or ""
        return found, seen

    async def load(self, services: Services, ids: list[ObjectId]) -> dict[ObjectId, View]:
        """Views of ``ids`` (missing documents left out): one pipeline, MongoDB for the misses."""
        if not ids:
            return {}
        read = self.plan(services, ids)
        rows = await services.batch.run(lambda pipe: self.queue(pipe, read))
        found, missed = self.parse(read, rows)
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

    async def invalidate_quietly(self, services: Services, ids: Iterable[ObjectId], what: str) -> None:
        """:meth:`invalidate` after a commit whose request must not fail for it: a Redis failure
        is logged, and the views it leaves stale expire within the TTL. For writes whose retry
        cannot repair the cache (a check-in: the cooldown refuses it) or whose Idempotency-Key a
        failure after the commit would hold in progress for a day (a comment, a repost)."""
        try:
            await self.invalidate(services, ids)
        except (RedisError, OSError) as exc:
            log.warning("%s: cached views not invalidated (they expire within %d s): %s", what, self.ttl_s, exc)
