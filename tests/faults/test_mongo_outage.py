"""Drill: MongoDB dies (SIGKILL) for ten seconds under load and comes back on the same port and data.

A separate mongod + redis-server pair and a separate uvicorn process serve this drill, so the
session's shared servers are untouched. Client tasks keep registering, logging in and reading
``/v1/me`` over real HTTP throughout. The drill asserts:

- during the outage every answer is 503 ``unavailable`` (never a 500) and comes back within a few
  seconds (the driver's server-selection timeout), never a hang;
- after mongod is back the same API process recovers by itself, with no restart;
- no acknowledged write is lost: every account that got a 201 can log in afterwards, and a refused
  registration left no half-made account behind.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from solomo.embedded import EmbeddedServers, free_port
from tests.support import LiveServer, seconds_until

OUTAGE_S = float(os.environ.get("SOLOMO_DRILL_OUTAGE_S", "10"))
CLIENTS = 4
MAX_ANSWER_S = 6.0  # serverSelectionTimeoutMS (3 s) plus slack for a loaded 2-core machine
RECOVERY_S = 30.0
PASSWORD = "password123"


@dataclass
class Outcome:
    phase: str
    op: str
    status: int | None  # None: no HTTP answer (timeout / connection error)
    code: str | None
    started: float
    ended: float
    error: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Drill:
    phase: str = "before"
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    unacknowledged: list[str] = field(default_factory=list)
    stop: bool = False


@dataclass
class Stack:
    servers: EmbeddedServers
    api: LiveServer


@pytest.fixture
def stack() -> Iterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix="solomo-drill-"))
    servers = EmbeddedServers(tmp, free_port(), free_port(), persistent=True)
    api: LiveServer | None = None
    try:
        servers.start()
        assert servers.mongo and servers.redis
        api = LiveServer(free_port(), extra_env={
            "SOLOMO_MONGO_URL": servers.mongo.url, "SOLOMO_REDIS_URL": servers.redis.url,
            "SOLOMO_BROKER_URL": servers.redis.url.rpartition("/")[0] + "/1",
            "SOLOMO_MONGO_DB": "solomo_drill", "SOLOMO_DATA_DIR": str(tmp), "SOLOMO_LOG_LEVEL": "WARNING",
            # the drill's clients all come from 127.0.0.1 at thousands of requests a minute: no per-address limits
            "SOLOMO_RATE_LIMITS": '{"register": "", "login_ip": ""}',
        })
        api.start()
        yield Stack(servers, api)
    finally:
        if api is not None:
            api.stop()
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def _call(drill: Drill, http: httpx2.AsyncClient, op: str, method: str, url: str, **kw) -> httpx2.Response | None:
    phase = drill.phase
    start = time.monotonic()
    try:
        resp = await http.request(method, url, **kw)
    except httpx2.HTTPError as exc:
        drill.outcomes.append(Outcome(phase, op, None, None, start, time.monotonic(), repr(exc)))
        return None
    code = None
    if resp.status_code >= 400:
        try:
            code = resp.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "<not the error body>"
    drill.outcomes.append(Outcome(phase, op, resp.status_code, code, start, time.monotonic()))
    return resp


async def _client(drill: Drill, base_url: str) -> None:
    async with httpx2.AsyncClient(base_url=base_url, timeout=15.0) as http:
        while not drill.stop:
            name = f"d_{uuid.uuid4().hex[:12]}"
            resp = await _call(drill, http, "register", "POST", "/v1/auth/register",
                               json={"username": name, "password": PASSWORD})
            if resp is None or resp.status_code != 201:
                drill.unacknowledged.append(name)
                await asyncio.sleep(0.1)
                continue
            drill.acknowledged.append(name)
            resp = await _call(drill, http, "login", "POST", "/v1/auth/login",
                               json={"username": name, "password": PASSWORD})
            if resp is not None and resp.status_code == 200:
                token = resp.json()["token"]
                await _call(drill, http, "me", "GET", "/v1/me", headers={"Authorization": f"Bearer {token}"})
            await asyncio.sleep(0.02)


async def _ready(base_url: str) -> int:
    async with httpx2.AsyncClient(base_url=base_url, timeout=10.0) as http:
        return (await http.get("/readyz")).status_code


async def test_mongo_outage_answers_503_and_recovers(stack: Stack):
    drill = Drill()
    base = stack.api.base_url
    mongo = stack.servers.mongo
    assert mongo is not None
    tasks = [asyncio.create_task(_client(drill, base)) for _ in range(CLIENTS)]
    try:
        await asyncio.sleep(3)
        drill.phase = "outage"
        kill_at = time.monotonic()
        assert mongo.proc.process is not None
        mongo.proc.process.kill()  # SIGKILL: no clean shutdown, the journal must carry acknowledged writes
        await asyncio.to_thread(mongo.proc.process.wait, 10)
        await asyncio.sleep(OUTAGE_S / 2)
        ready_during = await _ready(base)
        await asyncio.sleep(OUTAGE_S / 2)
        drill.phase = "restarting"
        restart_began = time.monotonic()
        await asyncio.to_thread(mongo.start, 90.0)  # same port, same data directory; returns once primary
        primary_after = time.monotonic() - restart_began
        drill.phase = "after"
        seen = len(drill.outcomes)
        recovered_after = await seconds_until(
            lambda: any(o.phase == "after" and o.op == "me" and o.status == 200 for o in drill.outcomes[seen:]),
            RECOVERY_S)
        assert recovered_after is not None, "the API did not recover by itself"
        steady_from = time.monotonic()
        await asyncio.sleep(3)
    finally:
        drill.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        assert task.exception() is None, task.exception()

    assert stack.api.process is not None and stack.api.process.poll() is None, "the API process died"
    by_phase: dict[str, list[Outcome]] = {}
    for o in drill.outcomes:
        by_phase.setdefault(o.phase, []).append(o)
    summary = {p: _stats(os_) for p, os_ in by_phase.items()}
    print(f"\nmongo outage drill: {summary}; readyz during outage {ready_during}; "
          f"primary {primary_after:.1f}s after restart; API recovered {recovered_after:.2f}s after that; "
          f"{len(drill.acknowledged)} registrations acknowledged, {len(drill.unacknowledged)} refused")

    assert not [o for o in drill.outcomes if o.status is not None and o.status >= 500 and o.status != 503]
    assert not [o for o in drill.outcomes if o.status is None], "a request got no answer"
    assert not [o for o in drill.outcomes if o.code == "<not the error body>"]
    assert all(o.status is not None and o.status < 400 for o in drill.outcomes if o.ended < kill_at), summary
    outage = [o for o in drill.outcomes if kill_at <= o.started < restart_began]
    assert len(outage) >= CLIENTS, "clients kept calling during the outage"
    # requests already past MongoDB when it died may still succeed; everything else is a quick 503
    failed = [o for o in outage if o.status is not None and o.status >= 400]
    assert failed and all(o.status == 503 and o.code == "unavailable" for o in failed), summary
    assert max(o.seconds for o in outage) <= MAX_ANSWER_S, summary
    assert ready_during == 503
    steady = [o for o in drill.outcomes if o.started >= steady_from]
    assert steady and all(o.status is not None and o.status < 400 for o in steady), summary
    assert await _ready(base) == 200

    # no acknowledged write lost
    async with httpx2.AsyncClient(base_url=base, timeout=15.0) as http:
        for name in drill.acknowledged:
            resp = await http.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
            assert resp.status_code == 200, (name, resp.text)
        # a refused registration left nothing half-made: the name is free, or (when mongod died between
        # the account's write and the answer) the account exists whole and its password works
        written_anyway = 0
        for name in drill.unacknowledged:
            resp = await http.post("/v1/auth/register", json={"username": name, "password": PASSWORD})
            if resp.status_code == 409:
                written_anyway += 1
                resp = await http.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
                assert resp.status_code == 200, (name, resp.text)
            else:
                assert resp.status_code == 201, (name, resp.text)
        print(f"refused registrations that had been written anyway: {written_anyway}")


def _stats(outcomes: list[Outcome]) -> dict[str, object]:
    statuses: dict[str, int] = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else "none"
        statuses[key] = statuses.get(key, 0) + 1
    return {"n": len(outcomes), "status": statuses, "max_s": round(max((o.seconds for o in outcomes), default=0), 2)}
