"""Lua scripts, one way for every module: declared once, run alone or queued on a pipeline.

Every key a script touches comes in ``KEYS`` (never built inside the script), and all of them
share one hash tag (:func:`solomo.core.keys.by_hash_tag`), so the same script runs on one Redis
and on a Redis Cluster. ``tests/test_lua_keys.py`` reads every declared script and fails the
build if one builds a key name.

A script always goes out as ``EVAL`` on a pipeline: queued on the caller's own, or, run alone, on
the client's auto-pipeline with whatever else the turn of the event loop sends (one round trip
for many requests). ``EVAL`` needs no "does the server know it yet" fallback after a new server,
a failover or a flush, and redis-py refuses ``EVALSHA`` inside a cluster pipeline anyway; Redis
caches the compiled script by its hash, so the cost of sending the source is its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from solomo.core.autopipe import shared
from solomo.core.redistypes import RedisClient


class LuaScript:
    declared: ClassVar[list[LuaScript]] = []
    """Every script of the code base (for the key-name test)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        LuaScript.declared.append(self)

    async def __call__(self, redis: RedisClient, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """One run, on the client's auto-pipeline (:mod:`solomo.core.autopipe`): runs of concurrent
        requests in one turn of the event loop share a round trip."""
        return (await shared(redis).run(lambda pipe: self.queue(pipe, keys, args)))[0]

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Any] = ()) -> None:
        """Adds one run to a pipeline (its result comes back from ``execute()`` in order)."""
        pipe.eval(self.source, len(keys), *keys, *args)

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r})"
