"""``wrk``, the compiled HTTP load generator, driven from Python.

:func:`ensure_wrk` finds the binary, or installs Debian's ``wrk`` package with ``apt-get`` when it
is missing and the harness runs as root; if that fails the harness falls back to its asyncio
client (:func:`benchmarks.common.run_load`) — for both sides of a row alike. Two ways to drive it:

* :func:`run_wrk` sends a fixed list of raw requests round robin (a generated Lua script returns
  them from ``request()``), for a fixed time, over N keep-alive connections on one wrk thread —
  for repeatable reads; percentiles are wrk's own;
* :func:`run_wrk_once` sends each request of a list exactly once (check-ins, claims: a repeat
  would be refused) and stops when the last answer is in; each request carries an
  ``X-Request-ID`` that the servers echo, so every answer is matched to its request and the
  latencies can be split by status.

Both return a :class:`~benchmarks.common.LoadStats` with the answers counted by status and wrk's
CPU time beside the named server processes'.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import cpu_seconds

if TYPE_CHECKING:
    from benchmarks.common import HttpRequest, LoadStats

PERCENTILES = (*(float(p) for p in range(1, 100)), 99.5, 99.9)
"""wrk's latency percentiles reported per run: a grid fine enough to merge the slices of an
interleaved comparison (:func:`benchmarks.common.merge_loads`)."""
_MARK = "WRK-JSON "


@cache
def ensure_wrk(install: bool = True) -> str | None:
    """Path of ``wrk``; installs it with apt-get when missing (root only). None when unavailable."""
    if os.environ.get("SOLOMO_BENCH_NO_WRK"):
        return None  # forces the asyncio client (used by the tests, and to compare the two)
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "wrk"]):
        try:
            subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                           check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = shutil.which("wrk")
        if found:
            return found
    return None


def _lua_string(data: bytes) -> str:
    out = ['"']
    for b in data:
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch not in '"\\' else f"\\{b:03d}")
    out.append('"')
    return "".join(out)


LARGE_BODY_BYTES = 64 * 1024
"""A request body above this (a photo upload) is not inlined in the script: see :func:`lua_script`."""


def _split_bodies(raw_requests: Sequence[bytes], workdir: Path) -> tuple[list[bytes], list[int], list[Path]]:
    """Each raw request → (its head, the index of its body file, or 0 for an inline body); the
    distinct large bodies written once each to ``workdir``."""
    heads: list[bytes] = []
    index: list[int] = []
    numbers: dict[bytes, int] = {}
    files: list[Path] = []
    for raw in raw_requests:
        cut = raw.find(b"\r\n\r\n") + 4
        body = raw[cut:]
        if cut < 4 or len(body) <= LARGE_BODY_BYTES:
            heads.append(raw)
            index.append(0)
            continue
        if body not in numbers:
            files.append(workdir / f"body{len(files) + 1}.bin")
            files[-1].write_bytes(body)
            numbers[body] = len(files)
        heads.append(raw[:cut])
        index.append(numbers[body])
    return heads, index, files


def lua_script(raw_requests: Sequence[bytes], workdir: Path | None = None) -> str:
    """A wrk script that sends ``raw_requests`` round robin and prints a JSON summary at the end.

    With ``workdir``, bodies over :data:`LARGE_BODY_BYTES` are written there once per distinct body
    and read by the script at start (64 uploads of the same 3 MB photo with different tokens would
    otherwise be ~600 MB of escaped Lua source); each request is then its head joined to its body."""
    heads, index, files = (_split_bodies(raw_requests, workdir) if workdir is not None
                           else (list(raw_requests), [0] * len(raw_requests), []))
    table = ",\n".join(_lua_string(r) for r in heads)
    loads = ",".join(f'read_body({_lua_string(str(f).encode())})' for f in files)
    body_of = ",".join(str(k) for k in index)
    pct = ", ".join(f'["{p:g}"] = latency:percentile({p}) / 1000.0' for p in PERCENTILES)
    return f"""
local reqs = {{
{table}
}}
local function read_body(path)
  local fh = assert(io.open(path, "rb"))
  local data = fh:read("*a")
  fh:close()
  return data
end
local bodies = {{ {loads} }}
local body_of = {{ {body_of} }}
local n, i = #reqs, 0
statuses = {{}}
function request()
  i = i % n + 1
  local b = body_of[i]
  if b == 0 then return reqs[i] end
  return reqs[i] .. bodies[b]
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local counts = {{}}
  for _, t in ipairs(threads) do
    for code, c in pairs(t:get("statuses")) do counts[tostring(code)] = (counts[tostring(code)] or 0) + c end
  end
  local parts = {{}}
  for code, c in pairs(counts) do table.insert(parts, '"' .. code .. '":' .. c) end
  local pct = {{ {pct} }}
  local pparts = {{}}
  for k, v in pairs(pct) do table.insert(pparts, '"' .. k .. '":' .. v) end
  local e = summary.errors
  io.write("{_MARK}{{" ..
    '"requests":' .. summary.requests .. ',"duration_us":' .. summary.duration ..
    ',"statuses":{{' .. table.concat(parts, ",") .. '}},"percentiles_ms":{{' .. table.concat(pparts, ",") .. '}}' ..
    ',"errors":{{"connect":' .. e.connect .. ',"read":' .. e.read .. ',"write":' .. e.write ..
    ',"timeout":' .. e.timeout .. '}}}}\\n')
end
"""


def run_wrk(port: int, requests: Sequence[HttpRequest], *, concurrency: int, seconds: float,
            pids: dict[str, int | None] | None = None, host: str = "127.0.0.1", threads: int = 1) -> LoadStats:
    """Blocking: drive ``127.0.0.1:port`` with wrk; CPU of the named ``pids`` is measured alongside."""
    from benchmarks.common import LoadStats

    binary = ensure_wrk()
    if binary is None:
        raise RuntimeError("wrk is not available")
    raw = [r.encode(f"{host}:{port}") for r in requests]
    workdir = Path(tempfile.mkdtemp(prefix="solomo-wrk-"))
    script = workdir / "run.lua"
    script.write_text(lua_script(raw, workdir))
    pids = {k: v for k, v in (pids or {}).items() if v}
    try:
        before = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [binary, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s",
             "--timeout", "30s", "-s", str(script), f"http://{host}:{port}/"],
            capture_output=True, text=True, timeout=seconds + 120, check=False)
        wall = time.perf_counter() - t0
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
    doc = json.loads(line[len(_MARK):])
    elapsed = doc["duration_us"] / 1e6 or wall
    cpu = {"client": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)}
    for name, pid in pids.items():
        after = cpu_seconds(pid)
        if after is not None:
            cpu[name] = after - before[name]
    statuses: Counter[int] = Counter({int(k): int(v) for k, v in doc["statuses"].items()})
    errors = {k: v for k, v in doc["errors"].items() if v}
    percentiles = {float(k): float(v) for k, v in doc["percentiles_ms"].items()}
    return LoadStats(int(doc["requests"]), elapsed, concurrency, statuses, [], cpu, percentiles=percentiles,
                     generator="wrk", socket_errors=errors)


# --- every request exactly once ----------------------------------------------------------------

_DONE_MARK = "WRK-ALL-ANSWERED"
_SETUP_MARK = "WRK-SCRIPT-LOADED"
REQUEST_ID = "X-Request-ID"


def once_script(raw_requests: Sequence[bytes], ids: Sequence[str], records: Path) -> str:
    """A wrk script that sends each of ``raw_requests`` exactly once, then nothing.

    Each request carries its own ``X-Request-ID`` (``ids``), which both the API and the bare app
    echo, so an answer is matched to its request whatever connection it came on: the script
    records (status, latency in µs) per request with a monotonic clock (LuaJIT's ffi) and writes
    them to ``records`` at the end. When the list is used up it hands wrk an empty request (the
    connection stays idle) and prints a mark once the last answer is in; the caller then stops
    wrk with SIGINT (wrk itself only stops at its ``-d``).
    """
    table = ",\n".join(_lua_string(r) for r in raw_requests)
    id_table = ",".join(_lua_string(i.encode()) for i in ids)
    return f"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} solomo_timespec;
int clock_gettime(int clk_id, solomo_timespec *tp);
]]
local ts = ffi.new("solomo_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local reqs = {{
{table}
}}
local ids = {{ {id_table} }}
local n, i, verified = #reqs, 0, false
local sent = {{}}
-- globals: read from the main state in done() through thread:get()
answered, records, first_us, last_us = 0, {{}}, 0, 0
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
  io.write("{_SETUP_MARK}\\n"); io.flush()  -- before wrk's "Running" line: the script loaded
end
function request()
  if not verified then  -- wrk calls request() once before the run to check the script: not sent
    verified = true
    return reqs[1]
  end
  i = i + 1
  if i > n then return "" end
  local t = now_us()
  if first_us == 0 then first_us = t end
  sent[ids[i]] = t
  return reqs[i]
end
function response(status, headers, body)
  local t = now_us()
  local id = headers["x-request-id"] or headers["X-Request-ID"]
  local t0 = id and sent[id]
  answered = answered + 1
  last_us = t
  if t0 then
    sent[id] = nil
    local code = status >= 400 and body and string.match(body, '"code"%s*:%s*"([^"]+)"') or "-"
    records[#records + 1] = status .. " " .. string.format("%.1f", t - t0) .. " " .. code
  else  -- an answer without our id (e.g. a server error page): counted, latency unknown
    records[#records + 1] = status .. " -1 -"
  end
  if answered == n then io.write("{_DONE_MARK}\\n"); io.flush() end
end
function done(summary, latency, requests)
  local t = threads[1]  -- one thread (-t 1)
  local fh = io.open({_lua_string(str(records).encode())}, "w")
  fh:write(table.concat(t:get("records"), "\\n"))
  fh:close()
  local e = summary.errors
  io.write("{_MARK}{{" .. '"answered":' .. t:get("answered") .. ',"first_us":' .. t:get("first_us") ..
    ',"last_us":' .. t:get("last_us") .. ',"errors":{{"connect":' .. e.connect .. ',"read":' .. e.read ..
    ',"write":' .. e.write .. ',"timeout":' .. e.timeout .. '}}}}\\n')
end
"""


def run_wrk_once(port: int, requests: Sequence[HttpRequest], *, concurrency: int,
                 pids: dict[str, int | None] | None = None, host: str = "127.0.0.1",
                 timeout: float | None = None) -> LoadStats:
    """Blocking: send every request exactly once over ``concurrency`` keep-alive connections.

    The rate is answers / (last answer − first send); latencies are per request (matched by
    ``X-Request-ID``), so they can be split by status (:meth:`LoadStats.by_status`).
    """
    from benchmarks.common import LoadStats

    binary = ensure_wrk()
    if binary is None:
        raise RuntimeError("wrk is not available")
    timeout = timeout or 60.0 + len(requests) / 50
    ids = [f"w{n}" for n in range(len(requests))]
    raw = [replace(r, headers=(*r.headers, (REQUEST_ID, rid))).encode(f"{host}:{port}")
           for r, rid in zip(requests, ids, strict=True)]
    workdir = Path(tempfile.mkdtemp(prefix="solomo-wrk-"))
    script, records = workdir / "once.lua", workdir / "records.txt"
    script.write_text(once_script(raw, ids, records))
    live = {k: v for k, v in (pids or {}).items() if v is not None}
    try:
        before = {name: cpu_seconds(pid) or 0.0 for name, pid in live.items()}
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(
            [binary, "-t", "1", "-c", str(min(concurrency, len(requests))), "-d", f"{round(timeout)}s",
             "--timeout", "60s", "-s", str(script), f"http://{host}:{port}/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(timeout, proc.send_signal, (signal.SIGINT,))
        watchdog.start()
        out: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("Running") and not any(ln.startswith(_SETUP_MARK) for ln in out):
                proc.kill()  # the script did not load: wrk would hammer "GET /" until -d
            if line.startswith(_DONE_MARK):
                proc.send_signal(signal.SIGINT)  # all answered: stop the idle connections now
        watchdog.cancel()
        errors_text = proc.stderr.read() if proc.stderr else ""
        proc.wait()
        after = {name: cpu_seconds(pid) for name, pid in live.items()}
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = next((ln for ln in out if ln.startswith(_MARK)), None)
        if summary is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {''.join(out)[-1000:]} {errors_text[-1000:]}")
        doc = json.loads(summary[len(_MARK):])
        rows = [ln.split() for ln in records.read_text().splitlines() if ln.strip()]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = max(1e-6, (doc["last_us"] - doc["first_us"]) / 1e6)
    cpu = {"client": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)}
    for name, value in after.items():
        if value is not None:
            cpu[name] = value - before[name]
    answered = [(int(status), float(us) / 1000) for status, us, _ in rows if float(us) >= 0]
    unmatched = len(rows) - len(answered)
    statuses: Counter[int] = Counter(int(status) for status, _, _ in rows)
    codes: Counter[str] = Counter(code for status, _, code in rows if int(status) >= 400)
    errors = {k: v for k, v in doc["errors"].items() if v}
    if unmatched:
        errors["answers_without_request_id"] = unmatched
    if len(rows) < len(requests):
        errors["unanswered"] = len(requests) - len(rows)
    return LoadStats(len(rows), elapsed, concurrency, statuses, [ms for _, ms in answered], cpu,
                     generator="wrk, each request once", socket_errors=errors,
                     answers=answered, error_codes=codes)

