"""Check-ins per second over HTTP on loopback, beside a bare Starlette JSON endpoint.

Set-up (not timed): one merchant, ``N + WARMUP`` stores at random spots on the globe and as many
(bulk-inserted) users, each of whom checked in at their own store yesterday and now stands ~11 m from
it again — so every check-in passes all three rules and
does the full work: auth, store lookup, geodesic range check, the transaction (the guard with the
user's recent history, check-in + post inserts, visitor row and day rollup, counters and mayor), the
fan-out enqueue (to the Redis broker; no worker consumes during the run) and the 201 answer. Each
user has their store's page open before checking in (``GET /v1/stores/{id}``, untimed), as someone
at the counter does: their session is as warm as a real visitor's (the token checked and cached
once), so the row measures the check-in, not a first request.

A second row does the same at ``N_PARTNER`` other stores that are in the points programme (each
joined before the visit yesterday, which earned that day's points): each check-in also earns today's
(the ledger's entry found by its once key, the user's balance), in the group's transaction. It
reuses the first row's baseline; ``points_entries`` counts what its check-ins earned (warm-up
included, as ``checkins_written`` does).

Both servers run as one uvicorn process each with the same flags and get the same number of
concurrent keep-alive connections from the same generator: wrk with a script that sends each
request exactly once (a repeated check-in is refused as too soon), or the asyncio client when wrk
is missing — for both sides alike. The baseline (bare ``POST /echo`` with the same bodies and
tokens) gets ``BASELINE_REQUESTS`` requests so it runs long enough to be measured. The ratio
ours / baseline is the figure: the share of the bare framework's throughput a real check-in keeps.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, Result, json_request, profiled, run_load, send_once
from benchmarks.seed import auth, bulk_users

N = 4000
"""Check-ins timed: ~4 s of load since the group commit (1,500 lasted ~1.5 s and moved ±8 % a run)."""
N_PARTNER = 2000
"""Check-ins timed at stores in the points programme (their own row, after the first)."""
PROGRAMME = {"enabled": True, "checkin_points": 10, "redemption_points": 5}
WARMUP = 64
CONCURRENCY = 32
BASELINE_REQUESTS = 20_000
SEED_BATCH = 100


async def _seed(services: Any, count: int, *, partner: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(token, store) pairs: a fresh user next to their own fresh store (``partner``: in the points
    programme, joined before the visit yesterday, which earned that day's points)."""
    from checkins.stores import create_store
    from loyalty.programme import save_settings

    # a merchant may own max_stores_per_merchant stores: as many merchants as that takes
    per_owner = services.settings.max_stores_per_merchant
    merchants = await bulk_users(services, -(-count // per_owner), role="merchant")
    users = await bulk_users(services, count)
    rng = random.Random(1)

    async def one(i: int) -> dict[str, Any]:
        return await create_store(services, merchants[i // per_owner][0], name=f"Bench store {i}",
                                  lat=rng.uniform(-60, 60), lng=rng.uniform(-170, 170), category="food")

    stores: list[dict[str, Any]] = []
    for start in range(0, count, SEED_BATCH):
        stores += await asyncio.gather(*(one(i) for i in range(start, min(count, start + SEED_BATCH))))
    if partner:
        for i, store in enumerate(stores):
            await save_settings(services, merchants[i // per_owner][0], str(store["_id"]), **PROGRAMME)
    # Each has checked in here once before, yesterday (as most check-ins are a returning visitor's):
    # the check-in then meets a history, a seat and a visitor row, as it does in a city that lives.
    from checkins.checkin import check_in
    from solomo.accounts import Principal

    yesterday = datetime.now(UTC) - timedelta(days=1)

    async def before(user_id: ObjectId, store: dict[str, Any]) -> None:
        lng, lat = store["location"]["coordinates"]
        await check_in(services, Principal(user_id, "bench", "bench", "user"), store["_id"], lat, lng, now=yesterday)

    for start in range(0, count, SEED_BATCH):
        await asyncio.gather(*(before(uid, store) for (uid, _), store in
                               zip(users[start:start + SEED_BATCH], stores[start:start + SEED_BATCH], strict=True)))
    return [(token, store) for (_, token), store in zip(users, stores, strict=True)]


def _checkin_body(store: dict[str, Any]) -> dict[str, Any]:
    lng, lat = store["location"]["coordinates"]
    return {"store_id": str(store["_id"]), "lat": lat + 0.0001, "lng": lng, "accuracy_m": 15}


async def _checkins(env: BenchEnv, api: Any, services: Any, pairs: list[tuple[str, dict[str, Any]]],
                    warmup: int) -> tuple[Any, dict[str, Any]]:
    """The timed check-ins of ``pairs`` (after ``warmup`` untimed ones): the load and the row's notes."""
    requests = [json_request("POST", "/v1/checkins", _checkin_body(store), token) for token, store in pairs]
    before = await services.db.checkins.count_documents({})
    pids = {"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid}
    opened = await run_load(api.port, [HttpRequest("GET", f"/v1/stores/{store['_id']}", b"", auth(token))
                                       for token, store in pairs], concurrency=CONCURRENCY)
    if opened.statuses != Counter({200: len(pairs)}):
        raise AssertionError(f"the visitors could not open their stores: {dict(opened.statuses)}")
    await run_load(api.port, requests[:warmup], concurrency=CONCURRENCY)
    with profiled("check-in writes", api.pid):
        ours = await send_once(api.port, requests[warmup:], concurrency=CONCURRENCY, pids=pids)
    written = await services.db.checkins.count_documents({}) - before
    # The row is bound by a check-in's latency (32 clients, a group's transaction at a time), so a
    # change that saves CPU may not move its rate: what each check-in cost each side says it.
    per_checkin = {f"cpu_us_a_checkin_{name}": round(1e6 * seconds / max(1, written))
                   for name, seconds in ours.cpu_seconds.items() if name in ("api", "mongod")}
    return ours, {"checkins_written": written, **per_checkin}


async def run(env: BenchEnv) -> list[Result]:
    api = await env.api()
    services = await env.services()
    n, n_partner, warmup = env.size(N, 20), env.size(N_PARTNER, 20), env.size(WARMUP, 4)
    pairs = await _seed(services, n + warmup)
    ours, notes = await _checkins(env, api, services, pairs, warmup)
    partners = await _seed(services, n_partner + warmup, partner=True)  # after: the first row as it was
    # The same check-ins at stores in the points programme: each also earns the day's points (an
    # entry in the ledger found by its key, the balance), in the same group's transaction.
    entries_before = await services.db.points_ledger.count_documents({})
    ours_partner, notes_partner = await _checkins(env, api, services, partners, warmup)
    earned = await services.db.points_ledger.count_documents({}) - entries_before

    base_app = await env.baseline()
    echo = [json_request("POST", "/echo", _checkin_body(store), token) for token, store in pairs[:256]]
    await run_load(base_app.port, echo, concurrency=CONCURRENCY)
    base = await send_once(base_app.port, list(itertools.islice(itertools.cycle(echo), env.size(BASELINE_REQUESTS))),
                           concurrency=CONCURRENCY, pids={"baseline": base_app.pid})
    return [Result.from_loads("check-in writes", ours, base, concurrency=CONCURRENCY,
                              fanout_worker="none (tasks queued only)", **notes),
            Result.from_loads("check-in writes at stores in the points programme", ours_partner, base,
                              concurrency=CONCURRENCY, fanout_worker="none (tasks queued only)",
                              points_entries=earned, **notes_partner)]
