"""The stall tracer names the code that held the event loop, and stays quiet while nothing does."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from solomo.core import looplag
from solomo.core.stalltrace import StallTracer


def hold_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # a blocking call on the loop's thread: what the tracer is for


async def test_a_stall_is_logged_with_the_stack_that_held_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="solomo.stalls")
    started = looplag.start(stall_trace_ms=20)
    tracer = started[2]
    assert tracer is not None
    try:
        await asyncio.sleep(0.12)  # the watcher has promised a wake-up
        hold_the_loop_for(0.25)
        for _ in range(100):  # the watchdog reports once the loop is back (bounded wait)
            if tracer.stalls:
                break
            await asyncio.sleep(0.01)
    finally:
        await looplag.stop(started)
    records = [r for r in caplog.records if r.name == "solomo.stalls"]
    assert tracer.stalls == len(records) >= 1
    message = records[0].getMessage()
    assert "event loop held for about" in message
    assert "hold_the_loop_for" in message  # the frame that blocked, from the loop thread's stack
    assert "test_a_stall_is_logged_with_the_stack_that_held_the_loop" in message


async def test_no_report_while_the_loop_keeps_its_promises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="solomo.stalls")
    started = looplag.start(stall_trace_ms=200)
    try:
        for _ in range(20):
            await asyncio.sleep(0.01)
    finally:
        await looplag.stop(started)
    assert started[2] is not None and started[2].stalls == 0
    assert not [r for r in caplog.records if r.name == "solomo.stalls"]


def test_off_by_default() -> None:
    async def go() -> None:
        started = looplag.start()
        assert started[2] is None
        await looplag.stop(started)
    asyncio.run(go())


def test_a_stopped_tracer_thread_ends() -> None:
    tracer = StallTracer(0.05).start()
    tracer.stop()
    assert not tracer._thread.is_alive()
