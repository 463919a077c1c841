"""Voucher claims, in two rows: the winning claims (the transaction path) and the sold-out answers.

A race of 5,000 users for a stock of 100 answers 4,900 times with the cheap ``sold_out`` path, so
one row over all its answers would mostly measure that path. Two runs instead, each sending every
claim exactly once over 64 concurrent keep-alive connections (wrk with a send-once script, or the
asyncio client when wrk is missing — the baseline alike):

* **winning claims**: an offer with a stock of 1,000 and 1,000 users — every claim wins, each a
  MongoDB transaction (conditional ``$inc`` of ``claimed`` below ``stock`` + the voucher insert);
* **sold-out answers**: 5,000 users race for a stock of 100; the row's rate and latencies are those
  of the 409 ``sold_out`` answers (the 100 winners are in the notes).

Set-up (not timed): a merchant, a store, the offers (``POST /v1/stores/{id}/offers``) and
bulk-inserted users with tokens; each claimer opens the offer once (``GET /v1/offers/{id}``) before
the race, as a crowd waiting for a flash sale does, so its session is known like a real one's
(the first request of a session checks its token in MongoDB; a later one finds it cached).

Checked after each run, and the benchmark fails if any is off: exactly ``stock`` answers were 201,
all others 409 ``sold_out``, exactly ``stock`` vouchers exist for the offer and its ``claimed``
counter equals ``stock``. The baseline is the bare
``POST /echo`` endpoint under the same generator and concurrency.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, LoadStats, Result, json_request, profiled, run_load, send_once
from benchmarks.seed import auth, bulk_users, random_center

CLAIMERS = 5000
STOCK = 100
WINNERS = 1000
CONCURRENCY = 64
BASELINE_REQUESTS = 20_000


class OversoldError(AssertionError):
    """The claims did not hand out exactly the stock."""


def create_offer(base_url: str, token: str, store_id: str, stock: int) -> dict[str, Any]:
    body = json.dumps({"title": "First come, first served", "radius_m": 500, "stock": stock,
                       "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}).encode()
    req = urllib.request.Request(f"{base_url}/v1/stores/{store_id}/offers", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201, resp.status
        return json.loads(resp.read())


async def check(services: Any, offer_id: ObjectId, stock: int, statuses: dict[int, int],
                codes: list[str]) -> dict[str, Any]:
    """Raises :class:`OversoldError` unless exactly ``stock`` vouchers were handed out."""
    vouchers = await services.db.vouchers.count_documents({"offer_id": offer_id})
    offer = await services.db.offers.find_one({"_id": offer_id}, {"claimed": 1})
    facts = {"stock": stock, "answers_201": statuses.get(201, 0), "answers_409": statuses.get(409, 0),
             "vouchers_in_db": vouchers, "offer_claimed": offer["claimed"] if offer else None,
             "sold_out_codes": sorted(set(codes))}
    others = {c: n for c, n in statuses.items() if c not in (201, 409)}
    if facts["answers_201"] != stock or vouchers != stock or facts["offer_claimed"] != stock or others \
            or facts["sold_out_codes"] not in ([], ["sold_out"]):
        raise OversoldError(f"claims did not hand out exactly the stock: {facts}, other statuses {others}")
    return facts


async def _claims(env: BenchEnv, merchant_token: str, store_id: str, claimers: int,
                  stock: int) -> tuple[LoadStats, dict[str, Any], list[tuple[ObjectId, str]]]:
    """One offer with ``stock``, one claim by each of ``claimers`` fresh users, checked."""
    api = await env.api()
    services = await env.services()
    offer = await asyncio.to_thread(create_offer, api.base_url, merchant_token, store_id, stock)
    users = await bulk_users(services, claimers)
    # The crowd has the offer open before the race (people waiting for a flash sale do), so their
    # sessions are as warm as a real crowd's: each claimer read the offer once, untimed.
    opened = await run_load(api.port, [HttpRequest("GET", f"/v1/offers/{offer['id']}", b"", auth(token))
                                       for _, token in users], concurrency=CONCURRENCY)
    if opened.statuses != Counter({200: len(users)}):
        raise AssertionError(f"the claimers could not open the offer: {dict(opened.statuses)}")
    requests = [json_request("POST", f"/v1/offers/{offer['id']}/claim", {}, token) for _, token in users]
    with profiled(f"claims {claimers} for {stock}", api.pid):
        stats = await send_once(api.port, requests, concurrency=CONCURRENCY,
                                pids={"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid})
    codes = list(stats.error_codes.elements())
    facts = await check(services, ObjectId(offer["id"]), stock, dict(stats.statuses), codes)
    print(f"  vouchers: {claimers:,} claimers, stock {stock}: {facts['answers_201']} vouchers handed out, "
          f"{facts['vouchers_in_db']} in MongoDB, claimed counter {facts['offer_claimed']} — exactly the stock",
          flush=True)
    facts.pop("sold_out_codes")
    return stats, facts, users


async def run(env: BenchEnv) -> list[Result]:
    from checkins.stores import create_store

    services = await env.services()
    rng = random.Random(17)
    (merchant, merchant_token), = await bulk_users(services, 1, role="merchant")
    lat, lng = random_center(rng)
    store = await create_store(services, merchant, name="Bench voucher shop", lat=lat, lng=lng)
    winners = env.size(WINNERS, 10)
    won, won_facts, users = await _claims(env, merchant_token, str(store["_id"]), winners, winners)
    claimers, stock = env.size(CLAIMERS, 50), env.size(STOCK, 5)
    race, race_facts, _ = await _claims(env, merchant_token, str(store["_id"]), claimers, stock)
    race_won = race.by_status(201)

    base_app = await env.baseline()
    echo = [json_request("POST", "/echo", {}, token) for _, token in users[:256]]
    await run_load(base_app.port, echo, concurrency=CONCURRENCY)
    base = await send_once(base_app.port, list(itertools.islice(itertools.cycle(echo), env.size(BASELINE_REQUESTS))),
                           concurrency=CONCURRENCY, pids={"baseline": base_app.pid})
    return [
        Result.from_loads(f"voucher claims, winning (transaction path): {winners:,} users for stock {winners:,}",
                          won.by_status(201), base, concurrency=CONCURRENCY, exactly_stock=True, **won_facts),
        Result.from_loads(f"voucher claims, sold-out answers: {claimers:,} users race for stock {stock}",
                          race.by_status(409), base, ok=(409,), concurrency=CONCURRENCY, exactly_stock=True,
                          race_winners_p50_ms=round(race_won.percentile(50), 1),
                          race_answers_per_s=round(race.rate, 1), **race_facts),
    ]
