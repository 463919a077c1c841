"""Per-user rate limits on writes (posts, comments, likes, reports, check-ins, claims …).

Built on the ``limits`` library's *moving window* (exact: no burst of 2x at a window edge) in
Redis, through its redis-py bridge (``implementation="redispy"``; the library's default client,
coredis, is not installed) sharing the app's connection pool. Keys are ``rl/…/{action}/{user}``.

Limits come from ``settings.rate_limits`` (``{"action": "30/minute;500/hour"}``, environment
``SOLOMO_RATE_LIMITS`` as JSON); defaults are generous for humans and for the test suite, and a
test that wants to see the limit passes its own low ``limit=`` to :func:`enforce`.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from solomo.errors import RateLimited

EXTRAS_KEY = "solomo.ratelimiter"
KEY_PREFIX = "rl"


@functools.lru_cache(maxsize=256)
def parse_limits(spec: str) -> tuple[RateLimitItem, ...]:
    """``"30/minute;500/hour"`` → limit items (cached: specs are few and immutable)."""
    return tuple(parse_many(spec))


def limiter(services: Any) -> MovingWindowRateLimiter:
    """One limiter per process (per worker thread), on the app's Redis connection pool."""
    rl = services.extras.get(EXTRAS_KEY)
    if rl is None:
        storage = RedisStorage(
            "async+" + services.settings.effective_redis_url,
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            connection_pool=services.redis.connection_pool,
        )
        rl = services.extras[EXTRAS_KEY] = MovingWindowRateLimiter(storage)
    return rl


def limits_for(services: Any, action: str) -> tuple[RateLimitItem, ...]:
    spec = services.settings.rate_limits.get(action)
    if spec is None:
        raise LookupError(f"no rate limit configured for action {action!r}")
    return parse_limits(spec) if spec.strip() else ()


async def enforce(services: Any, action: str, principal: Any, *, limit: str | None = None) -> None:
    """Counts one ``action`` by ``principal``; raises 429 ``rate_limited`` with ``Retry-After``
    once any of its limits is used up. ``limit`` overrides the configured spec (tests)."""
    items = parse_limits(limit) if limit is not None else limits_for(services, action)
    user = str(principal.id if hasattr(principal, "id") else principal)
    rl = limiter(services)
    for item in items:
        if not await rl.hit(item, action, user):
            stats = await rl.get_window_stats(item, action, user)
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(f"too many {action} requests; retry in {retry} s", retry_after=retry)
