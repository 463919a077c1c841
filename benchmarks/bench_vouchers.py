"""Voucher claims: 5,000 users race for an offer with a stock of 100 — exactly 100 get a voucher.

Set-up (not timed): a merchant, a store and an offer (``POST /v1/stores/{id}/offers`` with
``stock: 100``), 5,000 bulk-inserted users with tokens. Then every user sends one
``POST /v1/offers/{id}/claim`` over 64 concurrent keep-alive connections (the asyncio client:
each request is sent exactly once, which a time-based generator cannot promise). Each claim is a
MongoDB transaction (conditional ``$inc`` of ``claimed`` below ``stock`` + the voucher insert).

Checked after the run, and the benchmark fails if any is off: exactly ``stock`` answers were 201,
all others 409 ``sold_out``, exactly ``stock`` vouchers exist for the offer and its ``claimed``
counter equals ``stock``. The figure is answered claims per second; the baseline is the bare
``POST /echo`` endpoint under the same load (driven by wrk when available).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from benchmarks.common import BenchEnv, Result, drive, json_request, run_load
from benchmarks.seed import bulk_users, random_center

CLAIMERS = 5000
STOCK = 100
CONCURRENCY = 64
BASELINE_SECONDS = 5.0


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


async def run(env: BenchEnv) -> list[Result]:
    from checkins.stores import create_store

    api = await env.api()
    services = await env.services()
    claimers, stock = env.size(CLAIMERS, 50), env.size(STOCK, 5)
    rng = random.Random(17)
    (merchant, merchant_token), = await bulk_users(services, 1, role="merchant")
    lat, lng = random_center(rng)
    store = await create_store(services, merchant, name="Bench voucher shop", lat=lat, lng=lng)
    offer = await asyncio.to_thread(create_offer, api.base_url, merchant_token, str(store["_id"]), stock)
    users = await bulk_users(services, claimers)
    requests = [json_request("POST", f"/v1/offers/{offer['id']}/claim", {}, token) for _, token in users]
    bodies: list[tuple[int, bytes]] = []
    ours = await run_load(api.port, requests, concurrency=CONCURRENCY, bodies=bodies,
                          pids={"api": api.pid, "mongod": env.mongod_pid, "redis": env.redis_pid})
    codes = [json.loads(body)["error"]["code"] for status, body in bodies if status == 409]
    facts = await check(services, ObjectId(offer["id"]), stock, dict(ours.statuses), codes)
    print(f"  vouchers: {claimers:,} claimers, stock {stock}: {facts['answers_201']} vouchers handed out, "
          f"{facts['vouchers_in_db']} in MongoDB, claimed counter {facts['offer_claimed']} — exactly the stock",
          flush=True)

    base_app = await env.baseline()
    echo = [json_request("POST", "/echo", {}, token) for _, token in users[:256]]
    await run_load(base_app.port, echo, concurrency=CONCURRENCY)
    base = await drive(base_app.port, echo, concurrency=CONCURRENCY, seconds=env.seconds(BASELINE_SECONDS),
                       pids={"baseline": base_app.pid})
    facts.pop("sold_out_codes")
    return [Result.from_loads(f"voucher claims, {claimers:,} users for stock {stock}", ours, base,
                              ok=(201, 409), concurrency=CONCURRENCY, exactly_stock=True, **facts,
                              loadavg_1m_at_end=round(os.getloadavg()[0], 2))]
