"""The composition root: opens the connections and builds :class:`solomo.core.services.Services`.

Opened in the lifespan (API) or per worker process (Celery).
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from checkins.visitdays import backfill_visit_days
from feed.locations import migrate_public_locations
from push.dispatch import install as install_push
from search.backfill import backfill_search
from solomo.accounts import Accounts, Authenticator, PasswordHashing, TokenCache
from solomo.core.events import EventPublisher
from solomo.core.pagination import CursorCodec
from solomo.core.queue import TaskQueue
from solomo.core.redisio import DRIVER, SlotTrustingCluster, WatchedConnection
from solomo.core.redistypes import RedisClient
from solomo.core.services import Services
from solomo.core.settings import Settings
from solomo.db import ensure_indexes, mongo_client


def redis_client(settings: Settings) -> RedisClient:
    """The data Redis: one server, or with ``SOLOMO_REDIS_CLUSTER`` a Redis Cluster found from the
    node that ``SOLOMO_REDIS_URL`` names (redis-py follows slot moves and failovers itself)."""
    # socket_timeout=None: the watchdog of solomo.core.redisio bounds every send and reply instead
    # (10 s, the same failure as a socket timeout, without a timer and a task per operation).
    if settings.redis_cluster:
        cluster = SlotTrustingCluster.from_url(
            settings.effective_redis_url, decode_responses=True, max_connections=512, protocol=2, driver_info=DRIVER,
            socket_connect_timeout=3, socket_timeout=None, health_check_interval=30,
        )
        # RedisCluster takes no connection_class argument: its nodes are made from these kwargs
        # (shared with its NodesManager), and the start-up nodes exist already.
        cluster.connection_kwargs["connection_class"] = WatchedConnection
        for node in cluster.startup_nodes:
            node.connection_class = WatchedConnection
        return cluster
    # A blocking pool: under a burst, callers wait (up to 5 s) for a free connection instead of
    # failing with "Too many connections". One retry on a dropped connection: after a restart of
    # redis-server a pooled connection is stale, and the first command on it would fail.
    pool = BlockingConnectionPool.from_url(
        settings.effective_redis_url, decode_responses=True, max_connections=512, timeout=5, protocol=2,
        driver_info=DRIVER, connection_class=WatchedConnection, socket_connect_timeout=3, socket_timeout=None,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=1,
                    supported_errors=(RedisConnectionError, RedisTimeoutError)),
    )
    return Redis.from_pool(pool)


async def open_services(settings: Settings, *, create_indexes: bool = True) -> Services:
    from workers.app import make_celery

    mongo = mongo_client(settings)
    db = mongo[settings.mongo_db]
    if create_indexes:
        await ensure_indexes(db)
    redis = redis_client(settings)
    hashing = PasswordHashing(settings.password_time_cost, settings.password_memory_kib)
    token_cache = TokenCache(redis)
    services = Services(
        settings=settings,
        mongo=mongo,
        db=db,
        redis=redis,
        accounts=Accounts(db, hashing, settings.token_ttl_days, token_cache, settings.max_tokens_per_user),
        authenticator=Authenticator(db, token_cache),
        cursors=CursorCodec(settings.secret_key),
        tasks=TaskQueue(make_celery(settings)),
        events=EventPublisher(redis, settings.event_history),
    )
    install_push(services)  # Web Push for users without a socket: one sink on the event path
    if create_indexes:  # the API's start-up: data migrations run with the indexes (idempotent)
        await migrate_public_locations(services)
        await backfill_search(services)
        await backfill_visit_days(services)
    return services
