"""Test session: real embedded MongoDB, data Redis and broker Redis (or external ones from SOLOMO_*_URL), the app
through ASGI, a real Celery worker thread, and a real uvicorn process for socket tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from solomo.embedded import EmbeddedRedisCluster, EmbeddedServers, free_port

if TYPE_CHECKING:
    from tests.heldtasks import HeldTasks

_servers: EmbeddedServers | None = None
_cluster: EmbeddedRedisCluster | None = None
_tmp: Path | None = None
_skipped: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Start the servers before any solomo/workers module reads settings from the environment.

    Under pytest-xdist (``make test`` runs ``-n``) the controller only hands out tests: each worker
    process starts servers of its own, so no test shares a database, a Redis or a broker with a test
    running at the same time (drills flush, kill and fail over what they were given)."""
    global _servers, _tmp, _cluster
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return
    os.environ.setdefault("SOLOMO_MONGO_DB", "solomo_test")
    os.environ["SOLOMO_PASSWORD_TIME_COST"] = "1"
    os.environ["SOLOMO_PASSWORD_MEMORY_KIB"] = "1024"
    os.environ["SOLOMO_SECRET_KEY"] = "test-secret"
    os.environ.setdefault("SOLOMO_LOG_LEVEL", "WARNING")
    from tests.support import METRICS_TOKEN

    os.environ.setdefault("SOLOMO_METRICS_TOKEN", METRICS_TOKEN)  # /metrics on the app needs it
    # The suite registers thousands of accounts, and fails many logins on purpose, from one client
    # address; the per-address limits are tested on their own (tests/moderation/test_ratelimit.py
    # and tests/security/test_api2_authentication.py set them low there).
    # Web Push: the push receiver of tests/push listens on this loopback port, the one allow-listed
    os.environ.setdefault("SOLOMO_TEST_PUSH_PORT", str(free_port()))
    os.environ.setdefault("SOLOMO_PUSH_ALLOWED_HOSTS", f"127.0.0.1:{os.environ['SOLOMO_TEST_PUSH_PORT']}")
    os.environ.setdefault("SOLOMO_RATE_LIMITS", '{"register": "100000/minute", "login_failed_ip": "100000/minute"}')
    # each server named by a SOLOMO_*_URL is used as it is; the others are started here (the broker
    # is always a Redis of its own, never the data Redis)
    def wanted(var: str) -> int | None:
        return None if os.environ.get(var) else free_port()

    mongo_port, redis_port, broker_port = wanted("SOLOMO_MONGO_URL"), wanted("SOLOMO_REDIS_URL"), \
        wanted("SOLOMO_BROKER_URL")
    cluster = on_cluster() and redis_port is not None
    if cluster:
        redis_port = None  # the data Redis is the cluster started below
    if mongo_port is None and redis_port is None and broker_port is None and not cluster:
        return
    _tmp = Path(tempfile.mkdtemp(prefix="solomo-test-"))
    _servers = EmbeddedServers(_tmp, mongo_port, redis_port, broker_port, persistent=False).start()
    for var, server in (("SOLOMO_MONGO_URL", _servers.mongo), ("SOLOMO_REDIS_URL", _servers.redis),
                        ("SOLOMO_BROKER_URL", _servers.broker)):
        if server is not None:
            os.environ[var] = server.url
    os.environ["SOLOMO_DATA_DIR"] = str(_tmp)
    if cluster:
        # the second pass of `make test`: the data on a real six-node Redis Cluster; the broker
        # stays a plain Redis of its own (Celery cannot use a cluster)
        _cluster = EmbeddedRedisCluster(_tmp).start()
        os.environ["SOLOMO_REDIS_URL"] = _cluster.url
        os.environ["SOLOMO_REDIS_CLUSTER"] = "true"


def on_cluster() -> bool:
    """``SOLOMO_TEST_REDIS=cluster``: this run's data Redis is a Redis Cluster."""
    return os.environ.get("SOLOMO_TEST_REDIS", "").strip().lower() == "cluster"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _cluster is not None:
        _cluster.stop()
    if _servers is not None:
        _servers.stop()
    if _tmp is not None:
        shutil.rmtree(_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def settings():
    from solomo.core.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
async def app(settings) -> AsyncIterator:
    from solomo.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def services(app):
    return app.state.services


@pytest.fixture(scope="session")
async def client(app) -> AsyncIterator:
    import httpx2

    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://solomo.test") as c:
        yield c


@pytest.fixture(scope="session")
def celery_worker(settings) -> Iterator:
    """A real Celery worker consuming the real Redis broker, in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    from workers.app import app as celery_app

    with start_worker(celery_app, pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30) as worker:
        yield worker
    from workers import runtime

    runtime.close_all()


@pytest.fixture
async def hold_tasks(services, monkeypatch) -> AsyncIterator[Callable[[], HeldTasks]]:
    """Call it to hold every task the API sends from then on, on the real broker, in a queue no
    worker consumes (:class:`tests.heldtasks.HeldTasks`); the queue is deleted after the test."""
    from tests.heldtasks import HeldTasks

    made: list[HeldTasks] = []

    def install() -> HeldTasks:
        made.append(HeldTasks.install(services, monkeypatch))
        return made[-1]

    yield install
    for held in made:
        await held.delete()


@pytest.fixture(scope="session")
def live_server(settings) -> Iterator[str]:
    """A real uvicorn process serving the app on a loopback port; yields its base URL."""
    from tests.support import LiveServer

    server = LiveServer(port=free_port())
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remembers skipped tests (an expected failure, ``xfail``, is not a skip)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Remembers modules skipped whole (``pytest.importorskip``, a module-level ``pytest.skip``)."""
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (``CI=true``, set by ``.ci/run``) a skipped test fails the run: whatever it needed must be
    installed there, so that no check is silently missing. Local runs stay lenient."""
    if _in_ci() and _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _in_ci() and _skipped:
        terminalreporter.write_line(
            f"CI: {len(_skipped)} skipped test(s) fail the run (install what they need): " + ", ".join(_skipped),
            red=True)
