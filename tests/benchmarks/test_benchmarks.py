"""The benchmark harness, every benchmark module and the soak run at a tiny size (no timing asserts).

What is asserted is that each produces its figures against real servers and that their own
checks hold: the voucher race hands out exactly the stock, every push socket gets every offer (a
miss fails the row and the harness's exit status), the soak sees no 5xx and loses no event the
clients expected. wrk is required in CI (``make test`` installs it): without it these tests fail
there instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from benchmarks import __main__ as bench_main
from benchmarks import soak
from benchmarks.bench_push import Rounds, push_row
from benchmarks.bench_vouchers import OversoldError, check
from benchmarks.common import (
    HttpRequest,
    LoadStats,
    Result,
    json_request,
    markdown_table,
    merge_loads,
    percentile,
    print_table,
    short_notes,
    slice_ratios,
    write_json,
)
from benchmarks.wrk import ensure_wrk, lua_script, run_wrk, run_wrk_once
from solomo.core.serving import UVICORN_FLAGS
from solomo.embedded import free_port


def require_wrk() -> str | None:
    """wrk's path; in CI its absence is a failure (``make test`` installs it), elsewhere a skip."""
    found = shutil.which("wrk")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("wrk is not installed: make test installs it (apt-get install wrk); CI must not skip this")
        pytest.skip("wrk is not installed (make test installs it)")
    return found


@pytest.fixture
def bare_app() -> Iterator[subprocess.Popen[bytes]]:
    """The benchmarks' bare Starlette app in its own uvicorn process; ``.port`` is set on it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.baseline_app:app", "--port", str(port),
                             *UVICORN_FLAGS, "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.port = port  # type: ignore[attr-defined]
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([5.0], 50) == 5.0
    data = [float(i) for i in range(1, 101)]
    assert percentile(data, 50) == 50.0
    assert percentile(data, 99) == 99.0
    assert percentile(list(reversed(data)), 100) == 100.0


def test_result_table_and_json(tmp_path) -> None:
    rows = [Result.compare("a", 50.0, 200.0, "req/s", latency=(3.0, 9.5), baseline_latency=(1.0, 2.0), note="x"),
            Result.compare("b", 7.0, None, "ms")]
    assert rows[0].ratio == 0.25 and rows[1].ratio is None
    md = markdown_table(rows)
    assert "| a | 50.0 | 200 | req/s | 0.25 | 3 / 1 | 9.5 / 2 |" in md
    assert "| b | 7 | - | ms | - | - | - |" in md

    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

    out = Out()
    print_table(rows, out)
    assert "note=x" in out.text and "p99 ms" in out.text
    assert "loadavg_1m=" in out.text  # every row says how busy the machine was
    doc = json.loads(write_json(rows, tmp_path / "r.json").read_text())
    assert [r["name"] for r in doc["results"]] == ["a", "b"] and doc["machine"]["cpus"] >= 1


def test_lua_script_escapes_raw_requests() -> None:
    raw = HttpRequest("POST", "/x", b'{"a":"\\"q\\"","z":"\xe4\xb8\xad"}').encode("h:1")
    script = lua_script([raw])
    assert '\\034' in script and "\\228\\184\\173" in script and "\\013\\010" in script
    assert "function request()" in script and "WRK-JSON" in script


def test_soak_compare_history_finds_lost_and_duplicate_events() -> None:
    a = soak.Client(0, "u1", "t", 0.0, 0.0, received=["1-0", "2-0", "2-0"])
    b = soak.Client(1, "u2", "t", 0.0, 0.0, received=["5-0"], resumed=True)
    c = soak.Client(2, "u3", "t", 0.0, 0.0, received=[], closed_by_server=4429)
    result = soak.compare_history([a, b, c], {"u1": ["1-0", "2-0", "3-0"], "u2": ["5-0"], "u3": ["9-0"]})
    assert result["lost"] == {"stayed": 1, "resumed": 0}
    assert result["required"] == {"stayed": 3, "resumed": 1}
    assert result["duplicates"] == 1


def test_soak_counts_lost_against_what_the_clients_expected() -> None:
    """Not the server's records: posts by followed users, offers from followed stores within radius."""
    world = soak.World(0.0, 0.0, [], [], [])
    world.published = [("author", "p1"), ("author", "p2"), ("stranger", "p3")]
    world.fanout_windows = {"p1": (10.0, 10.1), "p2": (20.0, 20.1), "p3": (10.0, 10.1)}
    world.live_offers = [("o-near", "s1", 0.0, 0.0, 1500.0), ("o-far", "s1", 0.1, 0.0, 1500.0),
                         ("o-unfollowed", "s2", 0.0, 0.0, 1500.0)]
    a = soak.Client(0, "a", "t", 0.0, 0.001, follows_users={"author"}, follows_stores={"s1"})
    a.feed_posts.update(["p1", "p1"])  # p2 never came, p1 came twice
    b = soak.Client(1, "b", "t", 0.0, 0.0, follows_users={"author"}, follows_stores={"s1"}, resumed=True,
                    away=(15.0, 25.0))  # offline while p2 was fanned out: no feed.new for it
    b.feed_posts.update(["p1"])
    b.offers.update(["o-near"])
    result = soak.compare_expected([a, b], world)
    assert result["required"] == {"feed.new": {"stayed": 2, "resumed": 1}, "offer": {"stayed": 1, "resumed": 1}}
    assert result["lost"] == {"feed.new": {"stayed": 1, "resumed": 0}, "offer": {"stayed": 1, "resumed": 0}}
    assert result["duplicates"] == 1


def test_a_push_row_fails_when_a_socket_misses_an_offer(monkeypatch) -> None:
    def rounds(missing: list[int]) -> Rounds:
        side = Rounds(3)
        for i, m in enumerate(missing):
            side.add(100.0 + i, [{"arrived": [100.0 + i + 0.01] * (3 - m), "missing": m, "frame_bytes": 400}],
                     {"client1": 0.01}, 0.05)
        return side

    good = push_row(3, rounds([0, 0]), rounds([0, 0]), 1)
    assert not good.failures and good.extra["delivered"] == "6/6"
    bad = push_row(3, rounds([0, 1]), rounds([0, 0]), 1)
    assert bad.failures == ["ours: round 2: 1 of 3 sockets missed the offer"]
    assert bad.extra["delivered"] == "5/6"

    def fake_run_all(rows: list[Result]) -> object:
        async def run_all(names: list[str], scale: float = 1.0, min_seconds: float = 2.0) -> list[Result]:
            return rows
        return run_all

    monkeypatch.setattr(bench_main, "run_all", fake_run_all([good, bad]))
    assert bench_main.main(["--json", os.devnull]) == 1  # a failed row fails make bench
    monkeypatch.setattr(bench_main, "run_all", fake_run_all([good]))
    assert bench_main.main(["--json", os.devnull]) == 0


def test_a_push_rows_cpu_budget_is_per_delivery_serving_and_clients_apart() -> None:
    side = Rounds(3)
    for i in range(2):  # two rounds of 3 deliveries, each 0.05 s of wall
        side.add(100.0 + i, [{"arrived": [100.0 + i + 0.01] * 3, "missing": 0, "frame_bytes": 400}],
                 {"api": 0.02, "redis": 0.01, "client1": 0.01, "client2": 0.005}, 0.05)
    assert side.cpu_budget("bare_") == {"bare_cpu_us_a_delivery_serving": 10000.0,  # 0.06 s / 6
                                        "bare_cpu_us_a_delivery_clients": 5000.0,  # 0.03 s / 6
                                        "bare_cores_busy": 0.9}  # 0.09 s over 0.1 s
    row = push_row(3, side, side, 2)
    notes = short_notes(row)
    assert "CPU µs a delivery, serving + clients: ours 10000.0 + 5000.0, bare 10000.0 + 5000.0" in notes
    assert "cores busy: ours 0.9, bare 0.9" in notes
    assert Rounds(3).cpu_budget("") == {}  # nothing delivered: no budget, not a division by zero


def test_a_read_row_says_how_far_its_slices_ratios_spread() -> None:
    def load(requests: int) -> LoadStats:
        return LoadStats(requests, 2.0, 64, Counter({200: requests}), [], {}, percentiles={50.0: 1.0, 99.0: 2.0})

    ours, bare = [load(400), load(200)], [load(2000), load(2000)]
    assert slice_ratios(ours, bare) == [0.2, 0.1]
    merged = Result.from_loads("local", merge_loads(ours), merge_loads(bare), slices=2,
                               slice_ratios=slice_ratios(ours, bare))
    assert merged.ratio == pytest.approx(0.15)  # the row's ratio lies between its slices'
    assert "ratio by slice 0.1–0.2" in short_notes(merged)
    one = Result.from_loads("local", ours[0], bare[0], slices=1, slice_ratios=slice_ratios(ours[:1], bare[:1]))
    assert "ratio by slice" not in short_notes(one)  # one slice: no spread to tell
    assert slice_ratios([load(5)], [load(0)]) == [0.0]  # a bare side that answered nothing: no division by zero


async def test_voucher_check_refuses_anything_but_exactly_the_stock(services) -> None:
    offer_id = ObjectId()
    now = datetime.now(UTC)
    await services.db.offers.insert_one({"_id": offer_id, "store_id": ObjectId(), "title": "t", "stock": 2,
                                         "claimed": 2, "expires_at": now + timedelta(hours=1), "created_at": now})
    await services.db.vouchers.insert_many([
        {"_id": ObjectId(), "offer_id": offer_id, "user_id": ObjectId(), "code": f"BENCHTEST{ObjectId()}",
         "status": "claimed", "expires_at": now + timedelta(hours=1)} for _ in range(2)])
    facts = await check(services, offer_id, 2, {201: 2, 409: 8}, ["sold_out"] * 8)
    assert facts["vouchers_in_db"] == 2
    with pytest.raises(OversoldError):
        await check(services, offer_id, 2, {201: 3, 409: 7}, ["sold_out"] * 7)
    with pytest.raises(OversoldError):
        await check(services, offer_id, 1, {201: 1, 409: 9}, ["sold_out"] * 9)
    with pytest.raises(OversoldError):
        await check(services, offer_id, 2, {201: 2, 409: 7, 500: 1}, ["sold_out"] * 7)


def test_wrk_drives_the_bare_endpoint(bare_app) -> None:
    require_wrk()
    reqs = [HttpRequest("GET", f"/echo?i={i}") for i in range(3)] + [HttpRequest("GET", "/nowhere")]
    stats = run_wrk(bare_app.port, reqs, concurrency=4, seconds=1, pids={"server": bare_app.pid})
    assert stats.generator == "wrk" and stats.requests > 20
    assert set(stats.statuses) == {200, 404} and sum(stats.statuses.values()) >= stats.requests
    assert 3 * stats.statuses[404] == pytest.approx(stats.statuses[200], rel=0.1)  # round robin over the list
    assert 0 < stats.percentile(50) <= stats.percentile(99)
    assert stats.cpu_seconds["server"] > 0


def test_wrk_sends_large_bodies_from_files(bare_app, tmp_path) -> None:
    """A photo upload's body is read by the script from a file (once per distinct body), not
    inlined: the bare app's multipart parser still gets every byte of it (else 400/422)."""
    require_wrk()
    from benchmarks.bench_media import multipart

    body, ctype = multipart(bytes(range(256)) * 1024)  # 256 KiB, every byte value
    reqs = [HttpRequest("POST", "/upload", body, (("Content-Type", ctype), ("X-N", str(i)))) for i in range(3)]
    script = lua_script([r.encode("h:1") for r in reqs], tmp_path)
    assert [f.stat().st_size for f in tmp_path.iterdir()] == [len(body)] and len(script) < 10_000
    stats = run_wrk(bare_app.port, reqs, concurrency=2, seconds=1)
    assert stats.requests > 3 and set(stats.statuses) == {201}


def test_wrk_sends_each_request_exactly_once(bare_app) -> None:
    """The generator of the check-in and claim rows (ours and the baseline): every request once,
    each answer matched to its request (per-status latencies), then wrk is stopped."""
    require_wrk()
    # 2,000: enough work for the server's CPU time to pass a clock tick (10 ms) in any run; 300
    # requests took less than one on a quick machine and read 0.0
    n = 2000
    reqs = [json_request("POST", "/echo", {"i": i}) for i in range(n)] + [HttpRequest("GET", "/nowhere")]
    started = time.perf_counter()
    stats = run_wrk_once(bare_app.port, reqs, concurrency=8, pids={"server": bare_app.pid})
    assert time.perf_counter() - started < 30  # stopped when the last answer came, not at wrk's -d
    assert stats.requests == n + 1 and stats.statuses == {201: n, 404: 1}
    assert stats.generator.startswith("wrk")
    assert len(stats.by_status(201).latencies_ms) == n  # the bare app echoes X-Request-ID
    assert stats.socket_errors == {"answers_without_request_id": 1}  # its 404 page does not
    assert 0 < stats.by_status(201).percentile(50) <= stats.by_status(201).percentile(99)
    assert stats.cpu_seconds["server"] > 0 and "client" in stats.cpu_seconds


async def test_every_benchmark_runs_at_a_tiny_size() -> None:
    """With wrk (required in CI) so the send-once generator and every new baseline run for real."""
    require_wrk()
    ensure_wrk.cache_clear()
    try:
        names = bench_main.discover()
        results = await bench_main.run_all(names, scale=0.002, min_seconds=2.0)
    finally:
        ensure_wrk.cache_clear()
    assert {"checkins", "fanout", "fanout_cluster", "feed_read", "healthz", "insights", "local_feed", "media",
            "nearby_stores", "push", "search", "vouchers"} <= set(names)
    kinds = Counter("fan-out on a cluster" if "on a Redis Cluster" in r.name else
                    next(k for k in ("check-in writes", "fan-out to", "post by a", "home feed with photos",
                                     "home feed", "topic feed", "media upload", "media serving",
                                     "local feed", "nearby stores", "offer push", "voucher claims, winning",
                                     "voucher claims, sold-out", "/healthz", "store search", "post search",
                                     "store insights")
                         if r.name.startswith(k))
                    for r in results)
    assert kinds == {"check-in writes": 2, "fan-out to": 2, "fan-out on a cluster": 2, "post by a": 1,
                     "home feed": 1, "topic feed": 1, "local feed": 1, "nearby stores": 1, "offer push": 2,
                     "voucher claims, winning": 1, "voucher claims, sold-out": 1, "/healthz": 1,
                     "store search": 1, "post search": 1, "media upload": 1, "media serving": 1,
                     "home feed with photos": 1, "store insights": 1}, kinds
    for r in results:
        assert not r.failures, r
        assert r.ours > 0 and r.baseline and r.baseline > 0 and r.ratio == pytest.approx(r.ours / r.baseline), r
        assert "loadavg_1m" in r.extra, r
        assert r.extra["module_major_faults"] >= 0, r  # every row says whether its module read pages back
        assert f"major page faults in the module {r.extra['module_major_faults']:,}" in short_notes(r)
    for r in results:
        if r.unit == "req/s":
            assert r.p50_ms is not None and r.p99_ms is not None and r.p50_ms <= r.p99_ms
            assert r.extra.get("other_statuses") is None, r  # every answer was the expected one
            assert r.extra.get("baseline_other_statuses") is None, r
            assert r.extra["generator"] == r.extra["baseline_generator"], r  # the same generator on both sides
            assert "client_limit" in r.extra and "baseline_client_limit" in r.extra, r
            if "slices" in r.extra:  # a read driven in turns beside its bare endpoint: each turn's ratio
                assert len(r.extra["slice_ratios"]) == r.extra["slices"] and min(r.extra["slice_ratios"]) > 0, r
    upload = next(r for r in results if r.name.startswith("media upload"))
    assert upload.extra["warmup_uploads_stored"] == "10/10" and upload.unit == "req/s", upload
    serving = next(r for r in results if r.name.startswith("media serving"))
    assert serving.extra["warmup_same_bytes"] == serving.extra["baseline_warmup_same_bytes"] == "10/10", serving
    assert "cpu%_api" in serving.extra and "baseline_cpu%_api" in serving.extra, serving  # one process serves both
    photo_feed = next(r for r in results if r.name.startswith("home feed with photos"))
    assert photo_feed.extra["photos_per_page"] == 80, photo_feed
    home = next(r for r in results if r.name.startswith("home feed, "))
    # the floor (benchmarks.floor_app) answered every reader's page with the API's own posts, and ran
    assert home.extra["floor_same_pages"] == f"{home.extra['readers']}/{home.extra['readers']}", home
    assert home.extra["floor_rate"] > 0 and home.extra.get("floor_other_statuses") is None, home
    assert len(home.extra["floor_slice_ratios"]) == home.extra["slices"], home
    assert f"ours {home.extra['ratio_to_floor']} of the floor" in short_notes(home), home
    # what the API's Redis batches carried (INFO stats over our side's slices)
    assert home.extra["redis_commands_a_request"] > 1 and home.extra["redis_commands_a_batch"] >= 1, home
    healthz = next(r for r in results if r.name.startswith("/healthz"))
    assert healthz.extra["access_log_lines"] >= healthz.extra["requests"]  # logged as `make run` logs
    # the API's CPU split between its event loop and its other threads (the log writer's)
    assert healthz.extra["api_loop_cpu_us_a_request"] > 0 and healthz.extra["api_other_threads_cpu_us_a_request"] >= 0
    checkins = next(r for r in results if r.name.startswith("check-in"))
    assert checkins.extra["generator"].startswith("wrk, each request once"), checkins
    partner = next(r for r in results if r.name == "check-in writes at stores in the points programme")
    assert partner.extra["points_entries"] == partner.extra["checkins_written"] > 0, partner  # each earned once
    won = next(r for r in results if r.name.startswith("voucher claims, winning"))
    assert won.extra["answers_201"] == won.extra["stock"] == won.extra["vouchers_in_db"] == won.extra["requests"]
    sold_out = next(r for r in results if r.name.startswith("voucher claims, sold-out"))
    assert sold_out.extra["answers_201"] == sold_out.extra["stock"] == sold_out.extra["vouchers_in_db"]
    assert sold_out.extra["answers_409"] == sold_out.extra["requests"] > 0  # the row holds only the 409s
    for r in results:
        if r.name.startswith("fan-out") and "on a Redis Cluster" in r.name:
            assert "in-Redis ZADD per bucket" in r.name and r.extra["mode"] == "push", r
            assert r.extra["feeds_holding"] == r.extra["followers"] and r.extra["fanout_done"], r
            assert r.extra["masters"] == 3 and r.extra["script_calls_per_chunk"] > 1, r  # really per bucket
            assert r.extra["in_redis_seconds"] and "in_redis_cpu%_redis_masters" in r.extra, r
            assert "cpu%_redis_masters" in r.extra and "cpu%_mongod" in r.extra and "cpu%_harness" in r.extra, r
            # every node was stopped (and reaped) when the benchmark ended: by pid, as a freed port
            # may already serve another test's server on the other worker
            assert len(r.extra["cluster_pids"]) == len(r.extra["cluster_ports"]) == 6, r
            for pid in r.extra["cluster_pids"]:
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
        elif r.name.startswith("fan-out"):
            assert "in-Redis ZADD" in r.name and r.extra["mode"] == "push", r
            assert r.extra["feeds_holding"] == r.extra["followers"] and r.extra["fanout_done"], r
            assert r.extra["in_redis_seconds"] and "in_redis_cpu%_redis" in r.extra and "cpu%_worker" in r.extra, r
            # Redis's own time by command, each side: ours runs its scripts, the baseline its EVALSHA
            assert r.extra["redis_ms_by_command"]["eval"] > 0 and "zscore" not in r.extra["redis_ms_by_command"], r
            assert r.extra["in_redis_redis_ms_by_command"]["evalsha"] > 0, r
        if r.name.startswith(("fan-out", "post by a")):  # each repeat beside the baseline's of its turn
            assert len(r.extra["repeat_ratios"]) == r.extra["repeats"] and min(r.extra["repeat_ratios"]) > 0, r
        if r.name.startswith("post by a"):
            assert r.extra["mode"].startswith("pull") and r.extra["followers"] > r.extra["threshold"], r
        if r.name.startswith("offer push"):
            got, of = r.extra["delivered"].split("/")
            assert got == of and r.extra["bare_delivered"] == r.extra["delivered"], r
            assert r.extra["client_processes"] >= 2 and "cpu%_client2" in r.extra and "bare_cpu%_client2" in r.extra


async def test_soak_runs_and_checks_itself(tmp_path) -> None:
    args = soak.parse(["--seconds", "3", "--clients", "30", "--rate", "12", "--offer-every", "1",
                       "--resume-share", "0.1", "--move-every", "1", "--json", str(tmp_path / "s.json")])
    doc = await soak.soak(args)
    assert doc["http_5xx"] == 0 and doc["http_transport_errors"] == 0
    assert sum(r["requests"] for r in doc["routes"].values()) >= 20
    events = doc["events"]
    assert sum(events["required"]["feed.new"].values()) > 0  # the zero-lost check was not vacuous
    assert events["lost"] == {"feed.new": {"stayed": 0, "resumed": 0}, "offer": {"stayed": 0, "resumed": 0}}
    assert events["duplicates"] == 0
    assert events["history"]["lost"] == {"stayed": 0, "resumed": 0} and events["history"]["duplicates"] == 0
    assert doc["clients"]["dropped_and_resumed"] == 3
    assert doc["api_rss_mib"]["start"] > 0 and doc["ok"], doc
    loop = doc["event_loop"]  # read from the API's /metrics: the monitor ran through the load
    assert loop["api_ticks"] > 0 and loop["api_longest_stall_ms"] >= 0 and "2" in loop["api_gc"], loop
    shares = doc["cpu"]["processes"]
    assert doc["cpu"]["api_over_client"] == round(shares["api"] / shares["soak client"], 2) > 0, doc["cpu"]


def test_soak_summarises_the_stalls_the_api_traced() -> None:
    import io
    import logging
    from collections import Counter

    from solomo.core.stalltrace import StallTracer
    from solomo.observability import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    stalls_log = logging.getLogger("solomo.stalls")
    stalls_log.addHandler(handler)
    try:
        tracer = StallTracer(0.04)
        tracer._report(0.072, Counter({("app.py:10 handler", "hub.py:5 deliver"): 3, ("gc.py:1 x",): 1}))
        tracer._report(0.051, Counter({("app.py:10 handler", "hub.py:5 deliver"): 1}))
        tracer._report(0.090, Counter())
    finally:
        stalls_log.removeHandler(handler)
    lines = out.getvalue() + '{"logger": "solomo.other", "msg": "held for about 999 ms"}\nnot json\n'
    summary = soak.traced_stalls(lines.encode())
    assert summary["count"] == 3
    assert summary["longest_ms"] == 90
    assert summary["innermost_frames"] == [
        {"frame": "hub.py:5 deliver", "stalls": 2},
        {"frame": "(no sample: the loop thread never let the lock go)", "stalls": 1}]
    assert summary["longest"].startswith("event loop held for about 90 ms")
    from datetime import UTC, datetime, timedelta
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert soak.traced_stalls(lines.encode(), since=later)["count"] == 0  # outside the load: not counted
    assert soak.traced_stalls(lines.encode(), until=later)["count"] == 3
