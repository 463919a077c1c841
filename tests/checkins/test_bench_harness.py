"""The benchmark harness's load generator against a real uvicorn process, and its statistics."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlparse

from benchmarks.common import (
    HttpRequest,
    LoadStats,
    Result,
    cpu_stat,
    json_request,
    merge_loads,
    run_load,
    steal_percent,
    write_json,
)


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


def test_slices_merge_into_one_load():
    """An interleaved comparison's slices: counts and CPU add up; a single slice's wrk percentile
    grid comes back exactly, and two slices' merged median lies where their requests put it."""
    grid = {float(q): float(q) for q in range(1, 100)} | {99.5: 99.5, 99.9: 99.9}
    fast = LoadStats(300, 2.0, 8, Counter({200: 300}), [], {"api": 1.0}, percentiles=grid, generator="wrk")
    slow = LoadStats(100, 2.0, 8, Counter({200: 99, 500: 1}), [], {"api": 1.5},
                     percentiles={q: ms + 1000 for q, ms in grid.items()}, generator="wrk",
                     socket_errors={"timeout": 2})
    assert merge_loads([fast]) is fast
    alone = merge_loads([fast, fast])
    assert alone.percentiles == grid and alone.requests == 600 and alone.seconds == 4.0
    both = merge_loads([fast, slow])
    assert both.requests == 400 and both.rate == 100.0 and both.statuses == Counter({200: 399, 500: 1})
    assert both.cpu_percent() == {"api": 62.5} and both.socket_errors == {"timeout": 2}
    # three requests in four are the fast slice's: the merged median is its 2/3 point, p99 the slow one's 96th
    assert both.percentile(50) == 67.0
    assert both.percentile(99) == 1096.0
    assert both.percentile(1) == 2.0  # 1 % of 400 = 4 requests: the fast slice's second point


def test_steal_is_the_hosts_share_of_the_machines_time():
    before = [100, 0, 50, 1000, 0, 0, 0, 10, 0, 0]
    after = [160, 0, 70, 1100, 0, 0, 0, 30, 0, 0]  # 200 jiffies spent, 20 of them taken by the host
    assert steal_percent(before, after) == 10.0
    assert steal_percent(before, before) == 0.0 and steal_percent([], []) == 0.0
    assert len(cpu_stat()) >= 8  # this machine's /proc/stat has the steal column
