"""``solomo dev``: the whole service on one machine — embedded MongoDB, data Redis and broker Redis
(each unless its SOLOMO_*_URL names an external one), a Celery worker (with beat), the API — stopped
in reverse order on Ctrl-C or SIGTERM, leaving no process behind."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import TextIO

from solomo.core.serving import UVICORN_FLAGS
from solomo.core.settings import Settings, has_secret_key
from solomo.embedded import EmbeddedServers, ManagedProcess, port_open


def _wait_ready(url: str, timeout: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


SECRET_KEY_FILE = "secret_key"
"""In the data folder: the key ``solomo dev`` signs with when SOLOMO_SECRET_KEY is not set."""


def dev_secret_key(settings: Settings) -> str:
    """The key every process of ``solomo dev`` runs with: SOLOMO_SECRET_KEY when set; else the one kept
    in the data folder (readable by its owner only), generated on the first start and reused after,
    so cursors handed out before a restart stay valid."""
    if has_secret_key(settings):
        return settings.secret_key
    path = settings.data_dir / SECRET_KEY_FILE
    if path.is_file():
        os.chmod(path, 0o600)
        kept = path.read_text().strip()
        if kept:
            return kept
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when the file existed (empty) with other bits
        out.write(key + "\n")
    return key


def console_log_format(settings: Settings, console: TextIO) -> str:
    """The format of log lines printed on ``console``: plain for a person at a terminal, unless
    ``SOLOMO_LOG_FORMAT`` was set. The API's and the worker's log files keep ``settings.log_format``
    (JSON unless set otherwise), for machines."""
    if "log_format" in settings.model_fields_set or not console.isatty():
        return settings.log_format
    return "plain"


def run_dev(settings: Settings, *, workers: int = 1, seed: bool = True) -> int:
    stopping = threading.Event()  # set by the signal handler while the loops below run

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    servers: EmbeddedServers | None = None
    children: list[ManagedProcess] = []
    env = {**os.environ, "SOLOMO_SECRET_KEY": dev_secret_key(settings)}
    logs = settings.data_dir / "logs"
    try:
        if settings.uses_embedded:  # whichever of the three servers has no SOLOMO_*_URL is started here
            mongo_port, redis_port, broker_port = settings.embedded_ports
            wanted = {"MongoDB": mongo_port, "Redis": redis_port, "broker Redis": broker_port}
            embedded = {name: port for name, port in wanted.items() if port is not None}
            busy = [str(port) for port in embedded.values() if port_open(port)]
            if busy:
                print(f"port(s) {', '.join(busy)} busy: is another `make run` going?", file=sys.stderr)
                return 1
            external = [name for name, port in wanted.items() if port is None]
            if settings.redis_cluster and "Redis" in external:
                external[external.index("Redis")] = "Redis Cluster"
            print("starting " + ", ".join(f"{name} :{port}" for name, port in embedded.items())
                  + (f"; external {', '.join(external)}" if external else "") + f" (data in {settings.data_dir})")
            servers = EmbeddedServers(settings.data_dir, mongo_port, redis_port, broker_port, persistent=True).start()
            if servers.mongo is not None:
                env["SOLOMO_MONGO_URL"] = servers.mongo.url
            if servers.redis is not None:
                env["SOLOMO_REDIS_URL"] = servers.redis.url
            if servers.broker is not None:
                env["SOLOMO_BROKER_URL"] = servers.broker.url
        if seed:
            # the seed's summary is for the person at this console: it prints there, in its format
            seed_proc = ManagedProcess("seed", [sys.executable, "-m", "solomo.cli", "seed", "--if-empty"], None)
            sys.stdout.flush()
            _run_child_once(seed_proc, {**env, "SOLOMO_LOG_FORMAT": console_log_format(settings, sys.stdout)})
        worker = ManagedProcess("celery", [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-B",
            "-Q", "fanout,maintenance,push", "--concurrency", str(workers), "--loglevel", "INFO",
            "--schedule", str(settings.data_dir / "celerybeat-schedule"),
        ], logs / "celery.log")
        api = ManagedProcess("uvicorn", [
            sys.executable, "-m", "uvicorn", "solomo.asgi:app", "--host", settings.host,
            "--port", str(settings.port), *UVICORN_FLAGS,
        ], logs / "api.log")
        for child in (worker, api):
            _start_with_env(child, env)
            children.append(child)
        base = f"http://{settings.host}:{settings.port}"
        ready = _wait_ready(base + "/readyz", 60, lambda: not stopping.is_set() and api.alive())
        if stopping.is_set():  # Ctrl-C while starting up is a clean stop, not a failure
            return 0
        if ready:
            print(f"SoLoMo is up: {base}/  (API docs: {base}/openapi.json; logs in {logs}); Ctrl-C stops it")
        else:
            print(f"the API did not become ready; see {logs}/api.log", file=sys.stderr)
            return 1
        while not stopping.is_set():
            for child in children:
                if not child.alive():
                    print(f"{child.name} exited; see {child.log_path}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("stopping …")
        for child in reversed(children):
            child.stop(timeout=20)
        if servers is not None:
            servers.stop()
        print("stopped")


def _start_with_env(child: ManagedProcess, env: dict[str, str]) -> None:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        child.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_child_once(child: ManagedProcess, env: dict[str, str]) -> None:
    _start_with_env(child, env)
    assert child.process is not None
    child.process.wait(180)
