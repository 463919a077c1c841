"""The HTTP series counted without locks: what :func:`publish` adds reads exactly as prometheus_client's
own ``observe`` / ``inc`` would have made it, nothing is added twice, and a running app publishes
on its own within a second."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import CollectorRegistry, Counter, Histogram

from solomo.core import httpseries
from solomo.core.metrics import HTTP_IN_PROGRESS, HTTP_LATENCY, HTTP_LATENCY_BUCKETS, HTTP_REQUESTS


def _samples(metric: object, route: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A metric's samples for one route, labels without the method and route."""
    found = {}
    for family in metric.collect():  # type: ignore[attr-defined]
        for s in family.samples:
            if s.labels.get("route") == route and not s.name.endswith("_created"):
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("method", "route")))
                found[(s.name, labels)] = s.value
    return found


# every bound itself (a value on a bound belongs to that bucket), either side of it, 0, past the last
LATENCIES = [0.0, *HTTP_LATENCY_BUCKETS, *(b * 0.999 for b in HTTP_LATENCY_BUCKETS),
             *(b * 1.001 for b in HTTP_LATENCY_BUCKETS), 30.0, 1e-9]


def test_published_series_read_as_prometheus_own_updates():
    route = f"/t/{uuid.uuid4().hex}"
    reference = CollectorRegistry()
    latency = Histogram("solomo_http_request_duration_seconds", "ref", ["method", "route"],
                        buckets=HTTP_LATENCY_BUCKETS, registry=reference)
    requests = Counter("solomo_http_requests", "ref", ["method", "route", "status"], registry=reference)
    series = httpseries.series("GET", route)
    for i, seconds in enumerate(LATENCIES):
        status = (200, 404, 500)[i % 3]
        series.count(status, seconds)
        latency.labels("GET", route).observe(seconds)
        requests.labels("GET", route, str(status)).inc()
    assert _samples(HTTP_LATENCY, route) == {}  # counted, not yet published
    httpseries.publish()
    assert _samples(HTTP_LATENCY, route) == _samples(latency, route)
    assert _samples(HTTP_REQUESTS, route) == _samples(requests, route)

    httpseries.publish()  # nothing new counted: nothing added again
    assert _samples(HTTP_LATENCY, route) == _samples(latency, route)
    series.count(200, 0.003)
    latency.labels("GET", route).observe(0.003)
    requests.labels("GET", route, "200").inc()
    httpseries.publish()
    assert _samples(HTTP_LATENCY, route) == _samples(latency, route)
    assert _samples(HTTP_REQUESTS, route) == _samples(requests, route)


def test_requests_in_progress_are_set_when_published():
    before = httpseries.SERVING.requests
    httpseries.SERVING.requests += 3
    try:
        httpseries.publish()
        assert HTTP_IN_PROGRESS._value.get() == before + 3
    finally:
        httpseries.SERVING.requests -= 3
    httpseries.publish()
    assert HTTP_IN_PROGRESS._value.get() == before


async def test_a_running_publisher_adds_the_counts_within_a_second():
    route = f"/t/{uuid.uuid4().hex}"
    publisher = asyncio.create_task(httpseries.publish_every(0.05))
    try:
        httpseries.series("POST", route).count(201, 0.004)
        for _ in range(100):
            if _samples(HTTP_REQUESTS, route):
                break
            await asyncio.sleep(0.01)
        assert _samples(HTTP_REQUESTS, route) == {("solomo_http_requests_total", (("status", "201"),)): 1.0}
    finally:
        publisher.cancel()
