"""Which store search keys no store holds: a store search skips the tiers that cannot match.

Most queries leave some tiers empty — the name-prefix tier (no name starts with ``咖啡``; its key
``n:咖啡`` is held by no store), the direct tier of a pinyin query (no name holds the word
``kafei``) — and reading an empty tier still cost a MongoDB round trip (~0.6 ms of a store search's
2-3 ms in the benchmark's profile). Each key has a flag in Redis, ``skf:<key>``: ``1`` when a store
may hold it, ``0`` when none did at the last look.

* A search reads its tiers' flags in one (auto-pipelined) round trip; a missing flag is looked up
  in MongoDB (one covered index probe) and set with ``SET NX``.
* Every write that gives a store keys (a new store, a rename) sets its keys' flags to ``1`` once
  committed. A reader's ``0`` is only ever set where no flag is (``NX``), so it cannot overwrite a
  writer's ``1``; a reader that looked before the commit and sets its ``0`` afterwards finds the
  writer's ``1`` already there. A ``1`` that is no longer true (a rename took the key away) only
  costs a probe: the tier is read and found empty.
* A ``0`` expires after :data:`EMPTY_TTL_S`: the bound on a new store missing from a tier should a
  writer's flag be lost (Redis unreachable right after the commit). A ``1`` after
  :data:`PRESENT_TTL_S`. Redis lost: every flag is missing, so every tier is probed or read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError

from solomo.core.keys import store_key_flag
from solomo.core.services import Services

log = logging.getLogger("solomo.search")

PRESENT_TTL_S = 86_400
EMPTY_TTL_S = 60


async def empty_keys(services: Services, keys: list[str]) -> set[str]:
    """Those of ``keys`` that no store holds (each checked at most once a minute in MongoDB)."""
    if not keys:
        return set()
    flags = await services.batch.run(lambda pipe: [pipe.get(store_key_flag(k)) for k in keys])
    unknown = [k for k, flag in zip(keys, flags, strict=True) if flag is None]
    empty = {k for k, flag in zip(keys, flags, strict=True) if flag == "0"}
    if unknown:
        held = await asyncio.gather(*(_held(services, k) for k in unknown))
        empty |= {k for k, h in zip(unknown, held, strict=True) if not h}

        def queue(pipe: Any) -> None:
            for k, h in zip(unknown, held, strict=True):
                pipe.set(store_key_flag(k), 1 if h else 0, nx=True, ex=PRESENT_TTL_S if h else EMPTY_TTL_S)

        await services.batch.run(queue)
    return empty


async def _held(services: Services, key: str) -> bool:
    return await services.db.stores.find_one({"search_keys": key}, {"_id": 1}, hint="search_keys_id") is not None


async def mark_held(services: Services, keys: Iterable[str]) -> None:
    """After a store with ``keys`` was committed: its keys may be searched in every tier. Best
    effort (see the module's note on a lost flag)."""
    todo = list(dict.fromkeys(keys))
    if not todo:
        return
    try:
        async with services.redis.pipeline(transaction=False) as pipe:
            for k in todo:
                pipe.set(store_key_flag(k), 1, ex=PRESENT_TTL_S)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("store search flags of %d keys not set: %s", len(todo), exc)
