"""The benchmark harness, every benchmark module and the soak run at a tiny size (no timing asserts).

What is asserted is that each produces its figures against real servers and that their own
checks hold: the voucher race hands out exactly the stock, the soak sees no 5xx and loses no event.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from benchmarks import __main__ as bench_main
from benchmarks import soak
from benchmarks.bench_vouchers import OversoldError, check
from benchmarks.common import HttpRequest, Result, markdown_table, percentile, print_table, write_json
from benchmarks.wrk import ensure_wrk, lua_script, run_wrk
from solomo.embedded import free_port


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
    doc = json.loads(write_json(rows, tmp_path / "r.json").read_text())
    assert [r["name"] for r in doc["results"]] == ["a", "b"] and doc["machine"]["cpus"] >= 1


def test_lua_script_escapes_raw_requests() -> None:
    raw = HttpRequest("POST", "/x", b'{"a":"\\"q\\"","z":"\xe4\xb8\xad"}').encode("h:1")
    script = lua_script([raw])
    assert '\\034' in script and "\\228\\184\\173" in script and "\\013\\010" in script
    assert "function request()" in script and "WRK-JSON" in script


def test_soak_compare_finds_lost_and_duplicate_events() -> None:
    a = soak.Client(0, "u1", "t", 0.0, 0.0, received=["1-0", "2-0", "2-0"])
    b = soak.Client(1, "u2", "t", 0.0, 0.0, received=["5-0"], resumed=True)
    c = soak.Client(2, "u3", "t", 0.0, 0.0, received=[], closed_by_server=4429)
    result = soak.compare([a, b, c], {"u1": ["1-0", "2-0", "3-0"], "u2": ["5-0"], "u3": ["9-0"]})
    assert result["lost"] == {"stayed": 1, "resumed": 0}
    assert result["required"] == {"stayed": 3, "resumed": 1}
    assert result["duplicates"] == 1


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


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)")
def test_wrk_drives_the_bare_endpoint(tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.baseline_app:app", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        reqs = [HttpRequest("GET", f"/echo?i={i}") for i in range(3)] + [HttpRequest("GET", "/nowhere")]
        stats = run_wrk(port, reqs, concurrency=4, seconds=1, pids={"server": proc.pid})
    finally:
        proc.terminate()
        proc.wait(10)
    assert stats.generator == "wrk" and stats.requests > 20
    assert set(stats.statuses) == {200, 404} and sum(stats.statuses.values()) >= stats.requests
    assert 3 * stats.statuses[404] == pytest.approx(stats.statuses[200], rel=0.1)  # round robin over the list
    assert 0 < stats.percentile(50) <= stats.percentile(99)
    assert stats.cpu_seconds["server"] > 0


async def test_every_benchmark_runs_at_a_tiny_size(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOLOMO_BENCH_NO_WRK", "1")  # the asyncio client: no apt-get from a test
    ensure_wrk.cache_clear()
    try:
        names = bench_main.discover()
        results = await bench_main.run_all(names, scale=0.002, min_seconds=0.5)
    finally:
        ensure_wrk.cache_clear()
    assert {"checkins", "fanout", "feed_read", "local_feed", "nearby_stores", "push", "vouchers"} <= set(names)
    by_prefix = Counter(r.name.split(",")[0].split(" (")[0].split(" to ")[0] for r in results)
    assert by_prefix == {"check-in writes": 1, "fan-out": 2, "home feed": 1, "local feed": 1, "nearby stores": 1,
                         "offer push": 2, "voucher claims": 1}, by_prefix
    for r in results:
        assert r.ours > 0 and r.baseline and r.baseline > 0 and r.ratio == pytest.approx(r.ours / r.baseline), r
    for r in results:
        if r.unit == "req/s":
            assert r.p50_ms is not None and r.p99_ms is not None and r.p50_ms <= r.p99_ms
            assert r.extra.get("other_statuses") is None, r  # every answer was the expected one
    vouchers = next(r for r in results if r.name.startswith("voucher"))
    assert vouchers.extra["answers_201"] == vouchers.extra["stock"] == vouchers.extra["vouchers_in_db"]
    assert vouchers.extra["answers_409"] > 0
    for r in results:
        if r.name.startswith("fan-out"):
            assert r.extra["feeds_holding"] == r.extra["followers"] and r.extra["fanout_done"], r
        if r.name.startswith("offer push"):
            got, of = r.extra["delivered"].split("/")
            assert got == of and r.extra["bare_delivered"] == r.extra["delivered"], r


async def test_soak_runs_and_checks_itself(tmp_path) -> None:
    args = soak.parse(["--seconds", "3", "--clients", "30", "--rate", "12", "--offer-every", "1",
                       "--resume-share", "0.1", "--move-every", "1", "--json", str(tmp_path / "s.json")])
    doc = await soak.soak(args)
    assert doc["http_5xx"] == 0 and doc["http_transport_errors"] == 0
    assert sum(r["requests"] for r in doc["routes"].values()) >= 20
    assert sum(doc["events"]["required"].values()) > 0  # the zero-lost check was not vacuous
    assert doc["events"]["lost"] == {"stayed": 0, "resumed": 0} and doc["events"]["duplicates"] == 0
    assert doc["clients"]["dropped_and_resumed"] == 3
    assert doc["api_rss_mib"]["start"] > 0 and doc["ok"], doc
