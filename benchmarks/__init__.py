"""Benchmarks: ``python -m benchmarks [--only NAME]`` runs every ``benchmarks/bench_*.py``.

Each module exposes ``async def run(env: BenchEnv) -> list[Result]``; :mod:`benchmarks.common` holds
the harness (embedded servers, server processes, a keep-alive HTTP load generator, the table and
the JSON file ``benchmarks/results.json``).
"""
