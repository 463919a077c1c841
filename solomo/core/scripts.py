"""Lua scripts, one way for every module: declared once, run alone or queued on a pipeline.

Every key a script touches comes in ``KEYS`` (never built inside the script), and all of them
share one hash tag (:func:`solomo.core.keys.by_hash_tag`), so the same script runs on one Redis
and on a Redis Cluster. ``tests/test_lua_keys.py`` reads every declared script and fails the
build if one builds a key name.

Alone, a script runs as ``EVALSHA`` and falls back to ``EVAL`` when the server does not know it
yet (a new server, a failover, a flush). On a pipeline it is queued as ``EVAL``: redis-py refuses
``EVALSHA`` inside a cluster pipeline, and one code path serves both shapes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

from redis.exceptions import NoScriptError

from solomo.core.redistypes import RedisClient


class LuaScript:
    declared: ClassVar[list[LuaScript]] = []
    """Every script of the code base (for the key-name test)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        LuaScript.declared.append(self)

    async def __call__(self, redis: RedisClient, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Any] = ()) -> None:
        """Adds one run to a pipeline (its result comes back from ``execute()`` in order)."""
        pipe.eval(self.source, len(keys), *keys, *args)

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r})"
