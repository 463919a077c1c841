"""SIGUSR2 makes a running API write its pending tasks and MongoDB pools to its log
(``solomo.diagnostics``): what a drill reads when the API stops answering."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from solomo.embedded import free_port
from tests.support import LiveServer


@pytest.fixture
def api(settings) -> Iterator[LiveServer]:
    server = LiveServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_sigusr2_logs_the_pending_tasks_and_mongodb_pools(api: LiveServer):
    written = api.diagnostics()
    assert written.startswith("/healthz: 200"), written[:200]
    assert "diagnostics on SIGUSR2" in written
    assert "MongoDB pools:" in written and "active_sockets" in written and "127.0.0.1" in written
    assert "tasks," in written and "task(s) at" in written
    assert "looplag" in written  # the loop monitor's task, always pending in a running API


def test_describe_tasks_counts_tasks_waiting_in_the_same_place():
    from solomo.diagnostics import describe_tasks

    async def main() -> str:
        gate = asyncio.Event()

        async def parked() -> None:
            await inner()

        async def inner() -> None:
            await gate.wait()

        tasks = [asyncio.create_task(parked()) for _ in range(5)]
        await asyncio.sleep(0)
        text = describe_tasks()
        gate.set()
        await asyncio.gather(*tasks)
        return text

    text = asyncio.run(main())
    assert "5 task(s) at" in text
    chain = text.split("5 task(s) at:\n", 1)[1]
    assert chain.index("in parked") < chain.index("in inner") < chain.index("in wait")  # down to the wait
