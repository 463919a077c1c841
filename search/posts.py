"""Post search (contract: Search): published posts holding every word of ``q`` (Chinese by
substring, other words by word prefix), newest first; the authors the viewer blocks or mutes, and
those who block the viewer, are left out (``feed.blocks.Screen``: the feeds' cached set).

One key drives the scan: the query's most selective key (:func:`_driver`), read newest first
from the ``(search_keys, created_ms, _id)`` index. MongoDB checks the other keys, the status and
the author on the posts it walks and stops as soon as it holds the rows the page still needs: only
those come back (their ids), not one row per entry walked, so a query whose words meet in one
post of a hundred still costs one round trip and about a page of decoded rows. The walk is bounded
by :data:`SCAN` entries per round; a page cut short there carries the cursor of the last entry
walked (one index read finds it). The survivors are loaded through the post cache and their text
checked (bigrams can match a text that does not hold the substring); a rejected one costs another
round, at most :data:`MAX_ROUNDS`. Removal needs no index work: the status is read at query time.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from feed.blocks import Screen
from feed.hydrate import PageLoader
from feed.posts import VISIBLE
from search.query import parse_q
from solomo.core.pagination import Position, cut_page, lookahead
from solomo.core.searchkeys import Run, contains_run, fold, run_keys, runs
from solomo.core.services import Services

SCAN = 4000
"""Index entries of the driving key walked per round, at most: two words each in one post of ten
and together in one of 130 fill a page of 20 in about 2,700 entries."""
MAX_ROUNDS = 3


def _driver(keys: list[str]) -> str:
    """The key likely to hold the fewest posts: a bigram, or a word prefix of 3+ letters, before
    one character or a short prefix."""
    def weight(key: str) -> int:
        kind, body = key[0], key[2:]
        return 12 if kind == "b" else 2 if kind == "c" else len(body) + (8 if len(body) >= 3 else 0)
    return max(keys, key=weight)


def _matches(view: dict[str, Any], q_runs: list[Run], hidden: frozenset[ObjectId]) -> bool:
    if view.get("status") != VISIBLE or view["author_id"] in hidden:
        return False
    text = fold(view["text"])
    return all(contains_run(text, run) for run in q_runs)


async def search_posts(services: Services, viewer_id: ObjectId, q: str, *, position: Position | None,
                       limit: int) -> tuple[list[dict[str, Any]], Position | None, PageLoader]:
    """(post views for the page, position after it, the loader that read them: hand it to
    ``hydrate_posts``)."""
    q_runs = runs(fold(parse_q(q)))
    loader = PageLoader(services, viewer_id)
    if not q_runs:  # nothing but punctuation and spaces: no word to look for
        return [], None, loader
    keys = list(dict.fromkeys(k for run in q_runs for k in run_keys(run)))
    driver = _driver(keys)
    # the viewer's shut-out set as the feeds read it (one SMEMBERS of the Redis copy, rebuilt from
    # MongoDB when missing, dropped by every block or mute): not three MongoDB queries a page
    hidden = await Screen(services, viewer_id).ready()
    check: dict[str, Any] = {"status": VISIBLE}
    if len(keys) > 1:
        check["search_keys"] = {"$all": keys}
    if hidden:
        check["author_id"] = {"$nin": list(hidden)}
    want, out, pos = lookahead(limit), list[dict[str, Any]](), position
    for _ in range(MAX_ROUNDS):
        match: dict[str, Any] = {"search_keys": driver}
        if pos is not None:
            ms = int(pos.score)
            match["$or"] = [{"created_ms": {"$lt": ms}}, {"created_ms": ms, "_id": {"$lt": pos.id}}]
        walk: list[dict[str, Any]] = [{"$match": match}, {"$sort": {"created_ms": -1, "_id": -1}}]
        need = want - len(out)
        pipeline = [*walk, {"$limit": SCAN}, {"$match": check}, {"$limit": need}, {"$project": {"created_ms": 1}}]
        rows = await (await services.db.posts.aggregate(pipeline, hint="search_keys_newest")).to_list(None)
        views = await loader.load([r["_id"] for r in rows]) if rows else {}
        for row in rows:
            view = views.get(row["_id"])
            if view is not None and _matches(view, q_runs, hidden):
                out.append(view)
                if len(out) == want:
                    return (*cut_page(out, limit, lambda v: Position(float(v["created_ms"]), v["_id"])), loader)
        if len(rows) < need:  # the round walked its whole window: the key ended, or the bound did
            edge = await (await services.db.posts.aggregate(
                [*walk, {"$skip": SCAN - 1}, {"$limit": 1}, {"$project": {"created_ms": 1}}],
                hint="search_keys_newest")).to_list(None)
            return out, (Position(float(edge[0]["created_ms"]), edge[0]["_id"]) if edge else None), loader
        pos = Position(float(rows[-1]["created_ms"]), rows[-1]["_id"])  # a row failed the text check
    return out, pos, loader
