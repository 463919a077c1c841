"""What held the event loop: a watchdog thread that samples the loop thread's stack while it is late.

:mod:`solomo.core.looplag` measures how long the loop is held; this says by what. Opt-in
(``SOLOMO_STALL_TRACE_MS``: a stall threshold in milliseconds, off when unset or 0), for a
diagnosis, not for every deployment: the watchdog wakes every quarter of the threshold and, while
the loop is more than the threshold late, reads the loop thread's frame through
``sys._current_frames()`` at each wake-up. When the loop comes back, the stall is logged once
(``solomo.stalls``, WARNING) with its length and the most frequent stacks among its samples,
innermost frame last.

A stall spent in one C call that never lets the interpreter lock go (a garbage collection, say)
gives the watchdog no sample until it ends: such a stall is logged with the samples it got, maybe
none; ``solomo_gc_cpu_seconds`` times the collections themselves.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections import Counter
from types import FrameType

log = logging.getLogger("solomo.stalls")

POLL_MIN_S = 0.005
"""The watchdog wakes every quarter of the threshold, never more often than this: each wake-up
takes the interpreter lock from the loop thread, which on a busy machine can wait for the watchdog
to be scheduled before it gets the lock back (the cost of the diagnosis; off by default)."""
STACK_DEPTH = 24
"""Innermost frames kept per sample: enough to see the caller of the code that held the loop."""
TOP_STACKS = 3


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    entries = traceback.extract_stack(frame, limit=STACK_DEPTH) if frame is not None else []
    return tuple(f"{e.filename.rsplit('/', 2)[-1] if '/' in e.filename else e.filename}:{e.lineno} {e.name}"
                 for e in entries)


class StallTracer:
    """Samples ``thread_id``'s stack while :meth:`beat`'s promise (the loop's next wake-up) is late
    by more than ``threshold_s``."""

    def __init__(self, threshold_s: float, thread_id: int | None = None) -> None:
        self.threshold_s = threshold_s
        self.poll_s = max(POLL_MIN_S, threshold_s / 4)
        self.thread_id = thread_id if thread_id is not None else threading.get_ident()
        self.due = time.monotonic() + 3600.0  # nothing promised yet
        self.stalls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="solomo.stalltrace", daemon=True)

    def start(self) -> StallTracer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def beat(self, due: float) -> None:
        """Called on the loop thread: it expects to run again at ``due`` (``time.monotonic``)."""
        self.due = due

    def _run(self) -> None:
        samples: Counter[tuple[str, ...]] = Counter()
        stalled_since: float | None = None
        while not self._stop.wait(self.poll_s):
            now, due = time.monotonic(), self.due
            if now - due > self.threshold_s:
                if stalled_since is None:
                    stalled_since = due
                samples[_stack(sys._current_frames().get(self.thread_id))] += 1
            elif stalled_since is not None:
                self._report(time.monotonic() - stalled_since, samples)
                samples, stalled_since = Counter(), None

    def _report(self, held_s: float, samples: Counter[tuple[str, ...]]) -> None:
        self.stalls += 1
        total = sum(samples.values())
        lines = [f"  {n}/{total} samples:\n    " + "\n    ".join(stack) for stack, n in samples.most_common(TOP_STACKS)]
        log.warning("event loop held for about %.0f ms (%d samples)\n%s", held_s * 1000, total, "\n".join(lines))
