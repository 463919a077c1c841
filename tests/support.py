"""Helpers shared by the tests: accounts, places, waiting, server processes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pymongo import monitoring

ROOT = Path(__file__).resolve().parent.parent
METRICS_TOKEN = "test-metrics-token"
"""The session's ``SOLOMO_METRICS_TOKEN`` (tests/conftest.py): ``/metrics`` on the app needs it."""
METRICS_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@dataclass
class Account:
    id: str
    username: str
    token: str
    role: str
    user: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def register(client: Any, role: str = "user", username: str | None = None,
                   password: str = "password123") -> Account:
    name = username or unique_name(role[:1])
    resp = await client.post("/v1/auth/register", json={"username": name, "password": password, "role": role})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return Account(body["user"]["id"], name, body["token"], role, body["user"])


async def make_account(services: Any, role: str) -> Account:
    """Any role, moderators included, the way the CLI makes them."""
    from solomo.accounts import user_public

    name = unique_name(role[:1])
    doc = await services.accounts.create_user(name, "password123", role)
    token = await services.accounts.issue_token(doc["_id"])
    return Account(str(doc["_id"]), name, token, role, user_public(doc))


def random_point() -> tuple[float, float]:
    """A random spot, so tests that read 'what is near here' do not see each other's data."""
    return random.uniform(-60, 60), random.uniform(-170, 170)


def offset(lat: float, lng: float, north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    """The point ``north_m`` north and ``east_m`` east of (lat, lng) (small distances)."""
    dlat = north_m / 111_320.0
    dlng = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lng + dlng


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class LiveServer:
    """uvicorn in a child process with this session's environment (same MongoDB/Redis)."""

    def __init__(self, port: int, extra_env: dict[str, str] | None = None, log_level: str = "warning") -> None:
        self.port = port
        self.log_level = log_level
        self.base_url = f"http://127.0.0.1:{port}"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("SOLOMO_DATA_DIR", "/tmp")) / f"uvicorn-{port}.log"

    def start(self, timeout: float = 30.0) -> None:
        from solomo.core.serving import UVICORN_FLAGS
        from solomo.embedded import _die_with_parent

        env = {**os.environ, **self.extra_env}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "solomo.asgi:app", "--host", "127.0.0.1",
                 "--port", str(self.port), *UVICORN_FLAGS, "--log-level", self.log_level],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("uvicorn did not become ready")

    def diagnostics(self, wait_s: float = 2.0) -> str:
        """What the API is waiting on (``solomo.diagnostics``: its tasks' await chains and MongoDB
        pools, written to its log on SIGUSR2) and whether ``/healthz`` answers: for a drill's
        failure message when the API stops answering."""
        if self.process is None or self.process.poll() is not None:
            return "the API process is not running"
        start = self.log.stat().st_size if self.log.exists() else 0
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=5) as resp:
                healthz = str(resp.status)
        except OSError as exc:
            healthz = repr(exc)
        self.process.send_signal(signal.SIGUSR2)
        time.sleep(wait_s)
        with open(self.log, "rb") as log:
            log.seek(start)
            written = log.read().decode(errors="replace")
        return f"/healthz: {healthz}\n{written[-12000:]}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class WorkerProcess:
    """``celery worker`` (solo pool), with beat (``-B``) unless ``beat=False``, in a child process
    with the given environment.

    The child leads its own process group (``_die_with_parent``), so :meth:`kill` takes the
    worker and its forked beat process down together, as a machine crash would."""

    def __init__(self, env: dict[str, str], workdir: Path, log_name: str = "celery-worker.log", *,
                 beat: bool = True) -> None:
        self.env = env
        self.workdir = workdir
        self.log = workdir / log_name
        self.beat = beat
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        from solomo.embedded import _die_with_parent

        beat = ["-B", "-s", str(self.workdir / f"{self.log.stem}.beat-schedule")] if self.beat else []
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool", "solo",
                 "--loglevel", "WARNING", *beat, "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


async def seconds_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> float | None:
    """How long until ``predicate()`` held (polled every ``interval``), or None after ``timeout``:
    the fault drills' "did the service recover by itself, and how fast"."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        await asyncio.sleep(interval)
        if predicate():
            return time.monotonic() - start
    return None


async def mark_online(services: Any, *user_ids: str) -> None:
    """As if each user had a socket open in some API process (their bucket's online set)."""
    from solomo.core.keys import online_key_of

    for uid in user_ids:
        await services.redis.sadd(online_key_of(uid), uid)


async def mark_offline(services: Any, *user_ids: str) -> None:
    from solomo.core.keys import online_key_of

    for uid in user_ids:
        await services.redis.srem(online_key_of(uid), uid)


async def online(services: Any, *user_ids: str) -> list[bool]:
    """Whether each user is in the online sets (what the fan-out and targeting read)."""
    from solomo.core.presence import is_online

    return await is_online(services.redis, list(user_ids))


async def delivered_to(services: Any, offer_id: str) -> set[str]:
    """The users an offer was delivered to (its per-bucket dedupe sets)."""
    from solomo.core.keys import BUCKETS, offer_delivered

    out: set[str] = set()
    for bucket in range(BUCKETS):
        out.update(await services.redis.smembers(offer_delivered(offer_id, bucket)))
    return out


def record_widenings(monkeypatch: Any) -> list[bool]:
    """Records every widening of a nearest-first GEO search (``geo.reach.widen``): per widening,
    whether the circle grew (else the ``COUNT``)."""
    from geo import reach

    circles: list[bool] = []
    real = reach.widen

    def recorded(replied: int, count: int, searched_m: float, radius_m: float, max_count: int) -> Any:
        wider = real(replied, count, searched_m, radius_m, max_count)
        circles.append(wider is not None and wider[1] > searched_m)
        return wider

    monkeypatch.setattr(reach, "widen", recorded)
    return circles


class CommandLog(monitoring.CommandListener):
    """Every MongoDB command a client sends (name and body)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("hello", "isMaster", "endSessions", "ping"):
            self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@contextlib.asynccontextmanager
async def counted_services(services: Any) -> AsyncIterator[tuple[Any, CommandLog]]:
    """The app's services over a MongoDB client that logs its commands (its own process caches)."""
    from solomo.db import mongo_client

    log = CommandLog()
    client = mongo_client(services.settings, event_listeners=[log])
    try:
        yield replace(services, mongo=client, db=client[services.db.name], extras={}), log
    finally:
        await client.close()
