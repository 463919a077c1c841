"""What the fault drills share: the record of each answer, the call that records it, the settings
that lift rate limits and abuse caps (a drill is about faults, not limits), and a summary."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx2

from solomo.core.ratelimit import default_specs

NOT_THE_ERROR_BODY = "<not the error body>"
FIGURES: list[str] = []
"""The drills' figures (times to recover, losses, duplicates), shown at the end of the pytest run by
``tests/faults/conftest.py`` even when the output is captured."""


def report(line: str) -> None:
    FIGURES.append(line)
    print(line)


@dataclass
class Outcome:
    phase: str
    op: str
    status: int | None  # None: no HTTP answer (timeout / connection error / exception)
    code: str | None  # the JSON error body's code for a 4xx/5xx
    started: float
    ended: float
    error: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def call(outcomes: list[Outcome], phase: str, http: httpx2.AsyncClient, op: str, method: str, url: str,
               **kw: Any) -> httpx2.Response | None:
    """Sends one request and appends its outcome; None when no HTTP answer came."""
    start = time.monotonic()
    try:
        resp = await http.request(method, url, **kw)
    except Exception as exc:  # a transport error or an exception out of an ASGI app: recorded
        outcomes.append(Outcome(phase, op, None, None, start, time.monotonic(), repr(exc)))
        return None
    outcomes.append(Outcome(phase, op, resp.status_code, error_code(resp), start, time.monotonic()))
    return resp


def error_code(resp: httpx2.Response) -> str | None:
    """The JSON error body's code of a 4xx/5xx (``NOT_THE_ERROR_BODY`` when it has none), else None."""
    if resp.status_code < 400:
        return None
    try:
        return str(resp.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return NOT_THE_ERROR_BODY


def unlimited_settings() -> dict[str, Any]:
    """Settings fields for a drill: no rate limits (its clients call from 127.0.0.1 at thousands of
    requests a minute) and no abuse caps (one merchant opens many stores and offers)."""
    return {
        "rate_limits": {action: "" for action in default_specs()},
        "max_stores_per_merchant": 1000, "max_live_offers_per_store": 1000, "max_offers_per_store_per_day": 1000,
    }


def as_env(fields: dict[str, Any]) -> dict[str, str]:
    """The same fields as ``SOLOMO_*`` variables, for a drill's server process."""
    return {f"SOLOMO_{name.upper()}": json.dumps(value) if isinstance(value, dict) else str(value)
            for name, value in fields.items()}


def stats(outcomes: list[Outcome]) -> dict[str, object]:
    statuses: dict[str, int] = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else "none"
        statuses[key] = statuses.get(key, 0) + 1
    return {"n": len(outcomes), "status": statuses, "max_s": round(max((o.seconds for o in outcomes), default=0), 2)}
