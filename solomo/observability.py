"""Metrics, structured logs and request ids.

**Metrics** are Prometheus objects defined once in :mod:`solomo.core.metrics`, so any package can import
and update them::

    from solomo.core.metrics import FANOUT_ENTRIES, FANOUT_LAG
    FANOUT_ENTRIES.labels(target="home").inc(written)
    FANOUT_LAG.observe(seconds_since_post_created)

With ``PROMETHEUS_MULTIPROC_DIR`` set (it must be set before the process imports
``prometheus_client``), every process writes its samples to files in that directory and
``GET /metrics`` of any of them reports the sum over all — several uvicorn workers, or an API and
Celery prefork children sharing a volume. Without it, the process's own registry is served.

The HTTP series (latency, status counts, requests in progress) are counted by the middleware
without locks and added to those values in bulk (:mod:`solomo.core.httpseries`): at each scrape of
``GET /metrics`` for the process that answers it, and every second for the rest — another
process's requests (multiprocess mode) and the internal port's scrapes (a thread) show within a
second.

HTTP latency is labelled by the route *template* (``/v1/posts/{post_id}``, or one ``<unmatched>``),
never the raw path, and by a known method (anything else is ``other``), so the number of series
stays bounded whatever clients send. The Celery queue depth is not kept by anyone: it is read from
the broker (``LLEN`` of each queue) when Prometheus scrapes.

**Who may scrape**: ``GET /metrics`` on the public app answers only with ``Authorization: Bearer
<SOLOMO_METRICS_TOKEN>`` (403 otherwise), and is 404 when no token is set. ``SOLOMO_METRICS_PORT``
serves the same metrics without a token on a second, internal port (a thread of the API process;
compose exposes it to the internal network only).

**Logs** are one JSON object per line (``configure_logging``), with the request id of the
request being served (``current_request_id()``), taken from a sane incoming ``X-Request-ID`` or
generated, and echoed in the response header. ``SOLOMO_LOG_FORMAT=plain`` prints one short line
per record instead (:class:`PlainFormatter`), for a person at a terminal (``solomo dev``).

**Cost**: the access line, the metrics and the request id are on every request, so each is cheap
(measured with ``benchmarks/bench_healthz.py``; docs/benchmarks.md): a record is formatted on the
loop with orjson, but written by a writer thread, many lines per ``write`` (:class:`_JsonHandler`:
no file or pipe write blocks the event loop); when the JSON handler is the only one an access line
would reach (:func:`log_access`), the line is made without a record, by compiled code
(:mod:`solomo.core.logline`); else its record skips the caller lookup; the HTTP series take no lock a request; a
generated request id is a per-process random prefix and a counter, not a fresh ``uuid4``. The event
loop's own health is measured too
(:mod:`solomo.core.looplag`: ``solomo_event_loop_max_stall_seconds``).

The middleware that counts and logs each request is :class:`solomo.middleware.ObservabilityMiddleware`
(a module of its own, compiled with the hot modules): a pure ASGI middleware that never buffers
bodies and passes WebSocket and lifespan traffic straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import os
import re
import secrets
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from contextvars import ContextVar
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from solomo.core import httpseries, looplag
from solomo.core.errors import Forbidden, NotFound
from solomo.core.logline import ACCESS_LOGGER, Stamps, access_line
from solomo.core.redisio import DRIVER
from solomo.core.sidetasks import reap

if TYPE_CHECKING:
    from redis import Redis as SyncRedis
    from redis.asyncio import Redis
    from starlette.applications import Starlette

    from solomo.core.settings import Settings

log = logging.getLogger(ACCESS_LOGGER)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_ID_HEADER = "x-request-id"
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Kombu's Redis transport keeps messages of priority p > 0 in "<queue>\x06\x16<p>".
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)

_request_id: ContextVar[str | None] = ContextVar("solomo_request_id", default=None)


QUEUE_DEPTH_METRIC = "solomo_celery_queue_depth"


# --- request ids and JSON logs -----------------------------------------------------------------


def current_request_id() -> str | None:
    """The id of the request this code is serving, if any (for logs and outgoing calls)."""
    return _request_id.get()


class _Ids:
    """Generated request ids: 32 hex digits, a random per-process prefix then a counter — unique
    without a ``uuid4`` (a system call for randomness) per request. A forked child draws a new
    prefix (``os.register_at_fork``)."""

    prefix = secrets.token_hex(8)
    counter = itertools.count()

    @classmethod
    def reseed(cls) -> None:
        cls.prefix = secrets.token_hex(8)
        cls.counter = itertools.count()


os.register_at_fork(after_in_child=_Ids.reseed)


def new_request_id() -> str:
    return f"{_Ids.prefix}{next(_Ids.counter):016x}"


def request_id_from(header: str | None) -> str:
    """An incoming id when it is short and plain (no spaces, no control characters), else a new one."""
    if header and _SANE_REQUEST_ID.match(header):
        return header
    return new_request_id()


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, any ``extra=`` fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stamps = Stamps()

    def access_line(self, created: float, method: str, path: str, status: int, route: str,
                    duration_ms: float, complete: bool, request_id: str | None) -> str:
        """The line :meth:`format` makes of an access record (``solomo.access``, INFO, the message
        ``"<method> <path> <status>"``, these extras, the request's id), without making the record:
        a ``LogRecord``, its handling and formatting cost ~10 µs a line, as much as a whole
        ``/healthz`` (docs/benchmarks.md, twenty-second round). Made by the compiled
        :func:`solomo.core.logline.access_line`."""
        return access_line(self._stamps, created, method, path, status, route, duration_ms, complete, request_id)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._stamps.stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = current_request_id()
        if rid is not None:
            entry["request_id"] = rid
        fields = record.__dict__
        for key in sorted(fields.keys() - _RECORD_FIELDS):  # the extras (set difference in C), in a stable order
            if not key.startswith("_"):
                entry[key] = fields[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class PlainFormatter(logging.Formatter):
    """One short line per record for a person: ``12:03:04 INFO  solomo.access GET /v1/feed/home 200 3.1ms``
    (local time; an access line ends with its duration; a traceback follows on its own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{clock} {record.levelname:<5} {record.name} {record.getMessage()}"
        duration_ms = getattr(record, "duration_ms", None)
        if isinstance(duration_ms, int | float):
            line += f" {duration_ms:.1f}ms"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _access_text(formatter: JsonFormatter, created: float, method: str, path: str, status: int, route: str,
                 duration_ms: float, complete: bool) -> str:
    """The access line, or, when orjson refuses some text (a lone surrogate a client put in a path),
    the line with it escaped; fields no request makes are said so in a line of their own."""
    fields = (created, method, path, status, route, duration_ms, complete, current_request_id())
    try:
        return formatter.access_line(*fields)
    except Exception:
        pass
    try:
        return formatter.access_line(*map(_printable, fields))
    except Exception:
        pass
    try:
        shown = _printable(repr(fields))
    except Exception:  # a field whose repr raises: nothing from here may reach the request
        shown = "<fields that cannot be shown>"
    return orjson.dumps({"level": "error", "logger": log.name, "msg": "access line not made",
                         "fields": shown}).decode()


def _printable(value: Any) -> Any:
    """Text orjson refuses (a lone surrogate a client put in a path) with the bad characters escaped."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


class _JsonHandler(logging.Handler):
    """The handler this module installs (configuring twice replaces it). Without a fixed stream it
    writes to whatever ``sys.stderr`` is at the time, so redirections (pytest's capture) work.

    A record is formatted where it is logged and queued (an access line too: :func:`log_access`);
    a writer thread writes what is queued, many lines per ``write``, so a slow disk or a full pipe
    never blocks the event loop, and a busy process makes one system call per batch instead of one
    per line. The writer does nothing else: what it does, it does at the event loop's expense (it
    takes the interpreter lock from it): an access line it made cost the process ~6 µs of CPU, one
    made on the loop costs ~2, and most of what writing still costs comes per batch, not per line
    (:attr:`BATCH_WAIT_S`; docs/benchmarks.md, thirty-third round). An ERROR (or worse) is
    written at once, by the thread that logged it, with everything queued before it; ``flush()``
    (and so ``logging.shutdown()`` at exit) writes everything queued. At most
    :attr:`MAX_PENDING` lines wait: beyond, lines are dropped and the next write says how many."""

    MAX_PENDING = 100_000
    BATCH_WAIT_S = 0.2
    """How long a line waits at most for the writer. Each batch costs the writer a wake-up and turns
    at the interpreter lock: under ``/healthz`` its CPU a line was 2.7–3.9 µs with batches every
    20 ms, 0.7–1.1 every 200 ms, 0.5–0.9 every second (docs/benchmarks.md, thirty-third round)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self._fixed = stream
        self._pending: deque[tuple[Any, str]] = deque()  # (the stream when logged, the line)
        self._dropped = 0
        self._wake = threading.Event()
        self._writing = threading.Lock()  # one writer at a time: lines keep their order
        self._thread: threading.Thread | None = None
        self._closed = False
        _HANDLERS.add(self)

    @property
    def stream(self) -> Any:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        self._fixed = value

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.enqueue(line, urgent=record.levelno >= logging.ERROR)

    def enqueue(self, line: str, urgent: bool = False) -> None:
        """Queues a formatted line for the writer (``urgent``: write it, and what is queued, now)."""
        if len(self._pending) >= self.MAX_PENDING:
            self._dropped += 1
            return
        # the stream as it is now (pytest swaps sys.stderr per test), before the check below: the
        # writer drains after clearing
        self._pending.append((self.stream, line))
        if urgent or self._closed:
            self.flush()
            return
        if self._thread is None:
            self._start_writer()
        if not self._wake.is_set():
            self._wake.set()

    def _start_writer(self) -> None:
        with self.lock or contextlib.nullcontext():
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="solomo-log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            # let a batch gather: while the event stays set, emit() does not signal (a notify per
            # line cost 3 % of a busy /healthz); a line waits BATCH_WAIT_S at most
            time.sleep(self.BATCH_WAIT_S)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Writes every queued line now (in the calling thread)."""
        with self._writing:
            # taken in C (a Python loop a line was 0.7 µs of a 3.5 µs access line); popleft only, as
            # other threads may append meanwhile
            queued = list(islice(iter(self._pending.popleft, None), len(self._pending)))
            streams = set(map(itemgetter(0), queued))
            batches: list[tuple[Any, list[str]]] = []
            if len(streams) == 1:
                batches.append((streams.pop(), list(map(itemgetter(1), queued))))
            else:
                for stream, line in queued:  # the stream changed meanwhile (a test's capture)
                    if not batches or batches[-1][0] is not stream:
                        batches.append((stream, []))
                    batches[-1][1].append(line)
            if self._dropped:
                batches.append((self.stream, [f"{self._dropped} log lines dropped: the log writer could not keep up"]))
                self._dropped = 0
            for stream, lines in batches:
                try:
                    stream.write("\n".join(lines) + "\n")
                    stream.flush()
                except Exception:  # a closed or broken stream: nothing better to do with these lines
                    pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        super().close()

    def after_fork(self) -> None:
        """In a forked child: the parent's queue is the parent's to write; no writer runs here yet."""
        self._pending.clear()
        self._thread = None
        self._writing = threading.Lock()
        self._wake = threading.Event()


_HANDLERS: weakref.WeakSet[_JsonHandler] = weakref.WeakSet()


def _after_fork() -> None:
    for handler in list(_HANDLERS):
        handler.after_fork()


os.register_at_fork(after_in_child=_after_fork)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Root logger → one handler on stderr (JSON or plain text); uvicorn's loggers join it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _JsonHandler):
            root.removeHandler(handler)
            handler.close()  # writes what it had queued; its writer thread ends
    handler = _JsonHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    # Neither formatter prints a record's thread, process or process name: do not look them up
    # for every record (the logging HOWTO's "Optimization"; os.getpid() is a system call).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # One access line per request, ours (``solomo.access``, with the request id and the route
    # template). uvicorn logs its own whenever its access logger has a handler anywhere up the
    # tree — ``--no-access-log`` notwithstanding — so that logger is cut off from the root.
    uv_access = logging.getLogger("uvicorn.access")
    uv_access.handlers.clear()
    uv_access.propagate = False


# --- the access line (made for solomo.middleware) -----------------------------------------------


_ACCESS_MESSAGE = "%s %s %s"


def _sole_json_handler() -> _JsonHandler | None:
    """The JSON handler an access record would reach, when it would reach nothing else and no
    filter stands on the way (the configured process: :func:`configure_logging`). Anything more —
    a test's handler, a filter, the plain format — and the record goes the logging module's way."""
    if log.filters:
        return None
    found: _JsonHandler | None = None
    logger: logging.Logger | None = log
    while logger is not None:
        for handler in logger.handlers:
            if (found is not None or not isinstance(handler, _JsonHandler) or handler.filters
                    or handler.level > logging.INFO or type(handler.formatter) is not JsonFormatter):
                return None
            found = handler
        logger = logger.parent if logger.propagate else None
    return found


def log_access(method: str, path: str, status: int, route: str, duration_ms: float, complete: bool) -> None:
    """One request's access line (``solomo.access``, INFO: the caller checks the level)."""
    handler = _sole_json_handler()
    if handler is not None:  # the line its record would make, made without the record
        formatter = cast(JsonFormatter, handler.formatter)
        handler.enqueue(_access_text(formatter, time.time(), method, path, status, route, duration_ms, complete))
        return
    # makeRecord + handle: the access line needs no caller lookup (Logger.info's findCaller)
    log.handle(log.makeRecord(
        log.name, logging.INFO, __file__, 0, _ACCESS_MESSAGE, (method, path, status), None,
        extra={"method": method, "path": path, "route": route, "status": status, "duration_ms": duration_ms,
               "complete": complete},
    ))


# --- exposition --------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def base_registry() -> CollectorRegistry:
    """All processes' samples (multiprocess mode) or this process's registry."""
    if multiprocess_dir() is None:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _queue_lists(name: str) -> list[str]:
    """The broker lists of one Celery queue: the queue itself and one per priority level."""
    return [name, *(f"{name}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS)]


def _sum_depths(names: list[str], counts: list[Any]) -> dict[str, int]:
    per = 1 + len(_PRIORITY_STEPS)
    return {name: int(sum(counts[i * per:(i + 1) * per])) for i, name in enumerate(names)}


async def queue_depths(broker: Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each Celery queue (all priority levels) on a Redis broker."""
    names = list(queues)
    pipe = broker.pipeline(transaction=False)
    for name in names:
        for key in _queue_lists(name):
            pipe.llen(key)
    return _sum_depths(names, await pipe.execute())


def queue_depths_sync(broker: SyncRedis, names: list[str]) -> dict[str, int]:
    """:func:`queue_depths` for the internal port's serving thread (a blocking client)."""
    pipe = broker.pipeline(transaction=False)
    for name in names:
        for key in _queue_lists(name):
            pipe.llen(key)
    return _sum_depths(names, pipe.execute())


class _QueueDepthCollector(Collector):
    def __init__(self, depths: dict[str, int] | None) -> None:
        self.depths = depths

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(QUEUE_DEPTH_METRIC, "Messages waiting in a Celery queue (read at scrape)",
                                   labels=["queue"])
        for name, depth in sorted((self.depths or {}).items()):
            family.add_metric([name], depth)
        yield family
        up = GaugeMetricFamily("solomo_broker_up", "1 when the broker answered this scrape")
        up.add_metric([], 1 if self.depths is not None else 0)
        yield up


class _LiveQueueDepthCollector(Collector):
    """The queue depths read at each scrape of the internal port (its server is a thread)."""

    def __init__(self, broker: SyncRedis, names: list[str]) -> None:
        self.broker, self.names = broker, names

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depths: dict[str, int] | None
        try:
            depths = queue_depths_sync(self.broker, self.names)
        except Exception:  # the scrape goes on; solomo_broker_up says the broker did not answer
            logging.getLogger("solomo.observability").warning("queue depth unavailable", exc_info=True)
            depths = None
        yield from _QueueDepthCollector(depths).collect()


def _queue_names(app: Starlette) -> list[str]:
    services = app.state.services
    return [q.name for q in services.tasks.celery.conf.task_queues or []]


def _authorized(request: Request) -> None:
    """404 when the public port serves no metrics (no token set), 403 without the right token."""
    token: str | None = request.app.state.settings.metrics_token
    if not token:
        raise NotFound("not found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Forbidden("metrics need the metrics token", code="forbidden")


async def metrics(request: Request) -> Response:
    """Prometheus text exposition: process (or all processes') metrics plus the queue depths."""
    _authorized(request)
    httpseries.publish()  # this process's requests up to this one
    depths: dict[str, int] | None
    broker: Redis | None = request.app.state.services.extras.get("broker_redis")
    try:
        depths = await queue_depths(broker, _queue_names(request.app)) if broker is not None else None
    except Exception:  # a scrape must not fail because the broker is down; solomo_broker_up says so
        logging.getLogger("solomo.observability").warning("queue depth unavailable", exc_info=True)
        depths = None
    scrape = CollectorRegistry()
    scrape.register(_QueueDepthCollector(depths))
    body = generate_latest(base_registry()) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# --- wiring ------------------------------------------------------------------------------------


def install(app: Starlette, settings: Settings) -> None:
    """Adds ``GET /metrics`` and sets up logging; called by the app factory (which adds
    :class:`solomo.middleware.ObservabilityMiddleware`)."""
    configure_logging(settings.log_level, settings.log_format)
    app.router.routes.append(Route("/metrics", metrics, methods=["GET"], include_in_schema=False))


async def start(app: Starlette) -> None:
    """Lifecycle hook: a client for the broker's database, for the queue-depth gauge, and the
    internal metrics port when ``SOLOMO_METRICS_PORT`` is set."""
    from redis.asyncio import Redis

    settings = app.state.settings
    app.state.services.extras["broker_redis"] = Redis.from_url(
        settings.effective_broker_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2,
        driver_info=DRIVER,
    )
    app.state.services.extras["looplag"] = looplag.start(settings.stall_trace_ms)
    app.state.services.extras["http_series"] = asyncio.create_task(httpseries.publish_every(),
                                                                     name="solomo-http-series")
    if settings.metrics_port:
        start_internal_metrics(app, settings.metrics_port)


def start_internal_metrics(app: Starlette, port: int) -> None:
    """Serves this process's (or, in multiprocess mode, all processes') metrics with the queue
    depths on ``port`` without a token. With several processes per host only the first binds the
    port — in multiprocess mode it reports them all."""
    from prometheus_client import start_http_server
    from redis import Redis as SyncRedis

    settings = app.state.settings
    broker = SyncRedis.from_url(settings.effective_broker_url, decode_responses=True,
                                socket_connect_timeout=2, socket_timeout=2)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(base_registry())
    registry.register(_LiveQueueDepthCollector(broker, _queue_names(app)))
    try:
        server, _ = start_http_server(port, addr="0.0.0.0", registry=registry)  # as the worker's
    except OSError as exc:
        broker.close()
        logging.getLogger("solomo.observability").warning("metrics port %s not served here: %s", port, exc)
        return
    app.state.services.extras["metrics_server"] = (server, broker)


async def stop(app: Starlette) -> None:
    publisher = app.state.services.extras.pop("http_series", None)
    if publisher is not None:
        await reap(publisher, cancel=True)
    httpseries.publish()  # the last requests' counts, before multiprocess mode marks this process dead
    watcher = app.state.services.extras.pop("looplag", None)
    if watcher is not None:
        await looplag.stop(watcher)
    internal = app.state.services.extras.pop("metrics_server", None)
    if internal is not None:
        server, sync_broker = internal
        server.shutdown()
        server.server_close()
        sync_broker.close()
    broker = app.state.services.extras.pop("broker_redis", None)
    if broker is not None:
        await broker.aclose()
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(os.getpid(), directory)


# --- the Celery worker -------------------------------------------------------------------------


def start_worker_metrics(port: int, addr: str = "0.0.0.0") -> None:
    """Serve this worker's metrics (fan-out lag and entries are updated in worker processes).

    Prefork children write to ``PROMETHEUS_MULTIPROC_DIR`` and the parent, which serves, sums
    them; without that directory only the serving process's own samples would be visible.
    """
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=base_registry())


def instrument_celery(settings: Settings) -> None:
    """Connects Celery's signals: JSON logs in worker and beat, and the worker's metrics endpoint
    when ``SOLOMO_WORKER_METRICS_PORT`` is set. Signals fire only in ``celery worker|beat``."""
    from celery import signals

    @signals.setup_logging.connect(weak=False)
    def _logging(**_: Any) -> None:
        # the level is SOLOMO_LOG_LEVEL, as in the API (celery's --loglevel is not used): the test
        # suite's in-process worker must not change the level of the process it runs in
        configure_logging(settings.log_level, settings.log_format)

    @signals.worker_init.connect(weak=False)
    def _metrics(**_: Any) -> None:
        if settings.worker_metrics_port:
            start_worker_metrics(settings.worker_metrics_port)
