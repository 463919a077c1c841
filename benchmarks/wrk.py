"""``wrk``, the compiled HTTP load generator, driven from Python.

:func:`ensure_wrk` finds the binary, or installs Debian's ``wrk`` package with ``apt-get`` when it
is missing and the harness runs as root; if that fails the harness falls back to its asyncio
client (:func:`benchmarks.common.run_load`). :func:`run_wrk` sends a fixed list of raw requests
round robin (a generated Lua script returns them from ``request()``), for a fixed time, over N
keep-alive connections on one wrk thread, and returns a :class:`~benchmarks.common.LoadStats`
with wrk's own latency percentiles, the answers counted by status and wrk's CPU time.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import cpu_seconds

if TYPE_CHECKING:
    from benchmarks.common import HttpRequest, LoadStats

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_MARK = "WRK-JSON "


@cache
def ensure_wrk(install: bool = True) -> str | None:
    """Path of ``wrk``; installs it with apt-get when missing (root only). None when unavailable."""
    if os.environ.get("SOLOMO_BENCH_NO_WRK"):
        return None  # forces the asyncio client (used by the tests, and to compare the two)
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
        return None
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


def lua_script(raw_requests: Sequence[bytes]) -> str:
    """A wrk script that sends ``raw_requests`` round robin and prints a JSON summary at the end."""
    table = ",\n".join(_lua_string(r) for r in raw_requests)
    pct = ", ".join(f'["{p:g}"] = latency:percentile({p}) / 1000.0' for p in PERCENTILES)
    return f"""
local reqs = {{
{table}
}}
local n, i = #reqs, 0
statuses = {{}}
function request()
  i = i % n + 1
  return reqs[i]
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
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua_script(raw))
        script = Path(fh.name)
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
        script.unlink(missing_ok=True)
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
