"""Rate limits: per user on writes (posts, comments, likes, reports, check-ins, claims, follows …),
and per client address or per username where no account is signed in yet (register, login).

Built on the ``limits`` library's *moving window* (exact: no burst of 2x at a window edge) in
Redis, through its redis-py bridge (``implementation="redispy"``; the library's default client,
coredis, is not installed) sharing the app's connection pool. Keys are ``rl/…/{action}/{key}``,
where the key is a user id, a client address (:func:`client_ip`) or any other string.

Limits come from ``settings.rate_limits`` (``{"action": "30/minute;500/hour"}``, environment
``SOLOMO_RATE_LIMITS`` as JSON); defaults are generous for humans and for the test suite, and a
test that wants to see the limit passes its own low ``limit=`` to :func:`enforce` (or sets the
setting). Actions without an account: ``login`` counts *failed* logins per lower-cased username
and client address (:func:`login_key`; :func:`ensure_room` before the password hash, :func:`count`
after a failure, so guessing one account's password is slow while its owner, from an address that
has not failed, can still sign in), ``login_failed_ip`` failed logins per client address (one
address trying many usernames), ``login_ip`` every login attempt per client address, ``register``
new accounts per client address.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Any, cast

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from solomo.core.errors import RateLimited
from solomo.core.keys import RATE_LIMIT_PREFIX
from solomo.core.services import Services
from solomo.core.settings import Settings

EXTRAS_KEY = "solomo.ratelimiter"
CONNECTED_KEY = "solomo.ratelimiter.connected"


@functools.lru_cache(maxsize=256)
def parse_limits(spec: str) -> tuple[RateLimitItem, ...]:
    """``"30/minute;500/hour"`` → limit items (cached: specs are few and immutable)."""
    return tuple(parse_many(spec))


def limiter(services: Services) -> MovingWindowRateLimiter:
    """One limiter per process (per worker thread): on the app's Redis connection pool, or on a
    Redis Cluster through the library's cluster storage (each window is one key, so it is
    cluster-safe as it is)."""
    rl = services.extras.get(EXTRAS_KEY)
    if rl is None:
        settings = services.settings
        storage: RedisStorage
        if settings.redis_cluster:
            host_port = settings.effective_redis_url.split("://", 1)[1].split("/", 1)[0]
            storage = RedisClusterStorage(f"async+redis+cluster://{host_port}", implementation="redispy",
                                          key_prefix=RATE_LIMIT_PREFIX)
        else:
            assert isinstance(services.redis, Redis)  # not a cluster: one server, one pool
            # the app's pool (the library's option types do not name it, hence the plain dict)
            pool: dict[str, Any] = {"connection_pool": services.redis.connection_pool}
            storage = RedisStorage("async+" + settings.effective_redis_url, implementation="redispy",
                                   key_prefix=RATE_LIMIT_PREFIX, **pool)
        rl = services.extras[EXTRAS_KEY] = MovingWindowRateLimiter(storage)
    return cast(MovingWindowRateLimiter, rl)


async def connected_limiter(services: Services) -> MovingWindowRateLimiter:
    """:func:`limiter`, its cluster client connected by one caller first. redis-py's async
    ``RedisCluster`` (the library's own, created lazily) learns the topology on its first command
    and then recycles the connections that concurrent first commands are opening: a burst of
    requests to a fresh API process failed with ``AttributeError`` (a 500). One PING under a lock
    does that first contact alone; until it succeeds (Redis down) the next caller tries again."""
    rl = limiter(services)
    if services.settings.redis_cluster and not services.extras.get(CONNECTED_KEY):
        lock = services.extras.setdefault(CONNECTED_KEY + ".lock", asyncio.Lock())
        async with lock:
            if not services.extras.get(CONNECTED_KEY):
                services.extras[CONNECTED_KEY] = await rl.storage.check()
    return rl


@functools.cache
def default_specs() -> dict[str, str]:
    """Every action's default limits (what ``SOLOMO_RATE_LIMITS`` overrides key by key)."""
    factory = Settings.model_fields["rate_limits"].default_factory
    return factory() if factory is not None else {}  # type: ignore[call-arg]


def limits_for(services: Services, action: str) -> tuple[RateLimitItem, ...]:
    """The configured spec of ``action``; one that ``SOLOMO_RATE_LIMITS`` leaves out keeps its
    default (the variable replaces the whole mapping), so a partial override never breaks a route."""
    spec = services.settings.rate_limits.get(action)
    if spec is None:
        spec = default_specs().get(action)
    if spec is None:
        raise LookupError(f"no rate limit configured for action {action!r}")
    return parse_limits(spec) if spec.strip() else ()


def _key(who: Any) -> str:
    """A principal (its id) or any key string (a client address, a lower-cased username …)."""
    return str(who.id if hasattr(who, "id") else who)


def _items(services: Services, action: str, limit: str | None) -> tuple[RateLimitItem, ...]:
    return parse_limits(limit) if limit is not None else limits_for(services, action)


async def _refuse(rl: MovingWindowRateLimiter, item: RateLimitItem, action: str, key: str) -> RateLimited:
    stats = await rl.get_window_stats(item, action, key)
    retry = max(1, math.ceil(stats.reset_time - time.time()))
    return RateLimited(f"too many {action} requests; retry in {retry} s", retry_after=retry)


async def enforce(services: Services, action: str, principal: Any, *, limit: str | None = None) -> None:
    """Counts one ``action`` by ``principal`` (or any key string); raises 429 ``rate_limited``
    with ``Retry-After`` once any of its limits is used up. ``limit`` overrides the configured
    spec (tests)."""
    key = _key(principal)
    rl = await connected_limiter(services)
    for item in _items(services, action, limit):
        if not await rl.hit(item, action, key):
            raise await _refuse(rl, item, action, key)


async def ensure_room(services: Services, action: str, who: Any, *, limit: str | None = None) -> None:
    """429 if ``who`` has used up ``action``, without counting anything. With :func:`count`, this
    limits only some outcomes (failed logins) while checking before the costly work."""
    key = _key(who)
    rl = await connected_limiter(services)
    for item in _items(services, action, limit):
        if not await rl.test(item, action, key):
            raise await _refuse(rl, item, action, key)


async def count(services: Services, action: str, who: Any, *, limit: str | None = None) -> None:
    """Counts one ``action`` by ``who`` without refusing (the next :func:`ensure_room` will)."""
    key = _key(who)
    rl = await connected_limiter(services)
    for item in _items(services, action, limit):
        await rl.hit(item, action, key)


def login_key(username: str, ip: str) -> str:
    """The key of failed logins for one username from one address (an address holds no ``/``)."""
    return f"{ip}/{username.lower()}"


def client_ip(request: Any) -> str:
    """The caller's address as the ASGI server reports it. Behind a proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips <proxy>`` so this is the client's, not the proxy's."""
    client = getattr(request, "client", None)
    return client.host if client is not None and client.host else "unknown"
