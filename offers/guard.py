"""Limits guessing at the counter: failed redemptions per store per minute.

Only failures count (an unknown code, or another store's code), so a busy store redeeming real
vouchers is never slowed down; once a store has used up its failures for the window, every
redemption there answers 429 until the window ends — a guesser learns nothing more.
"""

from __future__ import annotations

import time
from typing import Any

from solomo.core.errors import RateLimited

WINDOW_S = 60
MAX_FAILURES = 10


def _key(store_id: str, window: int) -> str:
    return f"rl:redeem:{store_id}:{window}"


async def check(services: Any, store_id: str, limit: int = MAX_FAILURES) -> None:
    now = time.time()
    window = int(now // WINDOW_S)
    failures = await services.redis.get(_key(store_id, window))
    if failures is not None and int(failures) >= limit:
        raise RateLimited("too many failed redemptions at this store; wait a minute",
                          retry_after=int(WINDOW_S - now % WINDOW_S) + 1)


async def record_failure(services: Any, store_id: str) -> None:
    window = int(time.time() // WINDOW_S)
    async with services.redis.pipeline(transaction=True) as pipe:
        pipe.incr(_key(store_id, window))
        pipe.expire(_key(store_id, window), WINDOW_S * 2)
        await pipe.execute()
