"""MongoDB client and indexes. Each domain module declares ``INDEXES = {collection: [IndexModel]}``;
they are created idempotently at start-up."""

from __future__ import annotations

import importlib
from typing import Any

from pymongo import AsyncMongoClient

from solomo.core.mongo import Client, Database
from solomo.core.settings import Settings

INDEX_MODULES = [
    "solomo.core.idempotency",
    "solomo.accounts",
    "checkins.indexes",
    "feed.indexes",
    "offers.indexes",
    "moderation.indexes",
    "push.subscriptions",
    "search.indexes",
    "media.indexes",
    "notifications.indexes",
    "notifications.offerinbox",
    "profiles.indexes",
    "loyalty.indexes",
]


SERVER_SELECTION_MS = 2000
"""How long an operation waits for a primary: longer than an election (about 1 s with the set's
settings, docs/scaling.md), short enough that a request during an outage answers 503 within a few
seconds (PyMongo's own retry of a write or commit can wait this twice)."""

DURABILITY: dict[str, Any] = {
    "w": "majority",  # acknowledged only once a majority holds it: an election cannot roll it back
    "journal": True,  # ... and in those members' journals (a SIGKILL right after loses nothing)
    "retryWrites": True,  # a write cut off by an election is retried once on the new primary
    "retryReads": True,
    "readPreference": "primary",  # read your own writes; secondaries may lag
}
"""Also right for the embedded single-member set: its majority is itself."""


def mongo_client(settings: Settings, **kwargs: Any) -> Client:
    """The client for ``settings``; ``kwargs`` add to (or, for a test, override) the defaults."""
    options: dict[str, Any] = {
        "tz_aware": True, "serverSelectionTimeoutMS": SERVER_SELECTION_MS, "connectTimeoutMS": 3000,
        **DURABILITY, **kwargs,
    }
    return AsyncMongoClient(settings.effective_mongo_url, **options)


async def ensure_indexes(db: Database) -> None:
    for name in INDEX_MODULES:
        module = importlib.import_module(name)
        for collection, models in getattr(module, "INDEXES", {}).items():
            if models:
                await db[collection].create_indexes(models)
