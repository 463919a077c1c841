"""How the data Redis connections do their I/O: packed in C, bounded by one watchdog per event loop.

The profile of a home-feed page under load (docs/benchmarks.md, "Where the time went") put a
quarter of the API's CPU in redis-py, most of it around the I/O rather than in it. With a
``socket_timeout`` every send runs in ``asyncio.wait_for`` (a new Task and a timer per send) and
every reply read in ``asyncio.timeout`` (a timer scheduled and cancelled per reply, a pipeline of
five commands five times), and every command is packed by a Python loop. Measured alone (64
tasks, a page's two pipelines against one redis-server): 540-690 µs of CPU a page with the stock
connection, 320 µs with the two changes here.

* :meth:`WatchedConnection.pack_command` packs with ``hiredis.pack_command`` (the same bytes:
  floats by ``repr``, ``str`` as UTF-8, anything else refused with redis-py's ``DataError``), as
  redis-py's synchronous client already does when hiredis is installed.
* The connection gets no ``socket_timeout``; instead each send and each reply read registers
  with the loop's :class:`_Watchdog` (two set operations) and a single timer, scheduled only
  while something is in flight, wakes every :data:`TICK_S` and cancels the reads and sends older
  than :attr:`WatchedConnection.io_timeout_s`. The cancelled operation surfaces as redis-py's
  ``TimeoutError`` and the connection is dropped, as with ``socket_timeout``, so a stalled server
  still fails a request after 10-10.25 s and a cluster client still refreshes its slot table.
  Reads that name their own ``timeout`` (pub/sub, blocking commands) keep redis-py's handling.

* :func:`execute_pipeline` runs a non-transactional pipeline in one pass: the commands packed and
  sent as one write, then every reply taken from the hiredis reader in one loop under one watchdog
  entry, and redis-py's response callbacks applied. redis-py's ``execute`` reads each reply through
  five layers of calls (the pipeline's and the client's ``parse_response``, the connection's
  ``read_response`` with its timeout and health bookkeeping, the parser's): 14 % of the API's
  samples on a home page with photos went to redis-py, most of it there (docs/benchmarks.md).

The bookkeeping is written out in each of the two methods on purpose: folding it into one
``contextlib.contextmanager`` (a generator and its frame kept alive across every await of every
Redis call) was tried and made the soak's API three times slower (p50 ~100 ms against ~30 ms for the
home feed, in runs minutes apart: docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import select
import weakref
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio import RedisCluster
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

DRIVER = DriverInfo(lib_version=redis.__version__)
"""What each connection tells Redis (``CLIENT SETINFO``), made once: pass ``driver_info=DRIVER``
to every client. Left to redis-py, each new connection looked its own version up in the installed
packages' metadata (about a millisecond of file-system reads, on the event loop), and a burst that
grew a pool stalled the API's loop for hundreds of milliseconds (found by sampling the soak's
stalls: docs/benchmarks.md)."""

TICK_S = 0.25
"""How often the watchdog looks at what is in flight (only while something is)."""

IO_TIMEOUT_S = 10.0
"""A send or a reply that takes longer fails with ``TimeoutError`` (was ``socket_timeout=10``)."""


class _Watch:
    __slots__ = ("deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.fired = False


class _Watchdog:
    """The in-flight operations of one event loop and the one timer that expires them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watches: set[_Watch] = set()
        self.timer: asyncio.TimerHandle | None = None

    def start(self, seconds: float) -> _Watch | None:
        task = asyncio.current_task(self.loop)
        if task is None:  # not inside a task (cannot be cancelled): unbounded, as without a timeout
            return None
        watch = _Watch(task, self.loop.time() + seconds)
        self.watches.add(watch)
        if self.timer is None:
            self.timer = self.loop.call_later(TICK_S, self._expire)
        return watch

    def stop(self, watch: _Watch | None) -> None:
        if watch is not None:
            self.watches.discard(watch)

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        for watch in [w for w in self.watches if w.deadline <= now]:
            self.watches.discard(watch)
            watch.fired = True
            watch.task.cancel()
        if self.watches:
            self.timer = self.loop.call_later(TICK_S, self._expire)


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = weakref.WeakKeyDictionary()


def _watchdog() -> _Watchdog:
    loop = asyncio.get_running_loop()
    dog = _WATCHDOGS.get(loop)
    if dog is None:
        dog = _WATCHDOGS[loop] = _Watchdog(loop)
    return dog


def _timed_out(watch: _Watch | None, what: str) -> RedisTimeoutError | None:
    """The error to raise for a cancellation that the watchdog caused (None: a real cancel)."""
    if watch is None or not watch.fired or watch.task.uncancel() > 0:
        return None
    return RedisTimeoutError(f"Timeout {what} Redis after {IO_TIMEOUT_S:g} s")


def _packed(args: Sequence[Any]) -> bytes:
    """One command packed in C: ``hiredis.pack_command`` writes ``str`` as UTF-8, like redis-py's
    encoder; a command name of two words ("CONFIG GET") is split, as redis-py does."""
    name = args[0]
    if (" " in name) if isinstance(name, str) else (b" " in name):
        args = (*name.split(), *args[1:])
    try:
        packed: bytes = hiredis.pack_command(tuple(args))
        return packed
    except TypeError as exc:  # None, bool, a list…: what redis-py's encoder refuses too
        raise DataError(str(exc)) from exc


class WatchedConnection(Connection):
    """A redis-py connection for pools built with ``socket_timeout=None`` (see the module)."""

    io_timeout_s = IO_TIMEOUT_S

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_packed(args)]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        dog = _watchdog()
        watch = dog.start(self.io_timeout_s)
        try:
            await super().send_packed_command(command, check_health)
        except asyncio.CancelledError:
            error = _timed_out(watch, "writing to")
            if error is None:
                raise
            raise error from None
        finally:
            dog.stop(watch)

    async def read_response(self, disable_decoding: bool = False, timeout: float | None = None, *,
                            disconnect_on_error: bool = True, push_request: bool | None = False) -> Any:
        if timeout is not None:  # the caller's own bound: redis-py's handling
            return await super().read_response(disable_decoding, timeout, disconnect_on_error=disconnect_on_error,
                                               push_request=push_request)
        dog = _watchdog()
        watch = dog.start(self.io_timeout_s)
        try:
            # math.inf: "no timeout of redis-py's own" (its documented opt-out); the watchdog bounds it
            return await super().read_response(disable_decoding, float("inf"), disconnect_on_error=disconnect_on_error,
                                               push_request=push_request)
        except asyncio.CancelledError:
            error = _timed_out(watch, "reading from")
            if error is None:
                raise
            raise error from None
        finally:
            dog.stop(watch)

    async def read_replies(self, raw: Sequence[bool]) -> list[Any]:
        """The replies to the commands just sent, in order, one per entry of ``raw`` (True: that
        reply undecoded, redis-py's ``NEVER_DECODE``); an error reply is returned, not raised.

        Any failure part-way drops the connection: the rest of the replies would otherwise reach the
        next borrower of the pooled connection."""
        parser: Any = self._parser  # hiredis is a dependency: its parser is redis-py's choice
        reader: Any = getattr(parser, "_reader", None)  # None once disconnected
        if not isinstance(parser, _AsyncHiredisParser) or reader is None:
            raise RedisConnectionError("the connection has no hiredis reader (closed?)")
        dog = _watchdog()
        watch = dog.start(self.io_timeout_s)
        replies: list[Any] = []
        try:
            for undecoded in raw:
                reply = reader.gets(False) if undecoded else reader.gets()
                while reply is NOT_ENOUGH_DATA:
                    await parser.read_from_socket()
                    reply = reader.gets(False) if undecoded else reader.gets()
                if isinstance(reply, RedisConnectionError):
                    raise reply
                replies.append(reply)
        except asyncio.CancelledError:
            await self.disconnect(nowait=True)
            error = _timed_out(watch, "reading from")
            if error is None:
                raise
            raise error from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while reading from Redis: {exc.args}") from exc
        except BaseException:
            await self.disconnect(nowait=True)
            raise
        finally:
            dog.stop(watch)
        if self.health_check_interval:
            self.next_health_check = asyncio.get_running_loop().time() + self.health_check_interval
        return replies


KEPT_CONNECTIONS = 32
"""Connections :func:`execute_pipeline` keeps out of the pool between batches, per pool: the
auto-pipeline sends a batch a turn, a few at most in flight at once. Borrowing from redis-py 8's
pool and giving back (a condition, a lock, a timeout, observability records, the connection's
``connect`` and ``can_read_destructive`` checks: ~5 % of a home page's samples, docs/benchmarks.md
thirty-second round) costs more than the batch's own packing. A kept connection stays counted in
use by its pool, which still bounds them all (``max_connections``; at most a quarter of them are
kept, so other commands always find one) and still closes them on ``disconnect``; one that failed,
was cancelled or was closed goes back to the pool instead."""

_KEPT: weakref.WeakKeyDictionary[Any, tuple[int, list[WatchedConnection]]] = weakref.WeakKeyDictionary()


def _dirty(conn: WatchedConnection) -> bool:
    """A kept connection the server closed (an idle ``timeout``, a restart, a ``CLIENT KILL``) or
    with bytes nobody asked for: redis-py's pool refuses such a one before lending it
    (``ensure_connection``). The socket is asked directly (``select``, no wait), as the loop may
    not have run since the server closed it."""
    writer, parser = conn._writer, conn._parser
    stream: Any = conn._reader  # its ``_buffer``: what redis-py's own check reads too
    reader: Any = getattr(parser, "_reader", None)
    if writer is None or stream is None or reader is None or writer.transport.is_closing():
        return True
    if stream.at_eof() or stream.exception() is not None or reader.has_data() or stream._buffer:
        return True
    sock = writer.transport.get_extra_info("socket")
    if sock is None:
        return True
    readable = select.poll()  # not select(): a busy API holds descriptors past FD_SETSIZE (sockets)
    readable.register(sock.fileno(), select.POLLIN)
    return bool(readable.poll(0))


def _kept(pool: Any) -> list[WatchedConnection]:
    """This process's kept connections of ``pool``: a child forked from a process that kept some
    (a prefork worker) starts with none, as its sockets are its parent's (redis-py's pool resets
    itself in the child the same way)."""
    kept = _KEPT.get(pool)
    if kept is None or kept[0] != os.getpid():
        kept = _KEPT[pool] = (os.getpid(), [])
    return kept[1]


async def execute_pipeline(pipe: Any) -> list[Any]:
    """``pipe.execute(raise_on_error=False)`` (results in order, an error reply as its exception)
    for a plain non-transactional pipeline of watched connections, in one pass (see the module);
    any other pipeline (a cluster's, a transaction) runs redis-py's own ``execute``.

    Like redis-py's, a connection error or timeout is retried by the connection's ``retry`` policy
    (the whole pipeline again, on a new connection) and the queued commands are cleared either way."""
    pool = getattr(pipe, "connection_pool", None)
    if (type(pipe) is not Pipeline or pipe.is_transaction or pipe.explicit_transaction or pipe.scripts
            or pipe.watching or pool is None or not issubclass(pool.connection_class, WatchedConnection)
            or pool.connection_kwargs.get("protocol") not in (2, "2", None)):
        stock: list[Any] = await pipe.execute(raise_on_error=False)
        return stock
    stack = list(pipe.command_stack)  # reset() below clears the pipeline's
    if not stack:
        return []
    kept = _kept(pool)
    reused = bool(kept)
    conn: WatchedConnection = kept.pop() if reused else await pool.get_connection()
    answered = False
    try:
        if reused and _dirty(conn):  # what the pool checks before it lends one (as it just did, if it did)
            await conn.disconnect()  # the send below connects again
        # one write of every command (redis-py's pack_commands chunks them in a Python loop a command)
        packed = b"".join([_packed(args) for args, _ in stack])
        raw = [NEVER_DECODE in options for _, options in stack]

        async def round_trip() -> list[Any]:
            # the health check's PING only when it is due: redis-py's check runs a coroutine per send
            due = conn.health_check_interval and asyncio.get_running_loop().time() > conn.next_health_check
            await conn.send_packed_command(packed, bool(due))
            return await conn.read_replies(raw)

        async def failed(error: Exception) -> None:
            await conn.disconnect(error=error)

        replies: list[Any] = await conn.retry.call_with_retry(round_trip, failed)
        answered = True
    finally:
        if answered and conn.is_connected and len(kept) < min(KEPT_CONNECTIONS, pool.max_connections // 4):
            kept.append(conn)  # every reply read: the next batch may write on it at once
        else:
            await pool.release(conn)
        await pipe.reset()
    callbacks = pipe.response_callbacks
    # redis-py's mapping upper-cases each name in a Python method (~1 % of a feed page): a name
    # already in capitals (every command method's) is looked up as it is
    plain: dict[Any, Any] | None = callbacks if isinstance(callbacks, dict) else None
    results: list[Any] = []
    for (args, options), reply in zip(stack, replies, strict=True):
        if isinstance(reply, ResponseError):
            results.append(options[EMPTY_RESPONSE] if EMPTY_RESPONSE in options else reply)
            continue
        name = args[0]
        callback = dict.get(plain, name) if plain is not None and name.isupper() else callbacks.get(name)
        if callback is None:  # a reply as read: never awaitable
            results.append(reply)
            continue
        result = callback(reply) if options.keys() <= _NOT_FOR_CALLBACKS else callback(
            reply, **{k: v for k, v in options.items() if k not in _NOT_FOR_CALLBACKS})
        if inspect.isawaitable(result):  # redis-py allows a callback to be a coroutine
            result = await result
        results.append(result)
    return results


_NOT_FOR_CALLBACKS = frozenset((EMPTY_RESPONSE, NEVER_DECODE, "keys"))
"""Options redis-py keeps for itself: the rest go to a command's response callback (``withscores``…)."""


class SlotTrustingCluster(RedisCluster):
    """A ``RedisCluster`` that routes a script by its first key.

    redis-py computes the slot of every key of an ``EVAL`` to check that they share one (a CRC of
    each encoded key, ~0.6 µs a key: 5.7 ms of the fan-out worker's CPU per 10,000 followers, whose
    keys come 160 to a script). Our scripts' keys share a hash tag by construction
    (:func:`solomo.core.keys.by_hash_tag`, ``by_bucket``), and Redis Cluster itself refuses a
    script whose keys span slots (``CROSSSLOT``), so the first key's slot routes it and nothing
    is written to the wrong place either way. ``_determine_slot`` is redis-py's own (8.x): should an
    upgrade rename it, ``tests/test_embedded_cluster.py`` fails (redis-py would refuse the mixed
    script itself, not Redis)."""

    async def _determine_slot(self, command: str, *args: Any) -> int:
        if len(args) > 2 and str(command).upper() in _SCRIPT_COMMANDS and int(args[1]) > 1:
            return self.keyslot(args[2])
        return await super()._determine_slot(command, *args)


_SCRIPT_COMMANDS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})
