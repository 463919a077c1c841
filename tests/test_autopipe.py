"""Auto-pipelining (solomo.core.autopipe) against the run's real Redis (one server or the cluster)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from solomo.core import autopipe
from solomo.core.autopipe import AutoPipeline
from solomo.core.redisio import WatchedConnection


class CountingConnection(WatchedConnection):
    sends = 0

    async def send_packed_command(self, command, check_health=True):
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)


def _client(settings) -> Redis | RedisCluster:
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(settings.effective_redis_url, decode_responses=True)
        cluster.connection_kwargs["connection_class"] = CountingConnection
        for node in cluster.startup_nodes:
            node.connection_class = CountingConnection
        return cluster
    pool = ConnectionPool.from_url(settings.effective_redis_url, decode_responses=True,
                                   connection_class=CountingConnection)
    return Redis.from_pool(pool)


def _key(name: str) -> str:
    return f"{{autopipe}}:{name}:{uuid.uuid4().hex}"  # one slot: one node on a cluster


async def test_callers_of_one_turn_share_one_round_trip_and_get_their_own_results(settings):
    redis = _client(settings)
    batch = AutoPipeline(redis)
    keys = [_key(f"k{i}") for i in range(20)]
    try:
        await batch.run(lambda pipe: pipe.set(keys[0], "warm"))  # connections made, cluster slots known
        before = CountingConnection.sends

        async def caller(i: int) -> list:
            def queue(pipe) -> None:
                pipe.set(keys[i], f"v{i}")
                pipe.get(keys[i])
                pipe.incr(keys[i] + "n")

            return await batch.run(queue)

        results = await asyncio.gather(*(caller(i) for i in range(20)))
        assert CountingConnection.sends - before == 1  # twenty callers, sixty commands, one send
        assert results == [[True, f"v{i}", 1] for i in range(20)]
        # a caller alone goes out at the end of its turn: nothing waits for company
        before = CountingConnection.sends
        assert await batch.run(lambda pipe: pipe.get(keys[3])) == ["v3"]
        assert CountingConnection.sends - before == 1
    finally:
        await redis.delete(*keys, *(k + "n" for k in keys))
        await redis.aclose()


async def test_an_error_reaches_only_the_caller_whose_command_failed(settings):
    redis = _client(settings)
    batch = AutoPipeline(redis)
    text, counter = _key("text"), _key("counter")
    try:
        await redis.set(text, "not a number")
        bad = batch.run(lambda pipe: (pipe.get(text), pipe.incr(text)))
        good = batch.run(lambda pipe: (pipe.incr(counter), pipe.get(text)))
        outcomes = await asyncio.gather(bad, good, return_exceptions=True)
        assert isinstance(outcomes[0], ResponseError)
        assert outcomes[1] == [1, "not a number"]
    finally:
        await redis.delete(text, counter)
        await redis.aclose()


async def test_a_cancelled_caller_leaves_the_others_answered(settings):
    redis = _client(settings)
    batch = AutoPipeline(redis)
    key = _key("cancel")
    try:
        leaving = asyncio.create_task(batch.run(lambda pipe: pipe.incr(key)))
        staying = asyncio.create_task(batch.run(lambda pipe: pipe.incr(key)))
        await asyncio.sleep(0)  # both queued in this turn
        leaving.cancel()
        assert (await staying)[0] in (1, 2)
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert int(await redis.get(key)) == 2  # its command was sent with the batch all the same
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_a_full_batch_goes_out_at_once(settings, monkeypatch):
    monkeypatch.setattr(autopipe, "MAX_COMMANDS", 5)
    redis = _client(settings)
    batch = AutoPipeline(redis)
    key = _key("full")
    try:
        # the same round once first: its three batches open the pooled connections they need (a new
        # connection's handshake is sends of its own), so only the batches are counted below
        await asyncio.gather(*(batch.run(lambda pipe: pipe.incr(key)) for _ in range(12)))
        before = CountingConnection.sends
        answers = await asyncio.gather(*(batch.run(lambda pipe: pipe.incr(key)) for _ in range(12)))
        assert sorted(a[0] for a in answers) == list(range(13, 25))
        assert CountingConnection.sends - before == 3  # 5 + 5 + 2
    finally:
        await redis.delete(key)
        await redis.aclose()


def _named_client(settings, name: str) -> Redis | RedisCluster:
    """A client whose every connection carries ``name`` (``CLIENT SETNAME`` on connect)."""
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.effective_redis_url, decode_responses=True, client_name=name)
    return Redis.from_pool(ConnectionPool.from_url(settings.effective_redis_url, decode_responses=True,
                                                   connection_class=WatchedConnection, client_name=name))


def _kill_named(settings, redis: Redis | RedisCluster, name: str) -> int:
    """Closes every connection called ``name`` on every server the client talks to, from a blocking
    client: no turn of the loop runs between the kill and the next send, so the client cannot have
    seen its connections end."""
    if isinstance(redis, RedisCluster):
        servers = [(node.host, node.port) for node in redis.get_primaries()]
    else:
        kwargs = redis.connection_pool.connection_kwargs
        servers = [(kwargs["host"], kwargs["port"])]
    killed = 0
    for host, port in servers:
        with SyncRedis(host=host, port=port) as killer:
            for entry in killer.client_list():
                if entry.get("name") == name:
                    killed += bool(killer.client_kill_filter(_id=entry["id"]))
    return killed


async def test_callers_whose_connections_the_server_closed_are_sent_again(settings):
    """After a restart, an idle ``timeout`` or a ``CLIENT KILL``, the pooled connections are dead.
    One server's batch is sent again by ``execute_pipeline``; a cluster's pipeline answers a dead
    node's commands with the error instead, and those callers are sent again by the batch. Nothing
    reached Redis the first time here, so each increment lands once."""
    name = f"autopipe-dead-{uuid.uuid4().hex[:8]}"
    redis = _named_client(settings, name)
    batch = AutoPipeline(redis)
    keys = [f"autopipe:dead:{uuid.uuid4().hex}:{i}" for i in range(60)]  # spread over every node
    try:
        await asyncio.gather(*(batch.run(lambda pipe, k=k: pipe.get(k)) for k in keys))  # connections open
        assert _kill_named(settings, redis, name) >= 1
        outcomes = await asyncio.gather(*(batch.run(lambda pipe, k=k: pipe.incr(k)) for k in keys),
                                        return_exceptions=True)
        assert outcomes == [[1]] * len(keys)
        assert [await redis.get(k) for k in keys] == ["1"] * len(keys)
    finally:
        for k in keys:
            await redis.delete(k)
        await redis.aclose()


async def test_a_connection_failure_reaches_every_caller_of_the_batch():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redis = Redis.from_pool(ConnectionPool.from_url(f"redis://127.0.0.1:{port}", connection_class=WatchedConnection,
                                                    socket_connect_timeout=1))
    batch = AutoPipeline(redis)
    try:
        outcomes = await asyncio.gather(*(batch.run(lambda pipe: pipe.get("k")) for _ in range(3)),
                                        return_exceptions=True)
        assert all(isinstance(o, RedisConnectionError) for o in outcomes)
    finally:
        await redis.aclose()


async def test_the_services_share_one_batch(services):
    assert services.batch is services.batch
    assert autopipe.shared(services.redis) is services.batch
