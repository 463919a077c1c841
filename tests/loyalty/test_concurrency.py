"""The balance never goes below zero and every code charges once, whatever runs concurrently.

Charges go both through the app in this process and through a separate API process (started
here): the per-process queue of one user's charges does not cover the other process, so only
the transaction (conditional code update, ``$gte`` debit) keeps them right there.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solomo.embedded import free_port
from tests.loyalty.helpers import balance, charge, direct_codes, grant, ledger_sum, partner_store, spend_code
from tests.support import LiveServer, register

UNLIMITED = "points_charge"
"""One merchant charges hundreds of codes at once here, far more than any counter does: the
per-caller charge limit (tested in test_points.py) is off in both API processes."""


@pytest.fixture(autouse=True)
def _no_charge_limit(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(services.settings.rate_limits, UNLIMITED, "")


@pytest.fixture(scope="module")
def other_process() -> Iterator[str]:
    """A second API process (the session's environment, the charge limit off): its URL."""
    limits = {**json.loads(os.environ.get("SOLOMO_RATE_LIMITS") or "{}"), UNLIMITED: ""}
    server = LiveServer(port=free_port(), extra_env={"SOLOMO_RATE_LIMITS": json.dumps(limits)})
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


async def _check_books(client: Any, services: Any, user: Any) -> dict[str, int]:
    """Ledger sum = balance = earned - spent, never negative; each code charged at most once."""
    now = await balance(client, user)
    assert now["balance"] >= 0
    assert now["balance"] == now["earned"] - now["spent"] == await ledger_sum(services, user.id)
    spends = await services.db.points_ledger.find({"user_id": ObjectId(user.id), "kind": "spend"},
                                                  {"source_id": 1}).to_list(None)
    assert max(Counter(s["source_id"] for s in spends).values(), default=1) == 1
    return now


async def test_200_concurrent_charges_against_one_balance(client, services, other_process):
    merchant, store = await partner_store(client)
    user = await register(client)
    await grant(services, user.id, store["id"], 1000)
    codes = await direct_codes(services, user, 200)
    async with httpx2.AsyncClient(base_url=other_process, timeout=60) as other_process:
        answers = await asyncio.gather(*(charge(client if n % 2 else other_process, merchant, store["id"], code, 7)
                                         for n, code in enumerate(codes)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 142, 409: 58}, [a.text for a in answers if a.status_code not in (200, 409)]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"insufficient_points"}
    after = sorted(a.json()["balance_after"] for a in answers if a.status_code == 200)
    assert after == list(range(6, 1000, 7))  # each charge saw the one before it: a serial history
    assert (await _check_books(client, services, user)) == {"balance": 6, "earned": 1000, "spent": 994}


async def test_one_code_charged_concurrently_charges_once(client, services, other_process):
    merchant, store = await partner_store(client)
    user = await register(client)
    await grant(services, user.id, store["id"], 500)
    code = await spend_code(client, user)
    async with httpx2.AsyncClient(base_url=other_process, timeout=60) as other_process:
        answers = await asyncio.gather(*(charge(client if n % 2 else other_process, merchant, store["id"], code, 10)
                                         for n in range(40)))
    assert Counter(a.status_code for a in answers) == {200: 1, 409: 39}
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"code_used"}
    assert (await _check_books(client, services, user))["balance"] == 490


OPS = st.lists(st.one_of(st.tuples(st.just("earn"), st.integers(1, 40)),
                         st.tuples(st.just("charge"), st.integers(1, 60))), min_size=1, max_size=8)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS, together=st.booleans())
async def test_random_interleavings_keep_the_books(client, services, ops, together):
    """Random earns and charges, run one after another (each charge succeeds exactly when the
    model's balance covers it) or all at once (any interleaving): the books always balance."""
    merchant, store = await partner_store(client)
    user = await register(client)
    codes = await direct_codes(services, user, len(ops))

    async def run(n: int) -> tuple[str, int, int]:
        op, points = ops[n]
        if op == "earn":
            await grant(services, user.id, store["id"], points)
            return op, points, 200
        resp = await charge(client, merchant, store["id"], codes[n], points)
        assert resp.status_code in (200, 409), resp.text
        if resp.status_code == 409:
            assert resp.json()["error"]["code"] == "insufficient_points"
        return op, points, resp.status_code

    if together:
        results = await asyncio.gather(*(run(n) for n in range(len(ops))))
    else:
        results, model = [], 0
        for n in range(len(ops)):
            op, points, status = await run(n)
            expect_ok = op == "earn" or model >= points
            assert (status == 200) == expect_ok, (ops, n)
            model += points if op == "earn" else (-points if expect_ok else 0)
            results.append((op, points, status))
    books = await _check_books(client, services, user)
    earned = sum(p for op, p, _ in results if op == "earn")
    spent = sum(p for op, p, status in results if op == "charge" and status == 200)
    assert books == {"balance": earned - spent, "earned": earned, "spent": spent}
