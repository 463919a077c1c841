"""The data Redis connections' I/O (solomo.core.redisio) against the real redis-server of the run.

A stalled server is made with ``DEBUG SLEEP`` sent on another connection: Redis answers nobody
while it sleeps, exactly what a hung server looks like to a client.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from solomo.core import redisio
from solomo.core.redisio import WatchedConnection


class QuickTimeout(WatchedConnection):
    io_timeout_s = 0.5


def _client(settings, connection_class: type[Connection]) -> Redis:
    # one node of a cluster answers PING / DEBUG like any server: no keys are used here
    pool = ConnectionPool.from_url(settings.effective_redis_url.split(",")[0], decode_responses=True,
                                   connection_class=connection_class, socket_timeout=None)
    return Redis.from_pool(pool)


@pytest.mark.parametrize("args", [
    ("SET", "k", "v"),
    ("ZADD", "z", 1.5, "m", float("inf"), "n", 0.1 + 0.2, "o", 1e20, "p", -3),
    ("SET", "话题", "中文 with spaces", "EX", 10),
    ("SET", b"raw\x00bytes", memoryview(b"mv")),
    ("CONFIG GET", "maxmemory"),
    (b"CONFIG GET", "maxmemory"),
])
def test_packs_the_same_bytes_as_redis_py(args):
    stock = b"".join(bytes(p) for p in Connection().pack_command(*args))
    ours = b"".join(WatchedConnection().pack_command(*(bytes(a) if isinstance(a, memoryview) else a for a in args)))
    assert ours == stock


@pytest.mark.parametrize("bad", [None, True, [1], {"a": 1}])
def test_refuses_what_redis_py_refuses(bad):
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        WatchedConnection().pack_command("SET", "k", bad)


async def test_a_stalled_server_fails_the_read_then_the_client_recovers(settings):
    watched, other = _client(settings, QuickTimeout), _client(settings, Connection)
    try:
        assert await watched.ping()
        sleeping = asyncio.create_task(other.execute_command("DEBUG", "SLEEP", "2"))
        await asyncio.sleep(0.1)  # the sleep has reached the server
        with pytest.raises(RedisTimeoutError):
            await watched.ping()
        assert not sleeping.done()  # failed by the watchdog, not answered once the server woke
        assert await sleeping
        assert await watched.ping()  # a fresh connection: the timed-out one was dropped
        assert asyncio.current_task().cancelling() == 0  # the watchdog's cancel was taken back
    finally:
        await watched.aclose()
        await other.aclose()


async def test_a_real_cancellation_stays_a_cancellation(settings):
    watched, other = _client(settings, WatchedConnection), _client(settings, Connection)
    try:
        sleeping = asyncio.create_task(other.execute_command("DEBUG", "SLEEP", "0.6"))
        await asyncio.sleep(0.1)
        reading = asyncio.create_task(watched.ping())
        await asyncio.sleep(0.1)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await sleeping
        assert await watched.ping()
        assert not redisio._watchdog().watches  # nothing left in flight
    finally:
        await watched.aclose()
        await other.aclose()


async def test_the_services_use_watched_connections(services):
    redis = services.redis
    if services.settings.redis_cluster:
        await redis.ping()
        classes = {node.connection_class for node in redis.get_nodes()}
    else:
        classes = {redis.connection_pool.connection_class}
    assert classes == {WatchedConnection}


async def test_a_new_connection_does_not_read_package_metadata(services, monkeypatch):
    """Left to itself, redis-py looks its own version up in the installed packages' metadata for
    every new connection (file-system reads on the event loop: a burst that grew the pool stalled
    the soak's API for hundreds of milliseconds). Our clients hand it the version once."""
    import redis.utils

    from solomo.services import redis_client

    looked_up: list[int] = []
    monkeypatch.setattr(redis.utils, "get_lib_version", lambda: looked_up.append(1) or "0.0.0")
    client = redis_client(services.settings)
    try:
        assert await client.ping()  # a new client: a new connection (or, on a cluster, a new node set)
    finally:
        await client.aclose()
    assert looked_up == []


async def _plain_client(settings, **kwargs) -> Redis:
    """A plain client of watched connections to the server that holds the ``{redisio}`` keys: the
    run's Redis, or on a cluster the master serving that hash tag (a plain pipeline is what the
    one-pass path runs; every key below carries the tag)."""
    url = settings.effective_redis_url
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(url, decode_responses=True)
        try:
            await cluster.initialize()
            node = cluster.get_node_from_key("{redisio}")
            url = f"redis://{node.host}:{node.port}/0"
        finally:
            await cluster.aclose()
    pool = ConnectionPool.from_url(url, decode_responses=True, connection_class=WatchedConnection,
                                   socket_timeout=None, **kwargs)
    return Redis.from_pool(pool)


def _queue_everything(pipe, key: str, *, multi_key: bool = True) -> None:
    """Commands whose replies redis-py shapes in different ways: plain, callbacks with options
    (``WITHSCORES``), an error reply amid others, a raw (``NEVER_DECODE``) reply, a missing key, a
    value larger than one socket read, and a script's nested reply."""
    pipe.set(f"{key}:s", "值 value")
    pipe.get(f"{key}:s")
    pipe.incr(f"{key}:s")  # an error reply: not an integer
    pipe.set(f"{key}:s", "x", nx=True)  # None: exists already
    pipe.zadd(f"{key}:z", {"a": 1.5, "b": 2, "c": -3})
    pipe.zrange(f"{key}:z", 0, -1, withscores=True)
    pipe.zrevrangebyscore(f"{key}:z", "+inf", "-inf", start=0, num=2, withscores=True)
    pipe.hset(f"{key}:h", mapping={"f": "1", "g": "二"})
    pipe.hgetall(f"{key}:h")
    pipe.sadd(f"{key}:set", "p", "q")
    pipe.smismember(f"{key}:set", ["p", "r", "q"])
    pipe.exists(f"{key}:s", f"{key}:missing")
    pipe.expire(f"{key}:s", 60)
    if multi_key:
        pipe.mget([f"{key}:s", f"{key}:missing"])
    else:  # a cluster pipeline refuses MGET
        pipe.get(f"{key}:missing")
    pipe.set(f"{key}:big", "大" * 200_000)  # 600 kB: the reply spans many reads
    pipe.get(f"{key}:big")
    pipe.dump(f"{key}:s")  # NEVER_DECODE: bytes
    pipe.eval("return {1, 'two', {3}, redis.status_reply('OK')}", 0)
    pipe.zscore(f"{key}:z", "missing")
    # a name not in capitals: its callback still applies (pairs with float scores)
    pipe.execute_command("zrange", f"{key}:z", 0, -1, "WITHSCORES", withscores=True)


async def test_one_pass_pipeline_answers_exactly_as_redis_py(settings):
    client = await _plain_client(settings)
    try:
        ours_pipe, stock_pipe = client.pipeline(transaction=False), client.pipeline(transaction=False)
        _queue_everything(ours_pipe, "{redisio}:ours")
        _queue_everything(stock_pipe, "{redisio}:stock")
        ours = await redisio.execute_pipeline(ours_pipe)
        stock = await stock_pipe.execute(raise_on_error=False)
        assert len(ours) == len(stock) == 20
        for mine, theirs in zip(ours, stock, strict=True):
            if isinstance(theirs, Exception):
                assert type(mine) is type(theirs) and str(mine) == str(theirs)
            else:
                assert mine == theirs
        assert isinstance(ours[2], ResponseError) and ours[1] == "值 value" and ours[3] is None
        assert ours[5] == [("c", -3.0), ("a", 1.5), ("b", 2.0)] and isinstance(ours[16], bytes)
        assert ours[19] == ours[5]
        assert ours_pipe.command_stack == []  # cleared, as execute() leaves a pipeline
        assert await client.get("{redisio}:ours:s") == "值 value"  # the connection is in step
    finally:
        await client.aclose()


async def test_a_cluster_pipeline_keeps_redis_pys_execute(settings):
    """The one-pass path is for a plain client's pipeline; a cluster's (grouped by node) is
    redis-py's own, and answers the same."""
    if settings.redis_cluster:
        client: Redis | RedisCluster = RedisCluster.from_url(settings.effective_redis_url, decode_responses=True)
    else:
        client = _client(settings, WatchedConnection)
    try:
        pipe = client.pipeline(transaction=False)
        _queue_everything(pipe, "{redisio}:other", multi_key=not settings.redis_cluster)
        is_plain = type(pipe) is Pipeline
        stock_send = type(pipe).execute
        calls: list[int] = []

        async def counted(self, *args, **kwargs):
            calls.append(1)
            return await stock_send(self, *args, **kwargs)

        type(pipe).execute = counted
        try:
            results = await redisio.execute_pipeline(pipe)
        finally:
            type(pipe).execute = stock_send
        assert len(results) == 20 and results[1] == "值 value" and isinstance(results[2], ResponseError)
        assert calls == ([] if is_plain else [1])
    finally:
        await client.aclose()


async def test_one_pass_pipeline_retries_on_a_connection_the_server_closed(settings, monkeypatch):
    client = await _plain_client(settings, retry=Retry(NoBackoff(), retries=1))
    # the check before a write would find the closed socket and connect again: the retry is what
    # this test is about, so the check is told the connection is fine
    monkeypatch.setattr(redisio, "_dirty", lambda conn: False)
    try:
        await client.client_setname("redisio-retry")
        pipe = client.pipeline(transaction=False)
        pipe.set("{redisio}:retry", "1")
        pipe.get("{redisio}:retry")
        # Killed by a blocking client, with no turn of the loop between the kill and the send: the
        # pooled connection cannot have seen its end, so only the retry saves the pipeline. Only
        # this client's connection: the session's own clients share the server.
        where = client.connection_pool.connection_kwargs
        with SyncRedis(host=where["host"], port=where["port"], decode_responses=True) as killer:
            named = [entry["id"] for entry in killer.client_list() if entry.get("name") == "redisio-retry"]
            assert named and all([killer.client_kill_filter(_id=i) for i in named])
        assert await redisio.execute_pipeline(pipe) == [True, "1"]  # on a new connection
    finally:
        await client.aclose()


async def test_one_pass_pipeline_cancelled_mid_read_leaves_no_reply_behind(settings):
    client, other = await _plain_client(settings), await _plain_client(settings)
    try:
        await client.ping()  # one pooled connection, reused below
        sleeping = asyncio.create_task(other.execute_command("DEBUG", "SLEEP", "0.5"))
        await asyncio.sleep(0.1)
        pipe = client.pipeline(transaction=False)
        pipe.set("{redisio}:late", "late")
        pipe.get("{redisio}:late")
        reading = asyncio.create_task(redisio.execute_pipeline(pipe))
        await asyncio.sleep(0.1)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await sleeping
        # the replies the server sends after waking must not answer this pipeline's commands
        pipe = client.pipeline(transaction=False)
        pipe.set("{redisio}:next", "next")
        pipe.get("{redisio}:next")
        assert await redisio.execute_pipeline(pipe) == [True, "next"]
        assert not redisio._watchdog().watches
    finally:
        await client.aclose()
        await other.aclose()


async def test_one_pass_pipelines_keep_their_connection_and_drop_one_left_with_unread_bytes(settings):
    """A batch writes on the connection the last one read all its replies from, without borrowing
    from the pool again; a kept connection that holds bytes nobody asked for is not written on
    (the pool's own check before it lends one): its stale reply must not answer the next batch."""
    client = await _plain_client(settings)
    pool = client.connection_pool
    borrowed = 0
    lend = pool.get_connection

    async def counted(*args, **kwargs):
        nonlocal borrowed
        borrowed += 1
        return await lend(*args, **kwargs)

    pool.get_connection = counted
    try:
        for n in range(3):
            pipe = client.pipeline(transaction=False)
            pipe.set("{redisio}:kept", str(n))
            pipe.get("{redisio}:kept")
            assert await redisio.execute_pipeline(pipe) == [True, str(n)]
        assert borrowed == 1
        (kept,) = redisio._kept(pool)
        writer = kept._writer
        pipe = client.pipeline(transaction=False)
        pipe.get("{redisio}:kept")
        assert await redisio.execute_pipeline(pipe) == ["2"]
        assert redisio._kept(pool) == [kept] and kept._writer is writer  # the same socket, not a new one
        # a process forked from this one (a prefork worker) does not write on its parent's sockets
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(redisio.os, "getpid", lambda: -1)
            assert redisio._kept(pool) == []
        assert redisio._kept(pool) == []  # and the parent, back under its own pid, starts afresh too
        redisio._kept(pool).append(kept)
        await kept.send_command("ECHO", "stale")  # a reply nobody will read
        # the reply waits in the socket (the loop does not run to read it): the check asks the socket
        for _ in range(500):
            if redisio._dirty(kept):
                break
            time.sleep(0.01)
        assert redisio._dirty(kept)
        pipe = client.pipeline(transaction=False)
        pipe.get("{redisio}:kept")
        assert await redisio.execute_pipeline(pipe) == ["2"]
    finally:
        await client.aclose()
