"""Schemathesis against the app's own OpenAPI document, in process (ASGI), bounded in examples and time.

Every operation the document lists when the test runs is fuzzed with schema-valid (positive) and
schema-violating (negative) requests, signed in (a merchant's token; a moderator's for moderation
routes; a throw-away token for logout), and every answer must be: not a 5xx, a documented status,
the documented content type, and a body that matches the documented schema. Negative requests must
also be refused with a 4xx. All failures are collected and reported together, one line each with a
curl command to reproduce.

The fuzzed app is a separate instance with its own MongoDB database, Redis database and broker
database, so the random data it writes (moderation word lists included) never reaches other tests.
Coverage is asserted, not hoped for: every operation must receive generated positive cases, and a
negative one whenever its schema has anything to violate; the time budget is shared out fairly
(each operation and mode gets an equal share of what is left, and always at least its first case),
so a slow operation cannot starve the ones after it.
Knobs: SOLOMO_FUZZ_EXAMPLES (per operation and mode, default 50), SOLOMO_FUZZ_SECONDS (whole run,
default 150: the test stays within ~3 minutes of CI time), SOLOMO_FUZZ_RANDOM=1 (a fresh seed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("SOLOMO_FUZZ_EXAMPLES", "50"))
BUDGET_S = float(os.environ.get("SOLOMO_FUZZ_SECONDS", "60"))
MIN_POSITIVE = 3
"""Generated positive cases every operation with input must receive (they run whatever the budget)."""
RANDOM = os.environ.get("SOLOMO_FUZZ_RANDOM") == "1"

POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, negative_data_rejection]


@dataclass
class Target:
    schema: Any
    app: Any
    tokens: dict[str, str]
    new_token: Callable[[], str]


@dataclass
class Report:
    calls: dict[str, int] = field(default_factory=dict)
    by_mode: dict[tuple[str, str], int] = field(default_factory=dict)  # (label, mode) → cases sent
    statuses: dict[str, set[int]] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)


def _run_async(coro: Any) -> Any:
    """Run a coroutine on a fresh loop in a thread (the test session's loop stays untouched)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


async def _moderator_token(settings: Any) -> str:
    from solomo.services import open_services

    services = await open_services(settings, create_indexes=False)
    try:
        doc = await services.accounts.create_user(f"fz_mod_{uuid.uuid4().hex[:10]}", "password123", "moderator")
        return await services.accounts.issue_token(doc["_id"])
    finally:
        await services.close()


@pytest.fixture(scope="module")
def target(settings) -> Iterator[Target]:
    from solomo.app import create_app

    base = settings.effective_redis_url.rpartition("/")[0]
    broker = settings.effective_broker_url.rpartition("/")[0]  # the broker is a Redis of its own
    fuzz_settings = settings.model_copy(update={
        "mongo_db": f"{settings.mongo_db}_fuzz", "redis_url": f"{base}/3", "broker_url": f"{broker}/4",
        # every logout case logs in afresh for its throw-away token: more than the per-address limit allows
        "rate_limits": {**settings.rate_limits, "login_ip": ""},
    })
    app = create_app(fuzz_settings)
    # any 4xx refuses a schema-violating request (413 for an oversized body, 410, 409 …)
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": ["4xx"]}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)  # starts the app's lifespan
    password = "password123"
    merchant = f"fz_m_{uuid.uuid4().hex[:10]}"
    with asgi.get_client(app) as http:
        resp = http.post("/v1/auth/register", json={"username": merchant, "password": password, "role": "merchant"})
        assert resp.status_code == 201, resp.text
        tokens = {"merchant": resp.json()["token"], "moderator": _run_async(_moderator_token(fuzz_settings))}

    def new_token() -> str:
        with asgi.get_client(app) as http:
            return http.post("/v1/auth/login", json={"username": merchant, "password": password}).json()["token"]

    try:
        yield Target(schema, app, tokens, new_token)
    finally:
        asgi.shutdown_lifespans()


def _token_for(target: Target, op: Any) -> str:
    if op.path == "/v1/auth/logout":
        return target.new_token()  # logging out must not revoke the token every other case uses
    if op.path.startswith("/v1/moderation"):
        return target.tokens["moderator"]
    return target.tokens["merchant"]


def _fuzz(target: Target, op: Any, mode: GenerationMode, deadline: float, report: Report) -> None:
    label = op.label
    checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else POSITIVE_CHECKS

    @hsettings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        sent = report.by_mode.get((label, mode.value), 0)
        if time.monotonic() > deadline and sent >= MIN_POSITIVE:
            # stop generating, not only sending: otherwise Hypothesis still draws the rest of
            # max_examples, and drawing big bodies costs as much as sending them
            raise _OutOfTime
        headers = {"Authorization": f"Bearer {_token_for(target, op)}"}
        response = case.call(headers=headers)
        report.by_mode[(label, mode.value)] = sent + 1
        report.calls[label] = report.calls.get(label, 0) + 1
        report.statuses.setdefault(label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (label, f"{mode.value}: {failure.title}")
                report.failures.setdefault(key, f"{failure.message.strip()[:400]}\n    got {response.status_code}: "
                                                f"{response.text[:300]}\n    {_shape(case.body)}\n    "
                                                f"{case.as_curl_command(headers=headers)[:600]}")

    try:
        run()
    except _OutOfTime:
        pass  # this operation's share of the budget is spent; it sent at least MIN_POSITIVE cases
    except Unsatisfiable:
        if mode == GenerationMode.POSITIVE or _has_input(op):
            raise
        # nothing to violate: an operation without parameters or body has no negative input


class _OutOfTime(Exception):
    """Raised inside a Hypothesis run to end it once its share of the budget is spent (no shrink phase
    runs, so it ends the run at once)."""


def _has_input(op: Any) -> bool:
    """Parameters or a body: something a request can get wrong (the token is not an input here)."""
    return any(len(part) for part in (op.path_parameters, op.query, op.headers, op.cookies, op.body))


def _shape(body: Any) -> str:
    """A short description of a (possibly huge) generated body."""
    if isinstance(body, dict):
        return "body {" + ", ".join(f"{k}: {type(v).__name__}[{len(v)}]" if isinstance(v, list | str | dict)
                                    else f"{k}: {v!r}"[:60] for k, v in body.items()) + "}"
    return f"body {type(body).__name__}"


def test_fuzz_every_operation(target: Target):
    started = time.monotonic()
    deadline = started + BUDGET_S
    operations = [result.ok() for result in target.schema.get_all_operations()]
    assert len(operations) >= 5, "the OpenAPI document lists the routes"
    report = Report()
    slices = [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for i, (op, mode) in enumerate(slices):
        # a fair share of what is left, so time a fast operation did not use goes to the next ones
        share = max(0.0, deadline - time.monotonic()) / (len(slices) - i)
        _fuzz(target, op, mode, time.monotonic() + share, report)
    elapsed = time.monotonic() - started
    calls = sum(report.calls.values())
    print(f"\nfuzzed {len(operations)} operations, {calls} requests in {elapsed:.1f}s")
    lines = [f"{label} [{what}]\n    {detail}" for (label, what), detail in sorted(report.failures.items())]
    assert not lines, f"{len(lines)} distinct failures:\n" + "\n".join(lines)
    positive = {op.label: report.by_mode.get((op.label, GenerationMode.POSITIVE.value), 0) for op in operations}
    negative = {op.label: report.by_mode.get((op.label, GenerationMode.NEGATIVE.value), 0) for op in operations}
    with_input = {op.label for op in operations if _has_input(op)}
    violable = [n for label, n in negative.items() if label in with_input]
    print(f"positive cases per operation: min {min(positive.values())}, max {max(positive.values())}; "
          f"negative: min {min(violable, default=0)} over the {len(violable)} operations with something to violate")
    # every operation of the document was fuzzed, whatever the budget: none is silently left out
    # (an operation without input has one distinct request to send: once is all there is)
    missed = sorted(label for label, n in positive.items() if n < (MIN_POSITIVE if label in with_input else 1))
    unviolated = sorted(label for label, n in negative.items() if not n and label in with_input)
    assert not missed and not unviolated, (f"operations with fewer than {MIN_POSITIVE} generated positive cases: "
                                           f"{missed}; with no generated negative case: {unviolated}")
    # signed in: authenticated operations got past 401 at least once
    for op in operations:
        if op.definition.raw.get("security") and report.calls.get(op.label):
            assert report.statuses[op.label] - {401}, f"{op.label}: every answer was 401"
