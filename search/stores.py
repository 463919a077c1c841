"""Store search (contract: Search): name prefix, then Chinese substrings and Latin word prefixes,
then pinyin, then pinyin initials; within each kind nearest first when a point is given.

Tiers (:mod:`search.tiers`), decided on the store's folded name:

0. the name starts with the query (``人民广场`` → ``人民广场咖啡``);
1. every run of the query is in the name directly: a CJK substring, or the prefix of a word;
2. as 1, a Latin word of the query may also start the name's pinyin at some syllable (``kafei``);
3. as 2, or start the initials of the name's syllables (``rmgc``).

:func:`reindex_store` is the one call an edit of a store's name must make (``PATCH /v1/stores/{id}``).
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from search import keyflags, tiers, tiersets
from search.query import parse_q
from solomo.core.metrics import STORE_SEARCH_SET_PAGES
from solomo.core.pagination import Position, cut_page, lookahead
from solomo.core.searchkeys import (
    MAX_INITIALS,
    MAX_NAME_PREFIX,
    MAX_PINYIN,
    MAX_PREFIX,
    Run,
    contains_run,
    fold,
    pinyin_match,
    run_keys,
    runs,
    store_keys,
)
from solomo.core.services import Services

_ROW = {"name": 1}
"""What a search reads of a store: its id and, for the tiers a query's keys do not decide, its name
(the page is rendered from the cached views: :func:`checkins.stores.hydrate_found`)."""
_ID = {"_id": 1}
"""... and when the keys decide every tier: the id alone."""
_KIND_TIER = {"full": 2, "initials": 3}


def _level(q_runs: list[Run], t: int) -> dict[str, Any]:
    """Every run of the query found at kind ``t`` or better: 1 direct, 2 also pinyin, 3 also initials."""
    parts: list[dict[str, Any]] = []
    for run in q_runs:
        keys = run_keys(run)
        if run.kind == "word" and t >= 2:
            keys += ["p:" + run.text[:MAX_PINYIN]] + (["i:" + run.text[:MAX_INITIALS]] if t >= 3 else [])
            parts.append({"search_keys": {"$in": keys}})
        else:
            parts.append({"search_keys": {"$all": keys}} if len(keys) > 1 else {"search_keys": keys[0]})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def keys_decide(folded_q: str, q_runs: list[Run]) -> bool:
    """True when the keys alone decide every tier, i.e. a store holds a tier's keys exactly when its
    name matches at that tier: the query fits the name-prefix keys, each CJK run is one character or
    one bigram, each word fits the word-prefix keys and, if it could be pinyin, the pinyin and
    initials keys. Then no name (and no pinyin) need be checked at query time."""
    if len(folded_q) > MAX_NAME_PREFIX:
        return False
    for run in q_runs:
        if run.kind == "cjk" and len(run.text) > 2:
            return False
        if run.kind == "word" and len(run.text) > (MAX_INITIALS if run.text.isascii() else MAX_PREFIX):
            return False
    return True


def _tier_filters(folded_q: str, q_runs: list[Run], empty: frozenset[int] = frozenset()) -> list[dict[str, Any] | None]:
    """One filter per tier holding every store of that tier. When :func:`keys_decide`, each filter
    holds exactly the stores of its tier: a tier's keys without the better tier's (the levels
    nest: a name starting with the query holds all its runs directly, direct holds under pinyin,
    pinyin under initials). A tier in ``empty`` (known to hold no store) is None, and the next tier
    needs no exclusion of it: MongoDB would otherwise scan each examined store's ~90 keys for it."""
    prefix: dict[str, Any] = {"search_keys": "n:" + folded_q[:MAX_NAME_PREFIX]}
    if not q_runs:  # punctuation only: the name prefix is the only way to match
        return [prefix, None, None, None]
    words = any(r.kind == "word" for r in q_runs)
    levels: list[dict[str, Any] | None] = [prefix, _level(q_runs, 1)]
    levels += [_level(q_runs, 2), _level(q_runs, 3)] if words else [None, None]
    if not keys_decide(folded_q, q_runs):
        return [None if t in empty else level for t, level in enumerate(levels)]
    out: list[dict[str, Any] | None] = [None if 0 in empty else prefix]
    for t in range(1, 4):
        level, better = levels[t], levels[t - 1]
        if level is None or better is None or t in empty:
            out.append(None)
        else:
            out.append(level if t - 1 in empty else {"$and": [level, {"$nor": [better]}]})
    return out


def required_keys(folded_q: str, q_runs: list[Run]) -> list[list[str]]:
    """Per tier, keys that every store of the tier holds (a tier with one of them held by no store
    is empty: :mod:`search.keyflags`): the name prefix; every key of every run; then the CJK runs'
    keys only (a word may match by pinyin or initials instead)."""
    direct = [k for run in q_runs for k in run_keys(run)]
    cjk = [k for run in q_runs if run.kind == "cjk" for k in run_keys(run)]
    return [["n:" + folded_q[:MAX_NAME_PREFIX]], direct, cjk, cjk]


def tier_of_name(name: str, folded_q: str, q_runs: list[Run]) -> int | None:
    """The store's tier for the query (None: no match)."""
    folded = fold(name)
    if folded.startswith(folded_q):
        return 0
    worst = 1
    for run in q_runs:
        if contains_run(folded, run):
            continue
        kind = pinyin_match(folded, run.text) if run.kind == "word" and run.text.isascii() else None
        if kind is None:
            return None
        worst = max(worst, _KIND_TIER[kind])
    return worst if q_runs else None


_SET_PAGES = {True: STORE_SEARCH_SET_PAGES.labels(answered="yes"), False: STORE_SEARCH_SET_PAGES.labels(answered="no")}
"""Whether the tiers' GEO sets answered a first page (else MongoDB did): their hit rate, read by ops and tests."""


async def plan(services: Services, q: str) -> tuple[list[dict[str, Any] | None], tiers.TierOf]:
    """A query's tier filters (None: a tier no store can be in) and the check of a store's true tier
    (None when the filters are exact)."""
    folded_q = fold(parse_q(q))
    q_runs = runs(folded_q)
    required = required_keys(folded_q, q_runs)
    empty = await keyflags.empty_keys(services, list(dict.fromkeys(k for keys in required for k in keys)))
    # a tier needing a key no store holds cannot match: not read at all (None, as an absent tier)
    filters = _tier_filters(folded_q, q_runs, frozenset(
        t for t, keys in enumerate(required) if any(k in empty for k in keys)))

    def tier_of(doc: dict[str, Any]) -> int | None:
        return tier_of_name(doc["name"], folded_q, q_runs)

    return filters, None if keys_decide(folded_q, q_runs) else tier_of  # exact filters: nothing to check


async def search_stores(services: Services, q: str, *, lat: float | None = None, lng: float | None = None,
                        radius_m: float | None = None, category: str | None = None,
                        position: Position | None, limit: int, principal: Any = None) -> tiers.Result:
    """A page of store rows (``_id``, maybe ``name``, and ``distance_m`` when a point is given), best match
    first: render them with :func:`checkins.stores.hydrate_found`. A first page near a point with exact
    tiers comes from the tiers' GEO sets (:mod:`search.tiersets`; builds counted against ``principal``)."""
    filters, check = await plan(services, q)
    extra: dict[str, Any] = {"category": category} if category else {}
    projection = _ROW if check is not None else _ID
    if lat is not None and lng is not None:
        if check is None and position is None and tiersets.usable(lat, radius_m):
            assert radius_m is not None
            rows = await tiersets.first_page(
                services, [None if f is None else tiers.and_(f, extra) for f in filters], lat=lat, lng=lng,
                radius_m=radius_m, want=lookahead(limit), rank=tiers.geo_score, principal=principal)
            _SET_PAGES[rows is not None].inc()
            if rows is not None:
                return cut_page(rows, limit, tiers.position_of)
        return await tiers.by_distance(services.db.stores, filters, check, lat=lat, lng=lng, radius_m=radius_m,
                                       extra=extra, position=position, limit=limit, projection=projection)
    return await tiers.by_id(services.db.stores, filters, check, extra=extra, position=position, limit=limit,
                             projection=projection)


async def reindex_store(services: Services, store_id: ObjectId) -> None:
    """Recomputes a store's keys from its current name. Call it after every committed change of a
    store's name (``PATCH /v1/stores/{id}``): the rename is searchable as soon as it returns.

    The write is guarded by the name it was computed from, so a concurrent rename cannot leave the
    keys of the older name behind (the loser recomputes)."""
    for _ in range(5):
        doc = await services.db.stores.find_one({"_id": store_id}, {"name": 1})
        if doc is None:
            return
        keys = store_keys(doc["name"])
        result = await services.db.stores.update_one({"_id": store_id, "name": doc["name"]},
                                                     {"$set": {"search_keys": keys}})
        if result.matched_count:
            await keyflags.mark_held(services, keys)
            await tiersets.stores_changed(services)
            return
