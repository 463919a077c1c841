"""The benchmark harness: real servers on loopback, a keep-alive load generator, results.

* :class:`BenchEnv` starts embedded MongoDB + Redis (temporary, non-persistent, free ports) and, on
  demand, uvicorn processes (the API ``solomo.asgi:app`` or any other ASGI app) and a Celery worker
  process; everything it started is stopped, in reverse order, when the ``async with`` ends.
* :func:`drive` (a time-based load of repeatable requests) and :func:`send_once` (each request
  exactly once) use wrk when it is available, else :func:`run_load`: a fixed number of concurrent
  keep-alive HTTP/1.1 connections on raw asyncio streams. Either measures throughput, latency
  percentiles and the CPU time each process spent (process trees, via psutil) — from which
  :attr:`LoadStats.client_bound` tells whether the client itself was the limit (≥ 80 % of a core).
* Every row's notes carry the generator, CPU per process, whether the client was the limit and
  the 1-minute load average; a row that failed its own checks lists them in ``Result.failures``.
* :class:`Result`, :func:`print_table` and :func:`write_json` (``benchmarks/results.json``,
  git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solomo.core import compiled, tasknames
from solomo.core.serving import UVICORN_FLAGS
from solomo.embedded import EmbeddedServers, _die_with_parent, free_port

if TYPE_CHECKING:
    from solomo.core.services import Services
    from solomo.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = ROOT / "benchmarks" / "results.json"


# --------------------------------------------------------------------------------------------
# results


@dataclass
class Result:
    """One measured figure beside its baseline; ``ratio`` = ours / baseline.

    ``p50_ms`` / ``p99_ms`` are latencies of ours and ``baseline_p50_ms`` / ``baseline_p99_ms`` of the
    baseline, where the benchmark has them.
    """

    name: str
    ours: float
    baseline: float | None
    unit: str
    ratio: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    """Why the row failed its own checks (e.g. a socket missed an offer); ``python -m benchmarks``
    then exits with status 1."""

    @classmethod
    def compare(cls, name: str, ours: float, baseline: float | None, unit: str, *,
                latency: tuple[float | None, float | None] = (None, None),
                baseline_latency: tuple[float | None, float | None] = (None, None),
                failures: Sequence[str] = (), **extra: Any) -> Result:
        ratio = ours / baseline if baseline else None
        extra.setdefault("loadavg_1m", round(os.getloadavg()[0], 2))
        extra.setdefault("host_probe_ms", host_probe_ms())
        return cls(name, ours, baseline, unit, ratio, latency[0], latency[1], baseline_latency[0],
                   baseline_latency[1], extra, list(failures))

    @classmethod
    def from_loads(cls, name: str, ours: LoadStats, baseline: LoadStats | None, *,
                   ok: tuple[int, ...] = (200, 201), **extra: Any) -> Result:
        """A throughput row (req/s) with both sides' p50/p99 and how each load was generated;
        ``ok``: the statuses ours should answer (the baseline answers 200/201)."""
        for prefix, stats, expected in (("", ours, ok), ("baseline_", baseline, (200, 201))):
            if stats is not None:
                extra.update(stats.summary(prefix, expected))
        return cls.compare(name, ours.rate, baseline.rate if baseline else None, "req/s",
                           latency=(ours.percentile(50), ours.percentile(99)),
                           baseline_latency=(baseline.percentile(50), baseline.percentile(99)) if baseline
                           else (None, None), **extra)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _pair(ours: float | None, base: float | None) -> str:
    if ours is None:
        return "-"
    return _fmt(ours) if base is None else f"{_fmt(ours)} / {_fmt(base)}"


def table_rows(results: Sequence[Result]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("benchmark", "ours", "baseline", "unit", "ratio", "p50 ms (ours / base)", "p99 ms (ours / base)")
    rows = [(r.name + (" — FAILED" if r.failures else ""), _fmt(r.ours),
              _fmt(r.baseline), r.unit, _fmt(r.ratio), _pair(r.p50_ms, r.baseline_p50_ms),
             _pair(r.p99_ms, r.baseline_p99_ms)) for r in results]
    return header, rows


def print_table(results: Sequence[Result], out: Any = None, *, notes: bool = True) -> None:
    out = out or sys.stdout
    header, rows = table_rows(results)
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(("{:<" if i == 0 else "{:>") + f"{w}}}" for i, w in enumerate(widths))
    print(line.format(*header), file=out)
    print(line.format(*("-" * w for w in widths)), file=out)
    for result, row in zip(results, rows, strict=True):
        print(line.format(*row), file=out)
        if notes and result.extra:
            text = ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in result.extra.items())
            print(f"    {text}", file=out)
        for failure in result.failures:
            print(f"    FAILED: {failure}", file=out)


_BASELINE_PREFIXES = ("baseline_", "in_redis_", "bare_")


def short_notes(result: Result) -> str:
    """The notes a reader needs beside the figures: generator, CPU per process (% of a core) on
    each side, whether a client was the limit, the load average, any failure."""
    extra = result.extra
    parts = []
    if "generator" in extra:
        parts.append(str(extra["generator"]))
    ours = {k.removeprefix("cpu%_"): v for k, v in extra.items() if k.startswith("cpu%_")}
    base = {k.split("cpu%_", 1)[1]: v for k, v in extra.items()
            if k.startswith(_BASELINE_PREFIXES) and "cpu%_" in k}
    for label, cpu in (("CPU %", ours), ("baseline CPU %", base)):
        if cpu:
            parts.append(f"{label}: " + ", ".join(f"{name} {_fmt(float(v))}" for name, v in cpu.items()))
    if "cpu_us_a_delivery_serving" in extra:  # the push rows' CPU budget (benchmarks.bench_push)
        bare = [extra.get(f"bare_{k}", "-") for k in ("cpu_us_a_delivery_serving", "cpu_us_a_delivery_clients",
                                                        "cores_busy")]
        parts.append(f"CPU µs a delivery, serving + clients: ours {extra['cpu_us_a_delivery_serving']} + "
                     f"{extra['cpu_us_a_delivery_clients']}, bare {bare[0]} + {bare[1]}")
        parts.append(f"cores busy: ours {extra['cores_busy']}, bare {bare[2]}")
    if "cpu_us_a_checkin_api" in extra:  # the check-in row's CPU per check-in (benchmarks.bench_checkins)
        parts.append(f"CPU µs a check-in: api {extra['cpu_us_a_checkin_api']:,}, "
                     f"mongod {extra.get('cpu_us_a_checkin_mongod', '-'):,}")
    limits = [str(v) for k, v in extra.items() if k.endswith("client_limit") and str(v).startswith("YES")]
    parts.append("client-bound: " + "; ".join(limits) if limits else "client not the limit")
    for key, turn in (("slice_ratios", "slice"), ("repeat_ratios", "repeat")):  # how far the ratio moved
        if len(extra.get(key) or ()) > 1:
            parts.append(f"ratio by {turn} {min(extra[key])}–{max(extra[key])}")
    if "redis_commands_a_batch" in extra:
        parts.append(f"Redis commands a request {extra['redis_commands_a_request']}, "
                     f"a batch {extra['redis_commands_a_batch']}")
    if "floor_ratio" in extra:  # benchmarks.floor_app: the least a page reading Redis costs here
        parts.append(f"floor (one Lua round trip, bodies joined): {extra['floor_rate']:,} req/s, "
                     f"{extra['floor_ratio']} of bare, ours {extra['ratio_to_floor']} of the floor; floor CPU %: "
                     + ", ".join(f"{k.split('cpu%_', 1)[1]} {_fmt(float(v))}" for k, v in extra.items()
                                 if k.startswith("floor_cpu%_")))
    if "steal%" in extra:
        parts.append(f"host steal % (ours / base): {extra['steal%']} / {extra.get('baseline_steal%', '-')}")
    if "loadavg_1m" in extra:
        parts.append(f"load {extra['loadavg_1m']}")
    if "host_probe_ms" in extra:
        parts.append(f"probe {extra['host_probe_ms']} ms")
    if "module_major_faults" in extra:
        parts.append(f"major page faults in the module {extra['module_major_faults']:,}")
    parts += [f"FAILED: {f}" for f in result.failures]
    return "; ".join(parts)


def markdown_table(results: Sequence[Result], *, notes: bool = True) -> str:
    header, rows = table_rows(results)
    if notes:
        header = (*header, "notes")
        rows = [(*row, short_notes(r)) for row, r in zip(rows, results, strict=True)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu_model = ln.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "memory_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            # whether the servers ran the mypyc-compiled modules (docs/benchmarks.md, twenty-seventh round)
            "compiled_modules": compiled.state()}


def write_json(results: Sequence[Result], path: Path = RESULTS_PATH) -> Path:
    doc = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": [asdict(r) for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# processes


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process and its live descendants (a Celery worker's pool
    processes do its work), or None."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def thread_cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User + system CPU time of a live process's main thread (an API's event loop) and of all its
    other threads together (the log writer, the metrics port, the drivers' monitors, the thread
    pools), read at one instant, or None (on Linux a main thread's id is the process's)."""
    import psutil

    try:
        threads = psutil.Process(pid).threads()
    except psutil.Error:
        return None
    main = [t.user_time + t.system_time for t in threads if t.id == pid]
    if not main:
        return None
    return float(main[0]), float(sum(t.user_time + t.system_time for t in threads if t.id != pid))


@dataclass
class Child:
    """A child process started by the harness (dies with it, see ``solomo.embedded``)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


MONGO_CACHE_GB = 2.0
"""The benchmarks' mongod cache. A full run leaves ~700 MB in it (twelve modules' seeds: stores with
their search keys, posts, check-ins, photos); with the embedded default of 0.5 GB the later rows
were read through evictions (the store search after the nearby and local modules: 0.122 against
0.139 with 2 GB, ``docs/benchmarks.md``). A production mongod takes half the host's memory."""


class BenchEnv:
    """Servers for one benchmark run; use ``async with BenchEnv() as env``."""

    def __init__(self, *, scale: float = 1.0, min_seconds: float = 2.0, keep_dir: bool = False) -> None:
        self.scale = scale
        """Multiplies every benchmark's sizes and durations (``--scale``; the tests use ~0.01)."""
        self.min_seconds = min_seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="solomo-bench-"))
        self.keep_dir = keep_dir
        self.servers: EmbeddedServers | None = None
        self.children: list[Child] = []
        self.environ: dict[str, str] = {}
        self._api: Child | None = None
        self._baseline: Child | None = None
        self._worker: Child | None = None
        self._services: Services | None = None

    # --- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> BenchEnv:
        try:
            await asyncio.to_thread(self._start_servers)
        except BaseException:
            await asyncio.to_thread(self._stop_processes)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._services is not None:
                await self._services.close()
        finally:
            await asyncio.to_thread(self._stop_processes)

    def _start_servers(self) -> None:
        self.servers = EmbeddedServers(self.tmp, free_port(), free_port(), free_port(), persistent=False,
                                       mongo_cache_gb=MONGO_CACHE_GB).start()
        assert self.servers.mongo and self.servers.redis and self.servers.broker
        self.environ = {
            **os.environ,
            "SOLOMO_MONGO_URL": self.servers.mongo.url,
            "SOLOMO_REDIS_URL": self.servers.redis.url,
            "SOLOMO_BROKER_URL": self.servers.broker.url,
            "SOLOMO_MONGO_DB": "solomo_bench",
            "SOLOMO_DATA_DIR": str(self.tmp),
            "SOLOMO_SECRET_KEY": "bench-secret",
            "SOLOMO_PASSWORD_TIME_COST": "1",
            "SOLOMO_PASSWORD_MEMORY_KIB": "1024",
            "SOLOMO_LOG_LEVEL": "WARNING",
        }

    def _stop_processes(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.servers is not None:
            self.servers.stop()
        if not self.keep_dir:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- what benchmarks ask for ------------------------------------------------------------
    def size(self, n: int, minimum: int = 1) -> int:
        """``n`` scaled by :attr:`scale`, at least ``minimum``."""
        return max(minimum, round(n * self.scale))

    def seconds(self, s: float) -> float:
        """A load duration ``s`` scaled, at least :attr:`min_seconds`."""
        return max(self.min_seconds, s * self.scale)

    def settings(self) -> Settings:
        """Settings of the API processes, for opening :class:`Services` in the harness."""
        from solomo.core.settings import load_settings

        assert self.servers and self.servers.mongo and self.servers.redis and self.servers.broker
        return load_settings(
            mongo_url=self.servers.mongo.url, redis_url=self.servers.redis.url,
            broker_url=self.servers.broker.url, mongo_db="solomo_bench",
            secret_key="bench-secret", password_time_cost=1, password_memory_kib=1024,
        )

    async def services(self) -> Services:
        """Direct connections (same database as the API) for seeding and checking; opened once."""
        if self._services is None:
            from solomo.services import open_services

            self._services = await open_services(self.settings())
        return self._services

    @property
    def mongod_pid(self) -> int | None:
        return self.servers.mongo.proc.process.pid if self.servers and self.servers.mongo else None

    @property
    def redis_pid(self) -> int | None:
        return self.servers.redis.proc.process.pid if self.servers and self.servers.redis else None

    async def api(self) -> Child:
        """The real API (``uvicorn solomo.asgi:app``), started on first use."""
        if self._api is None:
            self._api = await self.uvicorn("solomo.asgi:app", "api")
        return self._api

    async def baseline(self) -> Child:
        """The yardstick (:mod:`benchmarks.baseline_app`) served the same way as the API, started on first use."""
        if self._baseline is None:
            self._baseline = await self.uvicorn("benchmarks.baseline_app:app", "baseline")
        return self._baseline

    async def uvicorn(self, app: str, name: str, ready_path: str = "/readyz",
                      environ: dict[str, str] | None = None) -> Child:
        """Any ASGI app in its own uvicorn process with the API's flags (one process, no uvicorn
        access log); ``environ``: variables set on top of the harness's (e.g. the log level)."""
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                *UVICORN_FLAGS, "--log-level", "warning"]
        child = self._spawn(name, args, port, environ)
        await asyncio.to_thread(_wait_http, child, ready_path, 60.0)
        return child

    async def worker(self) -> Child:
        """One Celery worker process on both queues, started on first use and proven to consume."""
        if self._worker is None:
            args = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "fanout,maintenance",
                    "--concurrency", "1", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
            self._worker = self._spawn("celery", args)
            await self._wait_worker(self._worker)
        return self._worker

    async def drain_queues(self, timeout: float = 300.0) -> float:
        """Waits until the broker's queues are empty (tasks an earlier benchmark left, e.g. the
        check-ins' fan-outs), so they do not sit in front of what is measured next; returns seconds."""
        from redis.asyncio import Redis

        broker = Redis.from_url(self.settings().effective_broker_url)
        t0 = time.perf_counter()
        try:
            while time.perf_counter() - t0 < timeout:
                if not sum([await broker.llen(q) for q in ("fanout", "maintenance")]):
                    break
                await asyncio.sleep(0.2)
        finally:
            await broker.aclose()
        await asyncio.sleep(0.5)  # the task in hand
        return time.perf_counter() - t0

    def _spawn(self, name: str, args: list[str], port: int | None = None,
               environ: dict[str, str] | None = None) -> Child:
        log = self.tmp / f"{name}.log"
        with open(log, "ab") as fh:
            process = subprocess.Popen(args, cwd=ROOT, env={**self.environ, **(environ or {})}, stdout=fh,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       preexec_fn=_die_with_parent)
        child = Child(name, process, log, port)
        self.children.append(child)
        return child

    async def _wait_worker(self, child: Child, timeout: float = 60.0) -> None:
        services = await self.services()
        key = f"bench:ping:{os.getpid()}:{time.monotonic_ns()}"
        await services.tasks.send(tasknames.PING, key)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"celery exited: {child.log.read_text()[-2000:]}")
            if await services.redis.get(key) == "pong":
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the Celery worker did not answer a ping")


def _wait_http(child: Child, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited: {child.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(child.base_url + path, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not become ready")


# --------------------------------------------------------------------------------------------
# load generation


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(self.body)}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def json_request(method: str, path: str, body: Any, token: str | None = None) -> HttpRequest:
    headers = [("Content-Type", "application/json")]
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    return HttpRequest(method, path, json.dumps(body).encode(), tuple(headers))


@dataclass
class LoadStats:
    requests: int
    seconds: float
    concurrency: int
    statuses: Counter[int]
    latencies_ms: list[float]
    cpu_seconds: dict[str, float]
    percentiles: dict[float, float] = field(default_factory=dict)
    """Precomputed latency percentiles (wrk's); else they come from ``latencies_ms``."""
    generator: str = "asyncio"
    socket_errors: dict[str, int] = field(default_factory=dict)
    answers: list[tuple[int, float]] = field(default_factory=list)
    """(status, latency ms) per request, when the generator matched answers to requests."""
    error_codes: Counter[str] = field(default_factory=Counter)
    """``error.code`` of the 4xx/5xx answers' bodies, counted."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if q in self.percentiles:
            return self.percentiles[q]
        return percentile(self.latencies_ms, q)

    def cpu_percent(self) -> dict[str, float]:
        """CPU time per process as a percentage of one core over the measured wall time."""
        return {name: round(100 * s / self.seconds, 1) for name, s in self.cpu_seconds.items()}

    @property
    def client_bound(self) -> bool:
        """The client used ≥ 80 % of a core: it, not the server, may have been the limit."""
        return is_client_bound(self.cpu_percent().get("client", 0.0))

    def by_status(self, *codes: int) -> LoadStats:
        """Only the answers with these statuses, over the same run (its rate = their count / the
        whole run's time); needs per-request :attr:`answers`."""
        mine = [(s, ms) for s, ms in self.answers if s in codes]
        return LoadStats(len(mine), self.seconds, self.concurrency, Counter(s for s, _ in mine),
                         [ms for _, ms in mine], self.cpu_seconds, generator=self.generator,
                         socket_errors=self.socket_errors, answers=mine, error_codes=self.error_codes)

    def count(self, *codes: int) -> int:
        return sum(self.statuses.get(c, 0) for c in codes)

    def summary(self, prefix: str = "", ok: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
        """Notes for the table: requests, time, generator, CPU per process, anything not ``ok``."""
        out: dict[str, Any] = {f"{prefix}requests": self.requests, f"{prefix}seconds": round(self.seconds, 2),
                               f"{prefix}generator": f"{self.generator} c={self.concurrency}"}
        out.update({f"{prefix}cpu%_{k}": v for k, v in self.cpu_percent().items()})
        out[f"{prefix}client_limit"] = client_limit_note(self.cpu_percent().get("client", 0.0))
        bad = {code: n for code, n in self.statuses.items() if code not in ok}
        if bad:
            out[f"{prefix}other_statuses"] = dict(sorted(bad.items()))
        if self.socket_errors:
            out[f"{prefix}socket_errors"] = self.socket_errors
        return out


CLIENT_BOUND_PERCENT = 80.0


def is_client_bound(cpu_percent: float) -> bool:
    """A load generator at ≥ 80 % of a core may itself have been the limit."""
    return cpu_percent >= CLIENT_BOUND_PERCENT


def client_limit_note(cpu_percent: float) -> str:
    if is_client_bound(cpu_percent):
        return f"YES: the client used {cpu_percent:.0f}% of a core, it may have been the limit"
    return f"no ({cpu_percent:.0f}% of a core)"


PROBE_LOOPS = 200_000


def host_probe_ms(repeat: int = 3) -> float:
    """How fast this machine runs Python now: the best of ``repeat`` runs of a fixed pure-Python
    loop, in ms (~15 ms on the 2-core machines of docs/benchmarks.md when they are quick). The
    same code on the same machine type ran 25 % more CPU per unit of work in some soaks than in
    others, every process alike (docs/benchmarks.md), with no steal reported: this figure beside
    a row or a soak says which kind of minute it was measured in. Higher is slower."""
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for i in range(PROBE_LOOPS):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def cpu_stat() -> list[int]:
    """The machine's CPU time counters (user, nice, system, idle, iowait, irq, softirq, steal …)."""
    try:
        with open("/proc/stat") as fh:
            return [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def major_faults() -> int:
    """The machine's major page faults so far (``pgmajfault`` of ``/proc/vmstat``; 0 where there is
    none): pages read back from disk. This machine's host pages out memory it finds cold (a DAMON
    ``pageout`` scheme, ~52 GB since boot), file-backed pages included — the servers' binaries,
    libraries and data files — so a module that faults them back in runs slower than its code."""
    try:
        with open("/proc/vmstat") as fh:
            for line in fh:
                if line.startswith("pgmajfault "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def steal_percent(before: list[int], after: list[int]) -> float:
    """The share of the machine's CPU time between two :func:`cpu_stat` readings that its host
    took (``steal``: a virtual machine's CPUs ready to run while the host ran something else).
    Runs of the same code differ by as much as it does, so every comparison notes it."""
    spent = [b - a for a, b in zip(before, after, strict=False)]
    total = math.fsum(spent)
    return round(100 * spent[7] / total, 1) if len(spent) > 7 and total else 0.0


def slice_ratios(ours: Sequence[LoadStats], bare: Sequence[LoadStats]) -> list[float]:
    """Ours ÷ bare for each pair of slices driven one after the other: how far the row's ratio
    (over all slices) moved while it was measured, so a reader can tell a row within the noise of
    its goal from one far off it."""
    return [round(o.rate / b.rate, 3) if b.rate else 0.0 for o, b in zip(ours, bare, strict=True)]


def merge_loads(slices: Sequence[LoadStats]) -> LoadStats:
    """One load made of several slices of the same generator: requests, time, statuses, errors and
    CPU summed; latency percentiles from the slices' latencies, or (wrk: percentiles only) from
    each slice's percentile grid weighted by its requests — each grid point stands for the
    requests between it and the next, so the merged p50 and p99 are close, not exact."""
    if len(slices) == 1:
        return slices[0]
    first = slices[0]
    cpu: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for part in slices:
        cpu.update(part.cpu_seconds)
        errors.update(part.socket_errors)
        statuses.update(part.statuses)
    merged = LoadStats(sum(p.requests for p in slices), sum(p.seconds for p in slices), first.concurrency,
                       statuses, [ms for p in slices for ms in p.latencies_ms], dict(cpu),
                       generator=first.generator, socket_errors=dict(errors),
                       answers=[a for p in slices for a in p.answers],
                       error_codes=sum((p.error_codes for p in slices), Counter()))
    if all(p.percentiles for p in slices):
        # the requests up to each grid point (and above the last one) stand at that point's latency:
        # a slice's own grid comes back exactly, several slices' by their weights
        points: list[tuple[float, float]] = []  # (latency ms, requests)
        for part in slices:
            below = 0.0
            grid = sorted(part.percentiles.items())
            for q, ms in grid:
                points.append((ms, part.requests * (q - below) / 100))
                below = q
            points.append((grid[-1][1], part.requests * (100 - below) / 100))
        points.sort()
        total = sum(w for _, w in points)
        for q in sorted(first.percentiles):
            seen = 0.0
            for ms, w in points:
                seen += w
                if seen >= total * q / 100 * (1 - 1e-12):
                    merged.percentiles[q] = ms
                    break
    return merged


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no data)."""
    data = sorted(values)
    if not data:
        return 0.0
    return data[min(len(data) - 1, max(0, math.ceil(q / 100 * len(data)) - 1))]


class _ResponseError(RuntimeError):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def run_load(port: int, requests: Iterable[HttpRequest], *, concurrency: int,
                   pids: dict[str, int | None] | None = None, host: str = "127.0.0.1",
                   bodies: list[tuple[int, bytes]] | None = None, seconds: float | None = None) -> LoadStats:
    """Send the requests over ``concurrency`` keep-alive connections; measure latency and CPU.

    Without ``seconds`` every request is sent once; with it the (non-empty) list is cycled until
    that much time has passed. ``pids`` names server processes whose CPU time is reported next to
    the client's (this process). If ``bodies`` is a list, (status, body) of every answer is
    appended to it (for checking).
    """
    hostport = f"{host}:{port}"
    if seconds is None:
        todo: Iterator[bytes] = (r.encode(hostport) for r in requests)
        deadline = math.inf
    else:
        todo = itertools.cycle([r.encode(hostport) for r in requests])
        deadline = time.perf_counter() + seconds
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    answers: list[tuple[int, float]] = []
    error_codes: Counter[str] = Counter()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for raw in todo:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    break
                writer.write(raw)
                status, body, close = await _read_response(reader)
                latencies.append((time.perf_counter() - t0) * 1000)
                answers.append((status, latencies[-1]))
                statuses[status] += 1
                if status >= 400:
                    error_codes[_error_code(body)] += 1
                if bodies is not None:
                    bodies.append((status, body))
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    pids = {k: v for k, v in (pids or {}).items() if v}
    before = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = {"client": time.process_time() - cpu0}
    for name, pid in pids.items():
        after = cpu_seconds(pid)
        if after is not None:
            cpu[name] = after - before[name]
    return LoadStats(sum(statuses.values()), elapsed, concurrency, statuses, latencies, cpu, answers=answers,
                     error_codes=error_codes)


def _error_code(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


async def send_once(port: int, requests: Sequence[HttpRequest], *, concurrency: int,
                    pids: dict[str, int | None] | None = None) -> LoadStats:
    """Every request exactly once (check-ins, claims — a repeat would be refused), with wrk when it
    is available, else with the asyncio client. Both sides of a row go through this, so they
    share the generator; the answers are matched to their requests (per-status latencies)."""
    from benchmarks.wrk import ensure_wrk, run_wrk_once

    if await asyncio.to_thread(ensure_wrk) is not None:
        return await asyncio.to_thread(run_wrk_once, port, requests, concurrency=concurrency, pids=pids)
    return await run_load(port, requests, concurrency=concurrency, pids=pids)


async def drive(port: int, requests: Sequence[HttpRequest], *, concurrency: int, seconds: float,
                pids: dict[str, int | None] | None = None) -> LoadStats:
    """Cycle ``requests`` for ``seconds`` with wrk when it is available, else with the asyncio client.

    Only for requests that may be repeated (reads): a request that must be sent once (a check-in,
    a claim) goes through :func:`send_once`, and so does its baseline.
    """
    from benchmarks.wrk import ensure_wrk, run_wrk

    if await asyncio.to_thread(ensure_wrk) is not None:
        return await asyncio.to_thread(run_wrk, port, requests, concurrency=concurrency, seconds=seconds, pids=pids)
    return await run_load(port, requests, concurrency=concurrency, pids=pids, seconds=seconds)


@contextlib.contextmanager
def profiled(name: str, pid: int | None) -> Iterator[None]:
    """With ``SOLOMO_BENCH_PROFILE=<dir>``, sample the API process with py-spy while our side is
    driven and leave ``<dir>/<row>.txt`` (collapsed stacks: ``py-spy``'s raw format); with
    ``SOLOMO_BENCH_PROFILE_NATIVE=1`` too, with native frames. Off by default: the sampler costs the
    profiled process a little, so figures come from runs without it."""
    out_dir = os.environ.get("SOLOMO_BENCH_PROFILE")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not out_dir or pid is None or not Path(spy).exists():
        yield
        return
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    out = Path(out_dir) / (re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:80] + ".txt")
    # native frames show what runs inside the compiled modules (solomo.core.compiled), which a Python
    # stack does not; py-spy then stops the process for each sample, so only its shares mean much
    how = ["--native"] if os.environ.get("SOLOMO_BENCH_PROFILE_NATIVE") else ["--nonblocking"]
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
                             "--output", str(out), *how],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _redis_batching(redis: Any) -> tuple[int, int]:
    """Redis's commands and read events so far (``INFO stats``): commands ÷ reads while only the API
    talks to it is how many commands a batch of the auto-pipeline carried."""
    stats = await redis.info("stats")
    return int(stats["total_commands_processed"]), int(stats["total_reads_processed"])


SLICES = 4
"""Turns per side in :func:`compare_reads` (8 s a side: four of 2 s)."""
SLICE_MIN_S = 2.0
"""No slice shorter (wrk's duration is whole seconds, and each slice opens its connections anew)."""


async def compare_reads(env: BenchEnv, name: str, ours: Sequence[HttpRequest], baseline: Sequence[HttpRequest], *,
                        concurrency: int, seconds: float, warmup: int = 200,
                        check: Any = None, api: Child | None = None,
                        floor: tuple[Child, Sequence[HttpRequest]] | None = None, **extra: Any) -> Result:
    """A repeatable read against the API beside the bare endpoint: same server flags, same generator.

    ``warmup`` requests go first through the asyncio client (their answers are passed to
    ``check(bodies) -> dict`` for notes such as "full pages"), to each side; then the two sides are
    driven in turns with :func:`drive`, ``seconds`` each in all, in up to :data:`SLICES` slices of
    at least :data:`SLICE_MIN_S` (ours, bare, ours, bare…): a machine whose speed drifts over the
    minute slows both sides alike, where one block each put the drift into the ratio.
    ``api``: another API process than :meth:`BenchEnv.api`'s. ``floor``: a third side driven in the
    same turns (ours, bare, floor…) — :mod:`benchmarks.floor_app` and its requests —, reported in
    the notes as ``floor_*`` with ``floor_ratio`` (floor ÷ bare: the most any page reading Redis
    could read on this server) and ``ratio_to_floor`` (ours ÷ floor).
    """
    api, base = api or await env.api(), await env.baseline()
    warmup = env.size(warmup, 10)
    bodies: list[tuple[int, bytes]] = []
    await run_load(api.port, list(itertools.islice(itertools.cycle(ours), warmup)), concurrency=concurrency,
                   bodies=bodies)
    if check is not None:
        extra.update(check(bodies))
    await run_load(base.port, list(itertools.islice(itertools.cycle(baseline), warmup)), concurrency=concurrency)
    slices = max(1, min(SLICES, int(seconds // SLICE_MIN_S)))
    mine: list[LoadStats] = []
    bare: list[LoadStats] = []
    lowest: list[LoadStats] = []
    sides: list[tuple[str, list[LoadStats], int, Sequence[HttpRequest], dict[str, int | None]]] = [
        ("ours", mine, api.port, ours, {"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid}),
        ("base", bare, base.port, baseline, {"baseline": base.pid})]
    if floor is not None:
        await run_load(floor[0].port, list(itertools.islice(itertools.cycle(floor[1]), warmup)),
                       concurrency=concurrency)
        sides.append(("floor", lowest, floor[0].port, floor[1], {"floor": floor[0].pid, "redis": env.redis_pid}))
    stolen = {"ours": [0] * 10, "base": [0] * 10, "floor": [0] * 10}  # /proc/stat counters spent by each side
    redis = (await env.services()).redis
    batching = [0, 0]  # Redis's commands and reads (its read events) while our side ran
    with profiled(name, api.pid):  # the API is idle while the bare side runs: py-spy skips idle threads
        for _ in range(slices):
            for side, out, port, reqs, pids in sides:
                before = cpu_stat()
                counted = await _redis_batching(redis) if side == "ours" else None
                out.append(await drive(port, reqs, concurrency=concurrency, seconds=seconds / slices, pids=pids))
                stolen[side] = [s + b - a for s, a, b in zip(stolen[side], before, cpu_stat(), strict=False)]
                if counted is not None:
                    batching = [t + b - a for t, a, b in zip(batching, counted, await _redis_batching(redis),
                                                             strict=True)]
    extra["slices"] = slices
    extra["warmup_requests"] = warmup  # through the asyncio client, before the slices, to each side
    extra["slice_ratios"] = slice_ratios(mine, bare)
    served = sum(load.requests for load in mine)
    if served and batching[1]:
        # how many commands the API's Redis round trips carried: the auto-pipeline's batches
        extra["redis_commands_a_request"] = round(batching[0] / served, 1)
        extra["redis_commands_a_batch"] = round(batching[0] / batching[1], 1)
    extra["steal%"] = steal_percent([0] * 10, stolen["ours"])
    extra["baseline_steal%"] = steal_percent([0] * 10, stolen["base"])
    if lowest:
        least = merge_loads(lowest)
        extra.update(least.summary("floor_", (200,)))
        extra["floor_rate"] = round(least.rate)
        extra["floor_p50_p99_ms"] = (round(least.percentile(50), 2), round(least.percentile(99), 2))
        extra["floor_ratio"] = round(least.rate / merge_loads(bare).rate, 3)
        extra["ratio_to_floor"] = round(merge_loads(mine).rate / least.rate, 3)
        extra["floor_slice_ratios"] = slice_ratios(lowest, bare)
    return Result.from_loads(name, merge_loads(mine), merge_loads(bare), concurrency=concurrency, **extra)
