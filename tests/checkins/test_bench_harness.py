"""The benchmark harness's load generator against a real uvicorn process, and its statistics."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlparse

from benchmarks.common import HttpRequest, LoadStats, Result, json_request, run_load, write_json


async def test_run_load_keep_alive_against_live_server(live_server):
    port = urlparse(live_server).port
    assert port is not None
    requests = [HttpRequest("GET", "/healthz")] * 40 + [HttpRequest("GET", "/v1/nope")] * 5
    requests += [json_request("POST", "/v1/checkins", {"store_id": "x", "lat": 0, "lng": 0}, token="bad")] * 3
    answers: list[tuple[int, bytes]] = []
    stats = await run_load(port, requests, concurrency=4, bodies=answers)
    assert stats.statuses == Counter({200: 40, 404: 5, 401: 3})
    assert stats.requests == 48 and len(stats.latencies_ms) == 48 and stats.rate > 0
    assert {json.loads(b)["error"]["code"] for s, b in answers if s == 401} == {"unauthorized"}
    assert json.loads(next(b for s, b in answers if s == 200)) == {"status": "ok"}
    assert stats.cpu_seconds["client"] >= 0


def test_percentiles_and_results(tmp_path):
    stats = LoadStats(100, 2.0, 8, Counter({201: 100}), [float(i) for i in range(100, 0, -1)], {"client": 1.0})
    assert stats.rate == 50.0
    assert stats.percentile(50) == 50.0 and stats.percentile(99) == 99.0 and stats.percentile(100) == 100.0
    assert stats.cpu_percent() == {"client": 50.0} and not stats.client_bound
    result = Result.compare("x", 10.0, 40.0, "req/s", note="n")
    assert result.ratio == 0.25
    path = write_json([result], tmp_path / "r.json")
    extra = json.loads(path.read_text())["results"][0]["extra"]
    assert extra["note"] == "n" and isinstance(extra["loadavg_1m"], float | int)  # every row records the load
