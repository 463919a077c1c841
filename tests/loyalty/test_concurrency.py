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
    """Ledger sum = balance = earned - spent, never negative; each code charged at most once; the
    entries' ``balance_after`` a serial history (:func:`_assert_one_history`)."""
    now = await balance(client, user)
    assert now["balance"] >= 0
    assert now["balance"] == now["earned"] - now["spent"] == await ledger_sum(services, user.id)
    entries = await services.db.points_ledger.find({"user_id": ObjectId(user.id)},
                                                   {"kind": 1, "source_id": 1, "points": 1, "balance_after": 1}
                                                   ).to_list(None)
    assert max(Counter(e["source_id"] for e in entries if e["kind"] == "spend").values(), default=1) == 1
    _assert_one_history(entries, now["balance"])
    return now


def _assert_one_history(entries: list[dict[str, Any]], final: int) -> None:
    """Each entry moved the balance from ``balance_after - points`` to ``balance_after``; taken in
    the order they committed, these steps must chain from 0 to ``final``. Whatever that order was,
    every balance is then left as often as it is reached, but 0 once more and ``final`` once less
    (an Euler path's degrees): an entry that computed its ``balance_after`` from a balance some other
    change had already moved breaks that."""
    left = Counter(e["balance_after"] - e["points"] for e in entries)
    reached = Counter(e["balance_after"] for e in entries)
    surplus = {v: left[v] - reached[v] for v in left.keys() | reached.keys() if left[v] != reached[v]}
    assert surplus == ({} if final == 0 else {0: 1, final: -1}), (surplus, entries)


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


async def test_concurrent_earnings_each_see_the_balance_before_them(client, services):
    """Thirty earnings of one user at once, each in its own transaction: each reads the balance and
    writes it, so MongoDB lets one commit at a time and re-runs the others; every entry's
    ``balance_after`` is a step of one serial history."""
    _, store = await partner_store(client)
    user = await register(client)
    await asyncio.gather(*(grant(services, user.id, store["id"], n) for n in range(1, 31)))
    books = await _check_books(client, services, user)
    assert books == {"balance": 465, "earned": 465, "spent": 0}


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
