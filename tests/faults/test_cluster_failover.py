"""Drill (~40 s): a Redis Cluster master is SIGKILLed in the middle of a fan-out to 20,000 followers.

A fresh six-node cluster (three masters, three replicas, ``cluster-node-timeout`` 2 s) holds the data;
an in-process app on it (the session's MongoDB) takes the post — acknowledged 201 before the kill — and
serves the reads; a real ``celery worker -B`` process (data on the cluster, a broker database of its
own) fans the post out in small batches. When the first progress checkpoint is in MongoDB the master
that serves the home feeds of a few real readers is killed; its replica takes over its slots. The drill
asserts:

- while the slots move, the API answers those readers' ``GET /v1/feed/home`` with 200 or 503
  ``unavailable`` (never a 500, never a hang), and answers 200 again by itself (time printed);
- the fan-out survives — redis-py's own retries ride out the failover, or the task fails on a Redis
  error and Celery retries it (``autoretry_for``, backoff from 1 s), or beat's sweep re-sends the post;
  a new run resumes at its checkpoint (the path taken is printed) — and the post is marked done;
- the acknowledged post is in MongoDB, and every one of the 20,000 READY feeds holds it exactly once
  (each feed read whole: ``[MARKER, post]``), also through the API for the readers.

What the 503s answered (a refused connection, CLUSTERDOWN …) is printed; every cluster error class
is mapped in tests/faults/test_redis_client_errors.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass

import pytest
from bson import ObjectId

from solomo.core.keys import BUCKETS, home_key, online_key
from tests.faults.drill import error_code, report
from tests.faults.fanout_drill import (
    fanout_state,
    feed_faults,
    feeds,
    holders,
    seed_audience,
    worker_env,
)
from tests.support import Account, WorkerProcess, make_account, register, wait_until

FOLLOWERS = 20_000
CHUNK = 200  # followers per batch: 100 batches, so the kill lands mid-way
READERS = 3  # real accounts among the followers whose feeds live on the killed master
READER_AT = (150, 9_000, 19_990)  # their positions: before the first checkpoint, mid-way, last
BROKER_DB = 3
APP_SETTINGS = {"fanout_max_followers": FOLLOWERS * 10}  # pushed, not pulled (as the worker's)
REQUEST_S = 20.0  # a read that takes longer counts as a hang
RECOVER_S = 30.0
DONE_S = 60.0
pytestmark = pytest.mark.slow


@dataclass
class Read:
    reader: str
    started: float
    ended: float
    status: int | None  # None: no answer within REQUEST_S
    code: str | None


async def _read_loop(client, acct: Account, into: list[Read], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            resp = await asyncio.wait_for(client.get("/v1/feed/home?limit=20", headers=acct.headers), REQUEST_S)
        except TimeoutError:
            into.append(Read(acct.id, started, time.monotonic(), None, None))
            continue
        into.append(Read(acct.id, started, time.monotonic(), resp.status_code, error_code(resp)))
        await asyncio.sleep(0.05)


async def _readers_on_one_master(services, cluster) -> tuple[int, list[Account]]:
    """Real accounts whose home feeds live on one master (the one to kill), made until there are enough."""
    victim: int | None = None
    readers: list[Account] = []
    for _ in range(READERS * 10):  # each lands on that master with chance ~1/3
        acct = await make_account(services, "user")
        port = cluster.master_port_for_key(home_key(acct.id))
        victim = victim or port
        if port == victim:
            readers.append(acct)
            if len(readers) == READERS:
                return victim, readers
    raise AssertionError(f"only {len(readers)} of {READERS} readers landed on :{victim}")


async def test_master_killed_mid_fanout_loses_nothing(cluster_stack, tmp_path, caplog):
    st = cluster_stack
    services, client, cluster = st.services, st.client, st.cluster
    victim, readers = await _readers_on_one_master(services, cluster)
    buckets = sum(cluster.master_port_for_key(online_key(b)) == victim for b in range(BUCKETS))
    author = await register(client)
    followers = [ObjectId() for _ in range(FOLLOWERS)]
    for at, acct in zip(READER_AT, readers, strict=True):
        followers[at] = ObjectId(acct.id)
    audience = await seed_audience(services, ObjectId(author.id), followers)  # every feed READY (active)
    position = audience.position

    worker = WorkerProcess(worker_env(st.broker, chunk=CHUNK, max_followers=FOLLOWERS * 10, redis_url=cluster.url,
                                      cluster=True, SOLOMO_LOG_LEVEL="INFO"), tmp_path)  # INFO: its retries
    reads: list[Read] = []
    stop = asyncio.Event()
    loops = [asyncio.create_task(_read_loop(client, acct, reads, stop)) for acct in readers]
    try:
        caplog.set_level(logging.WARNING, logger="solomo.core.errors")
        worker.start()
        resp = await client.post("/v1/posts", json={"text": f"to twenty thousand {uuid.uuid4().hex[:6]}"},
                                 headers=author.headers)
        assert resp.status_code == 201, resp.text  # acknowledged before the kill
        member = resp.json()["id"]
        pid = ObjectId(member)

        async def under_way() -> bool:
            return bool((await fanout_state(services, pid)).get("fanout_progress"))

        await wait_until(under_way, timeout=60, interval=0.01)
        cluster.kill(victim)
        killed = time.monotonic()
        at_kill = await fanout_state(services, pid)
        assert at_kill["fanout"] == "pending", "the fan-out finished before the kill: nothing was proved"
        resume_at = position[at_kill["fanout_progress"]["user"]] + 1

        await asyncio.to_thread(cluster.wait_ok, 30.0)
        cluster_ok_s = time.monotonic() - killed

        async def recovered() -> bool:  # every reader has had a 200 to a read sent after the kill
            for loop in loops:
                if loop.done():
                    loop.result()  # a read raised (the app raised: a 500): fail now, with it
            return len({r.reader for r in reads if r.started >= killed and r.status == 200}) == READERS

        await wait_until(recovered, timeout=RECOVER_S, interval=0.1)

        async def done() -> bool:
            return (await fanout_state(services, pid))["fanout"] == "done"

        await wait_until(done, timeout=DONE_S, interval=0.2)
        done_s = time.monotonic() - killed
        await asyncio.sleep(2)  # a second run (a re-sent or re-delivered message) would show too
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        worker.stop()
    for loop in loops:
        assert loop.exception() is None, loop.exception()

    # the API: never a 500 or a hang; 503s are the contract's "unavailable"; it came back by itself
    statuses: dict[str, int] = {}
    for r in reads:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    bad = [r for r in reads if r.status not in (200, 503) or (r.status == 503 and r.code != "unavailable")]
    assert not bad, bad[:5]
    during = [r for r in reads if r.started < killed + cluster_ok_s and r.ended > killed]  # in flight then
    assert during, "no read ran while the slots moved"
    first_ok = {uid: min(r.ended for r in reads if r.reader == uid and r.started >= killed and r.status == 200)
                for uid in (a.id for a in readers)}
    recover_s = min(first_ok.values()) - killed
    slowest = max(r.ended - r.started for r in reads)

    # the acknowledged post survived, and the fan-out reached every reader once
    state = await fanout_state(services, pid)
    assert state["status"] == "published" and state["fanout"] == "done"
    got = await feeds(services.redis, followers)
    faults = feed_faults(got, member)
    assert not faults["missing"] and not faults["other"], (
        f"{len(faults['missing'])} feeds lack the post (first at {faults['missing'][:10]}), "
        f"{len(faults['other'])} hold something else")
    assert await holders(services.redis, followers, member) == FOLLOWERS
    for acct in readers:
        resp = await client.get("/v1/feed/home?limit=50", headers=acct.headers)
        assert resp.status_code == 200, resp.text
        assert [p["id"] for p in resp.json()["items"]].count(member) == 1

    log = worker.log.read_text(errors="replace")
    retried = len(re.findall(r"Task fanout\.post\[[0-9a-f-]+\] retry:", log))
    failed = log.count("raised unexpected")
    if retried:
        path = f"the task met the failover and Celery retried it {retried}x (resumed at its checkpoint)"
    elif state.get("fanout_swept_at"):
        path = f"the task failed ({failed}x) and beat's sweep re-sent the post (resumed at its checkpoint)"
    else:
        path = "redis-py's retries rode out the failover; the task went on"
    reasons: dict[str, int] = {}
    for rec in caplog.records:
        if rec.name == "solomo.core.errors":
            why = rec.getMessage().split(": ", 1)[-1][:40]
            reasons[why] = reasons.get(why, 0) + 1
    report(f"cluster failover drill: killed master :{victim} (serving {buckets} of {BUCKETS} reader buckets) "
          f"at follower {resume_at} of {FOLLOWERS}; cluster ok after {cluster_ok_s:.1f}s; API reads {statuses}, "
          f"503 for {reasons}, first 200 after the kill in {recover_s:.2f}s "
          f"(every reader by {max(first_ok.values()) - killed:.2f}s), "
          f"slowest read {slowest:.2f}s, {len(during)} reads while the slots moved; fan-out done "
          f"{done_s:.1f}s after the kill; {path}; losses 0, duplicates 0 over {FOLLOWERS} feeds")
