"""Post search (contract: Search): published posts holding every word of ``q`` (Chinese by
substring, other words by word prefix), newest first; the authors the viewer blocks or mutes, and
those who block the viewer, are left out (``feed.blocks.Screen``: the feeds' cached set).

The query's most selective keys (:func:`_selective`) are intersected window by window, newest
first, :data:`WINDOW` entries per key: from their Redis listings (:mod:`search.listings`: the newest
posts of each key, one pipeline for all keys) while the listings cover the position, then from
MongoDB's ``(search_keys, created_ms, _id)`` index below the listings' floor
(:func:`intersect_pipeline`: covered scans, intersected by MongoDB). Either way a query whose words
meet in one post of a hundred costs entries, not documents: only the page's posts are loaded
(through the post cache), where their status, author and text are checked (bigrams can match a
text that does not hold the substring). A page that the windows or a check leave short goes on in
another round, at most :data:`MAX_ROUNDS`; then it carries the cursor of where the windows ended.
Removal needs no index work: the status is read at query time."""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import islice
from typing import Any

from bson import ObjectId

from feed.blocks import Screen
from feed.hydrate import PageLoader
from feed.postcache import folded_text
from feed.posts import VISIBLE
from search.listings import Window, read_windows, scores_of
from search.query import parse_q
from solomo.core.pagination import Position, cut_page, lookahead
from solomo.core.searchkeys import Run, contains_run, fold, run_keys, runs
from solomo.core.services import Services

WINDOW = 400
"""Index entries read per key in the first round; a round left short by its windows doubles them.
Two words each in one post of ten and together in one of 130 give a page of 20 under both in
400 entries of each (about 30 expected): a page of 20 in one round, now and then two."""
MAX_ROUNDS = 5
KEYS_READ = 3
"""At most this many keys are intersected (a long query has many bigrams; the text check is exact)."""

Row = dict[str, Any]
MAX_ID = ObjectId("f" * 24)


def _after(pos: Position | None) -> dict[str, Any]:
    if pos is None:
        return {}
    ms = int(pos.score)
    return {"$or": [{"created_ms": {"$lt": ms}}, {"created_ms": ms, "_id": {"$lt": pos.id}}]}


def intersect_pipeline(keys: list[str], pos: Position | None, need: int, window: int) -> list[dict[str, Any]]:
    """One document: ``hits``, the newest ``need`` posts under every key (``{_id, ms}``), and
    ``edges``, per key ``k`` the entries its window of ``window`` read (``n``) and the last one (``ms``, ``id``).

    Each window is a covered index scan (``$match``, ``$sort``, ``$limit`` and ``$project`` of
    indexed fields only), tagged with its key's number after the projection."""
    def scan(k: int) -> list[dict[str, Any]]:
        return [{"$match": {"search_keys": keys[k], **_after(pos)}}, {"$sort": {"created_ms": -1, "_id": -1}},
                {"$limit": window}, {"$project": {"created_ms": 1}}, {"$addFields": {"k": k}}]
    return [*scan(0), *({"$unionWith": {"coll": "posts", "pipeline": scan(k)}} for k in range(1, len(keys))),
            {"$facet": {
                "hits": [{"$group": {"_id": "$_id", "n": {"$sum": 1}, "ms": {"$first": "$created_ms"}}},
                         {"$match": {"n": len(keys)}}, {"$sort": {"ms": -1, "_id": -1}}, {"$limit": need}],
                "edges": [{"$group": {"_id": "$k", "n": {"$sum": 1}, "ms": {"$last": "$created_ms"},
                                      "id": {"$last": "$_id"}}}]}}]


async def _intersect(services: Services, keys: list[str], pos: Position | None, need: int,
                     window: int) -> tuple[list[Row], Position | None]:
    """(up to ``need`` posts under every key after ``pos``, newest first; where the windows end:
    None when every key ran out, so no post older than the hits holds them all)."""
    result = await (await services.db.posts.aggregate(intersect_pipeline(keys, pos, need, window))).to_list(None)
    hits, edges = result[0]["hits"], result[0]["edges"]
    full = [(e["ms"], e["id"]) for e in edges if e["n"] == window]
    if not full:
        return hits, None
    # a full window says nothing about posts older than its last entry, so the next round starts
    # after the newest such entry (a hit, in every window, is never older than it)
    ms, oid = max(full)
    return hits, Position(float(ms), oid)


async def intersect_windows(services: Services, windows: list[Window],
                            need: int) -> tuple[list[Row], Position | None, float] | None:
    """Of the listings' windows (one per key): up to ``need`` posts in every window above the
    listings' common floor (``{_id, ms}``, newest first); where the windows end (None when every
    key ran out above the floor); that floor (``-inf``: the listings hold everything). None when a
    listing changed between the windows' read and their scores' (a post taken out meanwhile): the
    caller reads this round from MongoDB.

    The windows come without scores (:class:`search.listings.Window`): the intersection runs on the
    members, then one more round trip reads the scores of its first ``need`` posts and of each full
    window's last entry. The posts at or below the common floor are a suffix of those (the windows
    are in page order), dropped there; a full window says where the round ends only if its last
    entry is above the floor."""
    floor = max(w.floor for w in windows)
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].members))  # walk the shortest
    walk = windows[order[0]]
    members: Iterable[bytes] = walk.members
    for i in order[1:]:  # a chain of C filters: a Python test per member was a tenth of a search
        members = filter(set(windows[i].members).__contains__, members)
    found = list(islice(members, need))
    full = [w for w in windows if w.full and w.members]
    asks = ([(walk.key, found)] if found else []) + [(w.key, [w.members[-1]]) for w in full]
    scores = await scores_of(services, asks) if asks else []
    found_scores = scores.pop(0) if found else []
    if any(score is None for row in [found_scores, *scores] for score in row):
        return None
    hits: list[Row] = []
    for member, score in zip(found, found_scores, strict=True):
        assert score is not None
        if score <= floor:
            break
        hits.append({"_id": ObjectId(member.decode()), "ms": score})  # the members stay bytes until kept
    # as in MongoDB's round: a full window says nothing about what is older than its last entry
    ends = [(score, w.members[-1]) for w, [score] in zip(full, scores, strict=True)
            if score is not None and score > floor]
    edge = max(ends) if ends else None
    return hits, None if edge is None else Position(edge[0], ObjectId(edge[1].decode())), floor


def _below(floor: float, pos: Position | None) -> Position | None:
    """Where MongoDB takes over: at the floor (every post of its millisecond included), or at
    ``pos`` if that is older; ``pos`` when no listing covers anything (a floor of ``inf``)."""
    if math.isinf(floor):
        return pos
    below = Position(floor, MAX_ID)
    return below if pos is None or below < pos else pos


def _selective(keys: list[str]) -> list[str]:
    """The :data:`KEYS_READ` keys likely to hold the fewest posts: bigrams, and word prefixes of 3+
    letters, before single characters and short prefixes. The text check covers the others."""
    def weight(key: str) -> int:
        kind, body = key[0], key[2:]
        return 12 if kind == "b" else 2 if kind == "c" else len(body) + (8 if len(body) >= 3 else 0)
    return sorted(keys, key=weight, reverse=True)[:KEYS_READ]


def _matches(view: dict[str, Any], q_runs: list[Run], hidden: frozenset[ObjectId]) -> bool:
    if view.get("status") != VISIBLE or view["author_id"] in hidden:
        return False
    text = folded_text(view)
    return all(contains_run(text, run) for run in q_runs)


async def search_posts(services: Services, viewer_id: ObjectId, q: str, *, position: Position | None,
                       limit: int) -> tuple[list[dict[str, Any]], Position | None, PageLoader]:
    """(post views for the page, position after it, the loader that read them: hand it to
    ``hydrate_posts``)."""
    q_runs = runs(fold(parse_q(q)))
    # the viewer's shut-out set as the feeds read it (one SMEMBERS of the Redis copy, rebuilt from
    # MongoDB when missing, dropped by every block or mute): not three MongoDB queries a page; read
    # in the loader's pipeline with the first posts found, not in a round trip of its own
    screen = Screen(services, viewer_id)
    loader = PageLoader(services, viewer_id, screen)
    if not q_runs:  # nothing but punctuation and spaces: no word to look for
        return [], None, loader
    keys = list(dict.fromkeys(k for run in q_runs for k in run_keys(run)))
    want, out, pos, window = lookahead(limit), list[dict[str, Any]](), position, WINDOW
    selected, in_listings = _selective(keys), True
    for _ in range(MAX_ROUNDS):
        need, grow = want - len(out), True
        listed = await intersect_windows(services, await read_windows(services, selected, pos, window), need) \
            if in_listings else None
        if listed is not None:
            hits, edge, floor = listed
            if edge is None and floor > -math.inf and len(hits) < need:
                # the listings ran out at their floor: the older posts are MongoDB's (next round)
                in_listings, edge, grow = False, _below(floor, pos), False
        else:  # below the listings, or a listing changed under this round: MongoDB, the truth
            hits, edge = await _intersect(services, selected, pos, need, window)
        views = await loader.load([h["_id"] for h in hits]) if hits else {}
        hidden = await screen.ready() if hits else frozenset()
        for hit in hits:
            view = views.get(hit["_id"])
            if view is not None and _matches(view, q_runs, hidden):
                out.append(view)
                if len(out) == want:
                    return (*cut_page(out, limit, lambda v: Position(float(v["created_ms"]), v["_id"])), loader)
        if len(hits) == need:  # some failed a check: go on after the last one
            pos = Position(float(hits[-1]["ms"]), hits[-1]["_id"])
        elif edge is None:
            return out, None, loader
        else:
            pos, window = edge, window * 2 if grow else window
    return out, pos, loader
