"""Start-up migration: documents written before search existed get their ``search_keys``, and
published posts their topic counts.

Idempotent (keys are a function of the text; :func:`search.topics.sync_post` converges), so API
processes starting together may all run it; a marker in ``migrations`` makes later start-ups skip
the scans. New documents get their keys where they are written (``create_store``,
``Accounts.create_user``, ``build_post``) and their topic counts from the fan-out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from feed.posts import VISIBLE
from search import tiersets
from search.topics import sync_post
from solomo.core.searchkeys import post_keys, store_keys, user_keys
from solomo.core.services import Services

MIGRATION_ID = "search.keys.v1"
BATCH = 500


async def _fill(services: Services, collection: str, fields: dict[str, int],
                keys_of: Callable[[dict[str, Any]], list[str]]) -> int:
    coll = services.db[collection]
    done, ops = 0, []
    async for doc in coll.find({"search_keys": {"$exists": False}}, fields):
        ops.append(UpdateOne({"_id": doc["_id"], "search_keys": {"$exists": False}},
                             {"$set": {"search_keys": keys_of(doc)}}))
        if len(ops) >= BATCH:
            done += (await coll.bulk_write(ops, ordered=False)).modified_count
            ops = []
    if ops:
        done += (await coll.bulk_write(ops, ordered=False)).modified_count
    return done


async def backfill_search(services: Services, *, force: bool = False) -> int:
    """Keys for every store, user and post without them, then topic counts; returns documents changed."""
    db = services.db
    if not force and await db.migrations.find_one({"_id": MIGRATION_ID}) is not None:
        return 0
    changed = await _fill(services, "stores", {"name": 1}, lambda d: store_keys(d["name"]))
    await tiersets.stores_changed(services)
    changed += await _fill(services, "users", {"username": 1, "display_name": 1},
                           lambda d: user_keys(d["username"], d.get("display_name") or d["username"]))
    changed += await _fill(services, "posts", {"text": 1}, lambda d: post_keys(d.get("text") or ""))
    async for doc in db.posts.find({"status": VISIBLE, "topic_keys.0": {"$exists": True},
                                    "topics_counted": {"$ne": True}}, {"_id": 1}):
        changed += int(await sync_post(services, doc["_id"]))
    await db.migrations.update_one({"_id": MIGRATION_ID}, {"$set": {"done_at": datetime.now(UTC)}}, upsert=True)
    return changed
