"""``python -m benchmarks [NAME ...] [--scale F] [--json PATH]``: run the benchmarks, print one table.

Every ``benchmarks/bench_<name>.py`` module exposing ``async def run(env) -> list[Result]`` is a
benchmark; all of them share one :class:`~benchmarks.common.BenchEnv` (servers started once).
``--scale`` multiplies every size and duration (``--scale 0.1`` for a quick look); HTTP load goes
through ``wrk`` (installed with apt-get when missing) or, failing that, the asyncio client.
``SOLOMO_BENCH_KEEP=1`` keeps the run's folder under /tmp (the servers' and processes' logs).
The exit status is 1 when a row failed its own checks (e.g. a socket missed an offer).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS_PATH, BenchEnv, Result, major_faults, markdown_table, print_table, write_json

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


async def run_all(names: list[str], scale: float = 1.0, min_seconds: float = 2.0) -> list[Result]:
    from benchmarks.wrk import ensure_wrk

    wrk = await asyncio.to_thread(ensure_wrk)
    print(f"HTTP load generator: {wrk or 'asyncio client (wrk unavailable)'}", file=sys.stderr, flush=True)
    results: list[Result] = []
    keep = bool(os.environ.get("SOLOMO_BENCH_KEEP"))
    async with BenchEnv(scale=scale, min_seconds=min_seconds, keep_dir=keep) as env:
        for name in names:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            started = time.perf_counter()
            print(f"running {name} …", file=sys.stderr, flush=True)
            faults = major_faults()
            rows = await module.run(env)
            for row in rows:  # the whole module's, set-up included: a paged-out server slows what follows
                row.extra.setdefault("module_major_faults", major_faults() - faults)
            results += rows
            print(f"  {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"run only these benchmarks (e.g. `media search`): {', '.join(available)}")
    parser.add_argument("--only", action="append", choices=available, metavar="NAME",
                        help="run only this benchmark (repeatable), the same as naming it")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every size and duration by this (e.g. 0.1 for a quick run)")
    parser.add_argument("--json", type=Path, default=RESULTS_PATH, help="where to write the results")
    parser.add_argument("--markdown", type=Path, metavar="RESULTS_JSON",
                        help="print an earlier run's table as Markdown (for docs/benchmarks.md); runs nothing")
    args = parser.parse_args(argv)
    if args.markdown:
        doc = json.loads(args.markdown.read_text())
        print(markdown_table([Result(**r) for r in doc["results"]]))
        print(f"\nmachine: {doc['machine']}, generated {doc['generated_at']}")
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; choose from {', '.join(available)}")
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    started = time.perf_counter()
    chosen = [*args.names, *(args.only or [])]
    results = asyncio.run(run_all(list(dict.fromkeys(chosen)) or available, args.scale))
    print(f"\n{len(results)} figures in {time.perf_counter() - started:.0f} s, scale {args.scale:g}\n")
    print_table(results)
    print(f"\nwritten to {write_json(results, args.json)}")
    failed = [r for r in results if r.failures]
    for r in failed:
        print(f"FAILED: {r.name}: {'; '.join(r.failures)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
