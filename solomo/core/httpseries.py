"""The HTTP request series, counted without locks and added to the Prometheus values in bulk.

prometheus_client guards each value with a lock. A request took five of them: the in-progress
gauge up and down, the latency histogram's sum and bucket, the status counter. On the server that
was ~5 µs of a ~40 µs ``/healthz`` (docs/benchmarks.md, twenty-sixth round). So the middleware
counts here, in plain numbers, and :func:`publish` adds what was counted since its last call to the
Prometheus values: before each scrape of ``/metrics``, and every second while the app runs
(:func:`publish_every`), so another process's scrape in multiprocess mode, and the internal metrics
port's thread, see each request within a second.

Counting and publishing both run on the process's event loop thread, so nothing here takes a lock.
(A test serving an app on a second loop thread can lose a count to a publish, never fail one.)
The values themselves are prometheus_client's, so multiprocess mode and the exposition are as
before: ``tests/observability/test_httpseries.py`` checks that a published histogram reads exactly
as one fed by ``observe()``.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Any

from solomo.core.metrics import HTTP_IN_PROGRESS, HTTP_LATENCY, HTTP_LATENCY_BUCKETS, HTTP_REQUESTS

PUBLISH_EVERY_S = 1.0

_BOUNDS = (*HTTP_LATENCY_BUCKETS, float("inf"))
"""The histogram's upper bounds as prometheus_client keeps them: one value a bucket, the first bound
at or above an observation takes it (its ``observe``), the exposition adds them up."""


class _Serving:
    """The requests being served now (the in-progress gauge, set when published)."""

    requests = 0


SERVING = _Serving()


class RouteSeries:
    """One (method label, route template): its latency buckets and sum, and its count by status,
    since the last :func:`publish`. Bounded as the labels are: routes are templates, methods a fixed
    set, statuses the few an app answers."""

    __slots__ = ("buckets", "counters", "latency", "method", "route", "seconds", "statuses", "waiting")

    def __init__(self, method: str, route: str) -> None:
        self.method, self.route = method, route
        self.buckets = [0] * len(_BOUNDS)
        self.seconds = 0.0
        self.statuses: dict[int, int] = {}
        self.waiting = False
        # the Prometheus children, looked up on their first publish (a series shows once counted)
        self.latency: Any = None
        self.counters: dict[int, Any] = {}  # by status

    def count(self, status: int, seconds: float) -> None:
        """One answered request (on the loop thread)."""
        self.buckets[bisect_left(_BOUNDS, seconds)] += 1
        self.seconds += seconds
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if not self.waiting:
            self.waiting = True
            _WAITING.append(self)

    def _publish(self) -> None:
        self.waiting = False
        buckets, self.buckets = self.buckets, [0] * len(_BOUNDS)
        seconds, self.seconds = self.seconds, 0.0
        statuses, self.statuses = self.statuses, {}
        latency = self.latency
        if latency is None:
            latency = self.latency = HTTP_LATENCY.labels(self.method, self.route)
        # the histogram's own values (prometheus_client has no call adding n observations at once)
        latency._sum.inc(seconds)
        for value, n in zip(latency._buckets, buckets, strict=True):
            if n:
                value.inc(n)
        for status, n in statuses.items():
            child = self.counters.get(status)
            if child is None:
                child = self.counters[status] = HTTP_REQUESTS.labels(self.method, self.route, str(status))
            child.inc(n)


_SERIES: dict[tuple[str, str], RouteSeries] = {}
_WAITING: list[RouteSeries] = []


def series(method: str, route: str) -> RouteSeries:
    """The series of a method label and route template (made on first use)."""
    found = _SERIES.get((method, route))
    if found is None:
        found = _SERIES[(method, route)] = RouteSeries(method, route)
    return found


def publish() -> None:
    """Adds everything counted since the last call to the Prometheus values (on the loop thread)."""
    HTTP_IN_PROGRESS.set(SERVING.requests)
    while True:
        try:
            waiting = _WAITING.pop()
        except IndexError:  # (not ``while _WAITING``: a test's second loop thread may take the last)
            return
        waiting._publish()


async def publish_every(seconds: float = PUBLISH_EVERY_S) -> None:
    """Publishes every ``seconds`` until cancelled (the app's lifespan runs it)."""
    while True:
        await asyncio.sleep(seconds)
        publish()
