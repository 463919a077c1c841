"""Fan-out checkpoints that a Redis Cluster failover cannot get ahead of.

Redis replicates asynchronously: a master answers a write, then streams it to its replica. A master
killed in between takes the write with it when its replica is promoted. The fan-out records its
progress in MongoDB (``fanout_progress``) and a retried run starts after it, so a checkpoint written
past such a write made the loss permanent: the cluster drill (tests/faults/test_cluster_failover.py)
once found 7 of 20,000 feeds without the post, all in one batch written just before the kill: a
later checkpoint had been written past them, so no retry wrote them again.

:class:`ReplicaFence` closes both ends of that window:

* :meth:`ReplicaFence.confirm` runs before a checkpoint and before the fan-out is marked done. Each
  master holding a reader bucket gets a *fence* on one of its connections: ``INCR`` of a key in a
  slot it serves, then ``WAIT 1`` on the same connection. A master's replication stream is one
  ordered log, so once a replica has the fence it has every write the master answered before it;
  a master with a replica online (``INFO replication``) none of which acknowledges within
  :data:`WAIT_MS` raises.
* A run that sees the buckets' masters change (a failover redis-py rode out) raises too, whatever
  the fences say: writes answered by the old master after the last fence may be gone.

Either raise is a :class:`FailoverSeen` (a ``ClusterError``): the fan-out task's Celery retry runs
the post again from its last checkpoint, which was fenced (rewriting a feed entry is harmless).
On a single Redis, which has no replica to promote, the fence does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import RedisCluster
from redis.exceptions import AskError, ClusterError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from solomo.core.keys import BUCKETS, fanout_fence
from solomo.core.sidetasks import finished

T = TypeVar("T")

WAIT_MS = 1000
"""How long a fence waits for one replica's acknowledgement (normally well under a millisecond)."""


class FailoverSeen(ClusterError):
    """Writes since the last fence may be lost (a master changed, or its replica did not keep up)."""


class ReplicaFence:
    """One fan-out run's view of the masters of the reader buckets (see the module); made by
    :meth:`start` before the run writes anything."""

    def __init__(self, cluster: RedisCluster | None, masters: dict[str, tuple[Any, int, str]]) -> None:
        self.cluster = cluster
        self.masters = masters
        """Per master's name: (the node, how many replicas it has, the fence key in its slots)."""

    @classmethod
    async def start(cls, redis: Any) -> ReplicaFence:
        if not isinstance(redis, RedisCluster):
            return cls(None, {})
        await redis.initialize()  # the slot table (a no-op once the client has one)
        masters = _masters(redis)
        # the replicas each master has online now (its own word: the client's slot table can lag
        # behind a replica that attached after it was read)
        counts = await _refreshing(redis, _each([_replicas(node) for node, _ in masters.values()]))
        return cls(redis, {name: (node, count, key)
                           for (name, (node, key)), count in zip(masters.items(), counts, strict=True)})

    @classmethod
    def start_soon(cls, redis: Any) -> asyncio.Future[ReplicaFence]:
        """:meth:`start` under way, to run beside another read: a task on a cluster; on a single
        Redis a future already done (no task for a fence that has nothing to learn)."""
        if isinstance(redis, RedisCluster):
            return asyncio.ensure_future(cls.start(redis))
        return finished(cls(None, {}))

    async def confirm(self) -> None:
        """Every write answered so far by the buckets' masters is on a replica, and no master
        changed since this run began; else :class:`FailoverSeen`."""
        if self.cluster is None:
            return
        if set(_masters(self.cluster)) != set(self.masters):
            raise FailoverSeen("the reader buckets' masters changed during the fan-out")
        fenced = [(name, node, key) for name, (node, replicas, key) in self.masters.items() if replicas]
        acked = await _refreshing(self.cluster, _each([_fence(node, key) for _, node, key in fenced]))
        for (name, _, _), count in zip(fenced, acked, strict=True):
            if count < 1:
                raise FailoverSeen(f"no replica of {name} acknowledged the fan-out's writes within {WAIT_MS} ms")


async def _each(steps: list[Awaitable[T]]) -> list[T]:
    """The steps run together, each to its end; the first failure raised after (none left unseen)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]  # no exception among them


async def _refreshing(cluster: RedisCluster, step: Awaitable[T]) -> T:
    """``step`` (a fence's own round trips, which bypass the client's retries); when a node cannot
    be reached or is no master, the client's slot table is read again before the error goes up —
    the retried run then sees the masters the cluster has (redis-py does the same for its own
    commands)."""
    try:
        return await step
    except (RedisConnectionError, RedisTimeoutError, FailoverSeen) as exc:
        with contextlib.suppress(Exception):  # no node answers either: the retry reads it again
            await cluster.nodes_manager.initialize()
        if isinstance(exc, FailoverSeen):
            raise
        raise FailoverSeen(f"a master of the reader buckets did not answer: {exc}") from exc


def _masters(cluster: RedisCluster) -> dict[str, tuple[Any, str]]:
    """The masters serving the reader buckets as the client sees them now: per name, (the node, the
    fence key of a bucket in its slots)."""
    out: dict[str, tuple[Any, str]] = {}
    for bucket in range(BUCKETS):
        key = fanout_fence(bucket)
        nodes = cluster.nodes_manager.slots_cache.get(cluster.keyslot(key)) or []
        if not nodes:
            raise FailoverSeen(f"no master for {key} in the client's view")
        out.setdefault(nodes[0].name, (nodes[0], key))
    return out


async def _replicas(node: Any) -> int:
    """How many replicas of the master ``node`` are online (``INFO replication``: a replica still
    loading its first copy acknowledges nothing, and waiting for it would hold every fan-out for the
    length of a full resync); :class:`FailoverSeen` when ``node`` is no master any more."""
    (info,) = await _on_one_connection(node, [("INFO", "replication")])
    text = info.decode() if isinstance(info, bytes) else str(info)
    if "role:master" not in text:
        raise FailoverSeen(f"{node.name} is no master any more")
    return sum(1 for line in text.splitlines() if line.startswith("slave") and "state=online" in line)


async def _fence(node: Any, key: str) -> int:
    """``INCR key`` then ``WAIT 1`` on one connection of ``node``; the replicas that acknowledged."""
    _, acked = await _on_one_connection(node, [("INCR", key), ("WAIT", 1, WAIT_MS)])
    return int(acked)


async def _on_one_connection(node: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """The replies to ``commands`` sent together on one connection of ``node`` (a ``WAIT`` counts
    the writes of its own connection only)."""
    connection = node.acquire_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        return [await connection.read_response() for _ in commands]
    except AskError as exc:  # MOVED or ASK: the slot is another master's now
        await connection.disconnect()
        raise FailoverSeen(f"{node.name} no longer serves the fan-out's keys: {exc}") from exc
    except BaseException:
        await connection.disconnect()  # a reply left unread must not reach the next borrower
        raise
    finally:
        node.release(connection)
