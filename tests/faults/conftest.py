"""Fixtures and hooks of the fault drills: their figures shown at the end of the run (they go into
the closing notes); for the cluster drills, a fresh real Redis Cluster per drill module (killing its
nodes disturbs no other test) and an in-process app whose data Redis is that cluster, with the
session's MongoDB and a broker database of the module's own (``BROKER_DB`` in the module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from solomo.embedded import EmbeddedRedisCluster
from tests.faults.drill import FIGURES
from tests.faults.fanout_drill import clear_broker, drill_broker


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault drill figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@dataclass
class ClusterStack:
    cluster: EmbeddedRedisCluster
    settings: Any  # the app's: data on the cluster, the module's broker database
    services: Any
    client: Any  # httpx2 client of the in-process app (ASGI transport)
    broker: str


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedisCluster]:
    cluster = EmbeddedRedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
async def cluster_stack(redis_cluster: EmbeddedRedisCluster, settings: Any,
                        request: pytest.FixtureRequest) -> AsyncIterator[ClusterStack]:
    import httpx2

    from solomo.app import create_app

    broker = drill_broker(settings, request.module.BROKER_DB)
    await clear_broker(broker)
    app_settings = settings.model_copy(update={
        "redis_url": redis_cluster.url, "redis_cluster": True, "broker_url": broker,
        **getattr(request.module, "APP_SETTINGS", {}),
    })
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://solomo.test") as c:
            yield ClusterStack(redis_cluster, app_settings, app.state.services, c, broker)
