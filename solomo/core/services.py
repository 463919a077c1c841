"""``Services``: the long-lived resources every domain function takes as its first argument.

Opened once per API process (the lifespan) or per worker process (Celery) by
:func:`solomo.services.open_services`, the composition root. Domain objects are cheap and built
per use from these (``Stores(services.db)``); only connections and shared state live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from solomo.core.autopipe import AutoPipeline, shared
from solomo.core.cache import SummaryCache
from solomo.core.events import EventPublisher
from solomo.core.mongo import Client, Database
from solomo.core.pagination import CursorCodec
from solomo.core.queue import TaskQueue
from solomo.core.redistypes import RedisClient
from solomo.core.settings import Settings

if TYPE_CHECKING:
    # type-only: accounts sit above core (they are built by the composition root)
    from solomo.accounts import Accounts, Authenticator


@dataclass
class Services:
    settings: Settings
    mongo: Client
    db: Database
    redis: RedisClient
    accounts: Accounts
    authenticator: Authenticator
    cursors: CursorCodec
    tasks: TaskQueue
    events: EventPublisher
    extras: dict[str, Any] = field(default_factory=dict)
    """Per-process singletons built lazily by the module that owns them (the rate limiter, say)."""
    summaries: SummaryCache = field(default_factory=SummaryCache)
    """Author and store summaries for post hydration (see :mod:`feed.hydrate`)."""

    @property
    def batch(self) -> AutoPipeline:
        """The Redis client's auto-pipeline (:mod:`solomo.core.autopipe`): request-path reads go through it."""
        return shared(self.redis)

    async def close(self) -> None:
        await self.tasks.aclose()
        await self.redis.aclose()
        await self.mongo.close()
