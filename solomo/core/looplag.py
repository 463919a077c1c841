"""A cheap monitor of the API's event loop: how long anything holds it (a stall).

A task sleeps :data:`TICK_S` at a time and measures how late it wakes up; the lateness is how long
other callbacks held the loop. Every tick's lateness goes into ``solomo_event_loop_lag_seconds``
(a histogram) and the longest of the last :data:`WINDOW_S` seconds is the gauge
``solomo_event_loop_max_stall_seconds`` — a scraper sampling more often than the window sees
every stall (the soak does: ``benchmarks/soak.py``). Twenty wake-ups a second cost a few
microseconds each.

Garbage collections are timed too (``solomo_gc_cpu_seconds`` by generation, from
``gc.callbacks``; the collecting thread's CPU time, so a busy machine's preemption is not blamed on
the collector). The start-up heap is frozen out of the full collections (:mod:`solomo.core.heap`);
in the soak what a full collection still walks is the 2,000 sockets' own objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from typing import Any

from solomo.core.metrics import EVENT_LOOP_LAG, EVENT_LOOP_MAX_STALL, GC_CPU
from solomo.core.sidetasks import reap
from solomo.core.stalltrace import StallTracer

TICK_S = 0.05
WINDOW_S = 10.0
_SLOTS = 10
"""The window is kept as this many per-slot maxima (one slot = WINDOW_S / _SLOTS seconds)."""


class StallWindow:
    """The longest stall of the last ``window_s`` seconds, kept as per-slot maxima."""

    def __init__(self, window_s: float = WINDOW_S, slots: int = _SLOTS) -> None:
        self.slot_s = window_s / slots
        self.maxima: deque[tuple[int, float]] = deque(maxlen=slots)

    def add(self, now: float, stall: float) -> float:
        """Records a stall seen at ``now`` (``time.monotonic()``); returns the window's longest."""
        slot = int(now / self.slot_s)
        if self.maxima and self.maxima[-1][0] == slot:
            if stall > self.maxima[-1][1]:
                self.maxima[-1] = (slot, stall)
        else:
            self.maxima.append((slot, stall))
        oldest = slot - self.maxima.maxlen + 1 if self.maxima.maxlen else slot
        return max((m for s, m in self.maxima if s >= oldest), default=0.0)


async def watch(tick_s: float = TICK_S, tracer: StallTracer | None = None) -> None:
    """Runs until cancelled: measures every tick's lateness into the two metrics (and tells
    ``tracer`` when the loop means to wake, so that it can sample what holds it past that)."""
    # time.monotonic(), not loop.time(): uvloop's loop time is read once per turn of the loop, in
    # milliseconds, so a wake-up late behind callbacks of the same turn would not show
    window = StallWindow()
    while True:
        due = time.monotonic() + tick_s
        if tracer is not None:
            tracer.beat(due)
        await asyncio.sleep(tick_s)
        now = time.monotonic()
        late = max(0.0, now - due)
        EVENT_LOOP_LAG.observe(late)
        EVENT_LOOP_MAX_STALL.set(window.add(now, late))


class GcTimer:
    """A ``gc.callbacks`` entry that times each collection (thread CPU time) into ``solomo_gc_cpu_seconds``."""

    def __init__(self) -> None:
        self.children = [GC_CPU.labels(generation=str(g)) for g in range(3)]
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.thread_time()
        else:
            self.children[info["generation"]].observe(time.thread_time() - self.started)


Watching = tuple[asyncio.Task[None], GcTimer, StallTracer | None]


def start(stall_trace_ms: float = 0.0) -> Watching:
    """Starts the monitor (and, with ``stall_trace_ms`` > 0, :class:`~solomo.core.stalltrace.StallTracer`)."""
    timer = GcTimer()
    gc.callbacks.append(timer)
    tracer = StallTracer(stall_trace_ms / 1000).start() if stall_trace_ms > 0 else None
    task = asyncio.get_running_loop().create_task(watch(tracer=tracer), name="solomo.looplag")
    return task, timer, tracer


async def stop(started: Watching) -> None:
    task, timer, tracer = started
    if tracer is not None:  # first: once the ticker stops promising, every moment would look late
        tracer.stop()
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(timer)
    await reap(task, cancel=True)
