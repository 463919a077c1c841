"""Redis commands of concurrent requests, sent together: one pipeline per turn of the event loop.

On this kind of machine a Redis round trip costs far more CPU than the command: the profiles of
issue 14 (docs/benchmarks.md) put the ``send`` system call at the top of every request path, and
redis-py spends more again around each pipeline (a pooled connection, packing, reading). Under
load many requests reach a Redis step in the same turn of the loop; each one used to pay its own
round trip. Here they share one (what ioredis and Lettuce call auto-pipelining):

* :meth:`AutoPipeline.run` is called with a function that queues the caller's commands on a
  redis-py pipeline (``lambda pipe: pipe.mget(a, b)``, or helpers such as
  :meth:`solomo.core.scripts.LuaScript.queue`). The first caller of a turn opens the pipeline and
  schedules its sending with ``call_soon``: it goes out after every callback already due in this
  turn, so a caller alone waits no longer than before, and callers of the same turn ride along.
* Each caller gets its own commands' results, in order; an error among them is raised to that
  caller only (like ``execute()``), a connection error to every caller of the batch.
* A dead pooled connection (a restart, an idle ``timeout``, a ``CLIENT KILL``) costs no caller an
  error: one server's batch is sent again on a new connection (``execute_pipeline``, the pool's
  retry), and on a cluster the callers whose node answered with the error are sent again.
* It is not a transaction: commands of different callers interleave with nobody else's, but each
  caller's commands stay in order and contiguous. On a Redis Cluster the pipeline is redis-py's
  cluster pipeline (commands grouped by node).

Used on the request paths that run on every page (the token check, the feeds' reads, the post
cache, nearby's index read), after a group of check-ins (store views invalidated, offer judgements
forgotten: the group's answers resume in one turn) and by every
:class:`~solomo.core.scripts.LuaScript` run alone, in the API and the workers alike; code that
builds a pipeline of its own (the fan-out's batches, rebuilds) keeps it: those commands are already
one round trip. The per-turn batching of MongoDB point reads
is :mod:`solomo.core.idloader`'s, on the same pattern.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from redis.asyncio import RedisCluster

from solomo.core.redisio import execute_pipeline
from solomo.core.redistypes import RedisClient

MAX_COMMANDS = 2000
"""A batch is sent at once when it holds this many commands (bounded memory and reply size)."""


class AutoPipeline:
    """The shared pipeline of one Redis client (see the module)."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)  # one server's batch retries in execute_pipeline
        self._pipe: Any = None
        self._waiters: list[_Waiter] = []
        self._sending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def run(self, queue: Callable[[Any], object]) -> list[Any]:
        """Queues the caller's commands with ``queue(pipe)`` (it must only queue), then returns
        their results once the batch has been answered."""
        loop = asyncio.get_running_loop()
        pipe = self._pipe
        if pipe is None:
            pipe = self._pipe = self.redis.pipeline(transaction=False)
            self._waiters = []
            loop.call_soon(self._flush, pipe)
        start = len(pipe)
        queue(pipe)
        end = len(pipe)
        answer: asyncio.Future[list[Any]] = loop.create_future()
        self._waiters.append((start, end, answer, queue))
        if end >= MAX_COMMANDS:
            self._flush(pipe)
        results = await answer
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _flush(self, pipe: Any) -> None:
        if self._pipe is not pipe:  # sent already (it was full)
            return
        waiters, self._pipe, self._waiters = self._waiters, None, []
        task = asyncio.get_running_loop().create_task(self._send(pipe, waiters), name="solomo.autopipe")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, pipe: Any, waiters: list[_Waiter]) -> None:
        try:
            results = await execute_pipeline(pipe)
            # A cluster's pipeline answers a node's dead connection as that node's commands'
            # results (asked for results, redis-py does not retry it): those callers are sent once
            # more, as one server's batch is (redisio.execute_pipeline), on fresh connections
            # (redis-py marks the node's free ones after the error).
            if self.cluster:
                again = [w for w in waiters if any(type(r) in _NODE_FAILURES for r in results[w[0]:w[1]])]
                if again:
                    await self._send_again(again, results)
        except BaseException as exc:  # the connection failed (or shutdown): every caller hears it
            for _, _, answer, _ in waiters:
                if not answer.done():
                    answer.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for start, end, answer, _ in waiters:
            if not answer.done():  # a caller that was cancelled meanwhile no longer waits
                answer.set_result(results[start:end])

    async def _send_again(self, again: list[_Waiter], results: list[Any]) -> None:
        """Sends the callers ``again`` once more and puts their new results in ``results``; if that
        batch fails as a whole, only they hear it (the others were answered the first time)."""
        retry = self.redis.pipeline(transaction=False)
        spans = []
        for waiter in again:
            begin = len(retry)
            waiter[3](retry)
            spans.append((begin, len(retry)))
        try:
            redone = await execute_pipeline(retry)
        except Exception as exc:
            for waiter in again:
                results[waiter[0]:waiter[1]] = [exc] * (waiter[1] - waiter[0])
            return
        for (begin, end), waiter in zip(spans, again, strict=True):
            results[waiter[0]:waiter[1]] = redone[begin:end]


_Waiter = tuple[int, int, asyncio.Future[list[Any]], Callable[[Any], object]]
"""A caller of a batch: its commands' span in the pipeline, its answer, its queueing function."""
_NODE_FAILURES = frozenset(RedisCluster.ERRORS_ALLOW_RETRY)
"""Results that say a node did not answer (redis-py's own list of what it retries)."""


_SHARED: weakref.WeakKeyDictionary[Any, AutoPipeline] = weakref.WeakKeyDictionary()


def shared(redis: RedisClient) -> AutoPipeline:
    """The one :class:`AutoPipeline` of ``redis`` (every caller of a client shares its batches)."""
    batch = _SHARED.get(redis)
    if batch is None:
        batch = _SHARED[redis] = AutoPipeline(redis)
    return batch
