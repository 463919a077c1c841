"""The data Redis connections' I/O (solomo.core.redisio) against the real redis-server of the run.

A stalled server is made with ``DEBUG SLEEP`` sent on another connection: Redis answers nobody
while it sleeps, exactly what a hung server looks like to a client.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
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
