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
]


def mongo_client(settings: Settings, **kwargs: Any) -> Client:
    return AsyncMongoClient(
        settings.effective_mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        **kwargs,
    )


async def ensure_indexes(db: Database) -> None:
    for name in INDEX_MODULES:
        module = importlib.import_module(name)
        for collection, models in getattr(module, "INDEXES", {}).items():
            if models:
                await db[collection].create_indexes(models)
