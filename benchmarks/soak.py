"""``python -m benchmarks.soak [--seconds 60] [--clients 2000] [--rate 25]``: a bounded soak test.

Real processes: embedded mongod + redis-server, one uvicorn API process, one Celery worker. The
load, from this process:

* ``--clients`` WebSocket clients stay connected and move around a 3 km area: each sends a
  ``location`` message every ``--move-every`` seconds (jittered), which also runs the offers'
  arrival listener on the server;
* HTTP actions at a steady mix, ``--rate`` a second (open loop: started on a fixed schedule
  whether or not earlier ones have answered) — check-ins, posts (topics, mentions, locations),
  likes, comments, home and local feed reads — plus a merchant's offer every ``--offer-every``
  seconds;
* a small share of the clients (``--resume-share``) drop their socket once and come back with
  ``last_event_id``.

Before the load every client sends a first location, paced at ~400 a second (``--burst``: all at
once — which, at 2,000 clients, exhausts the API's Redis connection pool; see docs/benchmarks.md).

Set-up (bulk, not part of the load): users with tokens, merchants and their stores, each user
following 8 users and 2 stores. The load starts once every client is online.

What is checked at the end (exit status 1 if any fails):

* **zero 5xx**: every HTTP answer is counted per route;
* **zero lost events, counted against what each client expected** (not against the server's own
  records): after the load stops, the queues drain and the posts' fan-outs finish, every client
  re-sends its last position, and then

  - every post acknowledged as published (201) during the load whose author the client follows
    must have reached it as a ``feed.new`` event — for the clients that stayed connected and for
    those that dropped and resumed with ``last_event_id``. ``feed.new`` goes to the followers
    online when the fan-out runs, so for a resumed client a post whose fan-out (from its
    ``created_at`` to its ``fanout_done_at`` in MongoDB) overlapped the time it was away, or ended
    within a second before it left (still in flight on the dropped socket), is not expected;
  - every live offer (201) from a store the client follows whose radius (less 25 m) holds the
    client's last position must have reached it as an ``offer`` event (targeting, or the arrival
    path when that position is re-sent);

  no client may get the same event id, the same post's ``feed.new`` or the same offer twice;
* the server's own history streams (``keys.event_history``) are compared too: every event recorded there
  after the load started must have reached the client;
* the API process's memory (RSS) at the start of the load, at the end and its peak, sampled
  every few seconds — it must not grow without bound (reported; the run fails only on a
  doubling, which no steady state explains);
* the API's event loop: its longest stall during the load (the gauge
  ``solomo_event_loop_max_stall_seconds`` — the longest of the last 10 s — read from ``/metrics``
  every 2 s) and the p99 of its lag (``solomo_event_loop_lag_seconds``, the histogram's change over
  the load; a bucket bound). This process's own loop (2,000 sockets' worth of clients) is
  measured the same way, so a slow client is not mistaken for a slow server (reported, not
  checked).

Latency p50/p99 per route are printed beside the counts, with the p99 the API measured itself
(a bound from its duration histogram: what the server did, without this process's queueing); when
the slow requests happened (those over 100 ms counted per second of the load, and the slowest with
their start: clustered seconds point at a stall that hit every route at once); and the data Redis's
slow log of the load (commands over 10 ms). Everything is written as JSON to
``benchmarks/results-soak.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bson import ObjectId
from pymongo import UpdateOne

from benchmarks.common import (
    ROOT,
    BenchEnv,
    cpu_seconds,
    cpu_stat,
    host_probe_ms,
    machine,
    percentile,
    steal_percent,
)
from benchmarks.seed import bulk_users, point_near, random_center
from solomo.core.keys import event_history
from solomo.core.timeutil import ms_of

RESULTS = ROOT / "benchmarks" / "results-soak.json"
AREA_M = 3000
STORES = 40
MERCHANTS = 8
FOLLOWS_USERS = 8
FOLLOWS_STORES = 2
CONNECT_PARALLEL = 100
MIX: dict[str, float] = {
    "checkin": 0.08, "post": 0.2, "like": 0.2, "comment": 0.1, "home": 0.25, "local": 0.17,
}
DRAIN_TIMEOUT_S = 30.0
OFFER_RADIUS_M = 1500
RADIUS_MARGIN_M = 25.0
IN_FLIGHT_S = 1.0
"""A resumed client may have lost, with its dropped socket, what was fanned out this long before."""
"""An offer is expected only well inside its radius: the server measures with its own formula."""


# --------------------------------------------------------------------------------------------
# bookkeeping


@dataclass
class RouteStats:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    """``time.perf_counter()`` at each answered request's start (beside its latency: the timeline)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Transport failures (no HTTP answer at all)."""
    failures: list[str] = field(default_factory=list)
    """The first few 5xx bodies, for the report."""


@dataclass
class Client:
    index: int
    uid: str
    token: str
    lat: float
    lng: float
    ws: Any = None
    received: list[str] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    resumed: bool = False
    closed_by_server: int | None = None
    """Close code when the server (not this script) ended the socket."""
    follows_users: set[str] = field(default_factory=set)
    follows_stores: set[str] = field(default_factory=set)
    feed_posts: Counter[str] = field(default_factory=Counter)
    """``feed.new`` events received, by post id."""
    offers: Counter[str] = field(default_factory=Counter)
    """``offer`` events received, by offer id."""
    away: tuple[float, float] | None = None
    """Epoch seconds when a resumed client dropped its socket and when it was back."""
    resumed_blind: bool = False
    """It had received nothing when it dropped, so it resumed without ``last_event_id``."""

    @property
    def last_id(self) -> str | None:
        return self.received[-1] if self.received else None


@dataclass
class World:
    lat: float
    lng: float
    clients: list[Client]
    merchants: list[tuple[str, str]]
    """(token, store id) of each store, by owner."""
    stores: list[dict[str, Any]]
    post_ids: list[str] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)
    """(author uid, post id) of every post acknowledged as published."""
    fanout_windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Post id → epoch seconds of its creation and of the end of its fan-out (read after the drain)."""
    live_offers: list[tuple[str, str, float, float, float]] = field(default_factory=list)
    """(offer id, store id, lat, lng, radius m) of every offer acknowledged as live."""
    checked_in: set[int] = field(default_factory=set)
    routes: dict[str, RouteStats] = field(default_factory=lambda: defaultdict(RouteStats))
    server_p99_ms: dict[str, float] = field(default_factory=dict)
    """Per route, the p99 bound of the API's own duration histogram over the load."""
    load_started: float = 0.0
    offers: int = 0


# --------------------------------------------------------------------------------------------
# set-up


async def seed(services: Any, n_clients: int, rng: random.Random) -> World:
    from checkins.stores import create_store

    lat0, lng0 = random_center(rng)
    users = await bulk_users(services, n_clients)
    merchants = await bulk_users(services, MERCHANTS, role="merchant")
    stores, owners = [], []
    for i in range(STORES):
        owner, token = merchants[i % MERCHANTS]
        lat, lng = point_near(rng, lat0, lng0, AREA_M)
        stores.append(await create_store(services, owner, name=f"Soak shop {i}", lat=lat, lng=lng, category="cafe"))
        owners.append((token, str(stores[-1]["_id"])))
    now = datetime.now(UTC)
    follows, followers, following = [], Counter(), Counter()
    ids = [uid for uid, _ in users]
    for uid in ids:
        targets = [("user", t) for t in rng.sample(ids, FOLLOWS_USERS + 1) if t != uid][:FOLLOWS_USERS]
        targets += [("store", s["_id"]) for s in rng.sample(stores, FOLLOWS_STORES)]
        for kind, target in targets:
            follows.append({"_id": ObjectId(), "follower_id": uid, "target_type": kind, "target_id": target,
                            "created_at": now, "created_ms": ms_of(now)})
            followers[(kind, target)] += 1
            following[uid] += kind == "user"
    for start in range(0, len(follows), 10_000):
        await services.db.follows.insert_many(follows[start:start + 10_000], ordered=False)
    await services.db.users.bulk_write(
        [UpdateOne({"_id": t}, {"$set": {"followers_count": c}}) for (k, t), c in followers.items() if k == "user"]
        + [UpdateOne({"_id": u}, {"$set": {"following_count": c}}) for u, c in following.items()], ordered=False)
    await services.db.stores.bulk_write(
        [UpdateOne({"_id": t}, {"$set": {"followers_count": c}}) for (k, t), c in followers.items() if k == "store"],
        ordered=False)
    clients = [Client(i, str(uid), token, *point_near(rng, lat0, lng0, AREA_M))
               for i, (uid, token) in enumerate(users)]
    by_uid = {c.uid: c for c in clients}
    for f in follows:
        client = by_uid[str(f["follower_id"])]
        (client.follows_users if f["target_type"] == "user" else client.follows_stores).add(str(f["target_id"]))
    return World(lat0, lng0, clients, owners, stores)


# --------------------------------------------------------------------------------------------
# sockets


async def connect(base_ws: str, client: Client, last_event_id: str | None = None) -> None:
    from websockets.asyncio.client import connect as ws_connect

    url = f"{base_ws}/v1/ws?token={client.token}"
    if last_event_id:
        url += f"&last_event_id={last_event_id}"
    client.ws = await ws_connect(url, proxy=None, compression=None, open_timeout=60, ping_interval=None,
                                 max_queue=1024)


async def listen(client: Client, ws: Any) -> None:
    """Records every event frame (those with an id) until this socket closes."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for frame in ws:
            if frame.startswith('{"id"'):
                msg = orjson.loads(frame)
                client.received.append(msg["id"])
                client.types[msg["type"]] += 1
                if msg["type"] == "feed.new":
                    client.feed_posts[msg["data"]["post_id"]] += 1
                elif msg["type"] == "offer":
                    client.offers[msg["data"]["id"]] += 1
    except ConnectionClosed:
        pass
    if ws is client.ws and ws.close_code is not None and not getattr(ws, "_soak_dropped", False):
        client.closed_by_server = ws.close_code


async def send_location(client: Client, rng: random.Random, world: World) -> None:
    """A step of 50–300 m in a random direction, kept inside the area."""
    lat, lng = point_near(rng, client.lat, client.lng, rng.uniform(50, 300))
    if _distance_m(lat, lng, world.lat, world.lng) > AREA_M:
        lat, lng = point_near(rng, world.lat, world.lng, AREA_M)
    client.lat, client.lng = lat, lng
    await send_position(client)


async def send_position(client: Client) -> None:
    with contextlib.suppress(Exception):
        await client.ws.send(orjson.dumps({"type": "location", "lat": client.lat, "lng": client.lng}).decode())


def _distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    from geopy.distance import great_circle

    return great_circle((lat1, lng1), (lat2, lng2)).meters


async def mover(client: Client, rng: random.Random, world: World, every: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), rng.uniform(0, every))
    while not stop.is_set():
        await send_location(client, rng, world)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every * rng.uniform(0.75, 1.25))


async def drop_and_resume(base_ws: str, client: Client, listeners: list[asyncio.Task[None]]) -> None:
    """Closes the socket abruptly, stays away a moment, comes back with ``last_event_id``."""
    old = client.ws
    old._soak_dropped = True
    old.transport.abort()
    left = time.time()
    client.resumed_blind = client.last_id is None
    await asyncio.sleep(1.0)
    await connect(base_ws, client, client.last_id)
    client.resumed = True
    client.away = (left, time.time())
    listeners.append(asyncio.create_task(listen(client, client.ws)))


# --------------------------------------------------------------------------------------------
# HTTP actions


async def call(world: World, http: Any, route: str, method: str, path: str, token: str,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    stats = world.routes[route]
    t0 = time.perf_counter()
    try:
        resp = await http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    except Exception as exc:
        stats.errors[type(exc).__name__] += 1
        return 0, None
    stats.latencies_ms.append((time.perf_counter() - t0) * 1000)
    stats.started.append(t0)
    stats.statuses[resp.status_code] += 1
    if resp.status_code >= 500 and len(stats.failures) < 3:
        stats.failures.append(resp.text[:300])
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, None


async def action(kind: str, world: World, http: Any, rng: random.Random) -> None:
    client = rng.choice(world.clients)
    if kind == "checkin":
        fresh = [c for c in rng.sample(world.clients, min(20, len(world.clients))) if c.index not in world.checked_in]
        if not fresh:
            kind = "home"
        else:
            client = fresh[0]
            world.checked_in.add(client.index)  # once per user: no "too soon", no impossible travel
            store = rng.choice(world.stores)
            slng, slat = store["location"]["coordinates"]
            lat, lng = point_near(rng, slat, slng, 30)
            status, body = await call(world, http, "POST /v1/checkins", "POST", "/v1/checkins", client.token,
                                      {"store_id": str(store["_id"]), "lat": lat, "lng": lng, "accuracy_m": 10})
            if status == 201 and body:
                world.post_ids.append(body["post"]["id"])
                if body["post"].get("status") == "published":
                    world.published.append((client.uid, body["post"]["id"]))
            return
    if kind in ("like", "comment") and not world.post_ids:
        kind = "post"
    if kind == "post":
        other = rng.choice(world.clients)
        text = f"soak {rng.randrange(10**6)} #soak{rng.randrange(8)} #附近{rng.randrange(4)}#"
        if rng.random() < 0.3:
            text += f" hello @{await _username(world, http, other)}" if other.index != client.index else ""
        body: dict[str, Any] = {"text": text}
        if rng.random() < 0.6:
            body.update(lat=client.lat, lng=client.lng)
        status, answer = await call(world, http, "POST /v1/posts", "POST", "/v1/posts", client.token, body)
        if status == 201 and answer:
            world.post_ids.append(answer["id"])
            if answer.get("status") == "published":
                world.published.append((client.uid, answer["id"]))
    elif kind == "like":
        pid = rng.choice(world.post_ids[-200:])
        await call(world, http, "POST /v1/posts/{id}/like", "POST", f"/v1/posts/{pid}/like", client.token)
    elif kind == "comment":
        pid = rng.choice(world.post_ids[-200:])
        await call(world, http, "POST /v1/posts/{id}/comments", "POST", f"/v1/posts/{pid}/comments", client.token,
                   {"text": f"nice {rng.randrange(1000)}"})
    elif kind == "home":
        await call(world, http, "GET /v1/feed/home", "GET", "/v1/feed/home?limit=20", client.token)
    elif kind == "local":
        await call(world, http, "GET /v1/feed/local", "GET",
                   f"/v1/feed/local?lat={client.lat:.6f}&lng={client.lng:.6f}&radius_m=2000&limit=20", client.token)


_USERNAMES: dict[str, str] = {}


async def _username(world: World, http: Any, client: Client) -> str:
    if client.uid not in _USERNAMES:
        _, body = await call(world, http, "GET /v1/users/{id}", "GET", f"/v1/users/{client.uid}", client.token)
        _USERNAMES[client.uid] = (body or {}).get("username", "nobody")
    return _USERNAMES[client.uid]


async def post_offer(world: World, http: Any, rng: random.Random) -> None:
    token, store_id = rng.choice(world.merchants)
    status, body = await call(world, http, "POST /v1/stores/{id}/offers", "POST", f"/v1/stores/{store_id}/offers",
                              token, {"title": f"Soak deal {rng.randrange(1000)}", "radius_m": OFFER_RADIUS_M,
                                      "stock": 50,
                                      "expires_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat()})
    world.offers += status == 201
    if status == 201 and body and body.get("status", "live") == "live":  # no status: live (older shape)
        store = next(s for s in world.stores if str(s["_id"]) == store_id)
        lng, lat = store["location"]["coordinates"]
        world.live_offers.append((body["id"], store_id, lat, lng, float(body["radius_m"])))


async def open_loop(rate: float, seconds: float, fire: Any, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Starts ``fire()`` ``rate`` times a second on a fixed schedule for ``seconds``; returns the tasks."""
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = 0
    while not stop.is_set():
        due = start + n / rate
        if due - start >= seconds:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(fire()))
        n += 1
    return tasks


# --------------------------------------------------------------------------------------------
# checks


async def drain(env: BenchEnv, services: Any, since: datetime) -> float:
    """Waits until the broker queues are empty and every post written since ``since`` is fanned out."""
    from redis.asyncio import Redis

    broker = Redis.from_url(env.settings().effective_broker_url, decode_responses=True)
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < DRAIN_TIMEOUT_S:
            queued = sum([await broker.llen(q) for q in ("fanout", "maintenance")])
            pending = await services.db.posts.count_documents({"created_at": {"$gte": since}, "fanout": "pending"})
            if not queued and not pending:
                break
            await asyncio.sleep(0.25)
    finally:
        await broker.aclose()
    return time.perf_counter() - t0


async def recorded_events(services: Any, clients: list[Client], since_ms: int) -> dict[str, list[str]]:
    """Event ids in each user's history stream recorded after ``since_ms``."""
    out: dict[str, list[str]] = {}
    for start in range(0, len(clients), 500):
        chunk = clients[start:start + 500]
        async with services.redis.pipeline(transaction=False) as pipe:
            for c in chunk:
                pipe.xrange(event_history(c.uid), min=f"{since_ms}-0", max="+")
            rows = await pipe.execute()
        for c, entries in zip(chunk, rows, strict=True):
            out[c.uid] = [eid for eid, _ in entries]
    return out


def compare_expected(clients: list[Client], world: World) -> dict[str, Any]:
    """Lost = what a client expected (see the module docstring) and did not get; duplicates = the
    same post's ``feed.new`` or the same offer received more than once."""
    groups = ("stayed", "resumed")
    required = {t: dict.fromkeys(groups, 0) for t in ("feed.new", "offer")}
    lost = {t: dict.fromkeys(groups, 0) for t in ("feed.new", "offer")}
    duplicates = 0
    examples: list[str] = []
    for c in clients:
        if c.closed_by_server is not None:
            continue
        group = "resumed" if c.resumed else "stayed"
        duplicates += sum(n - 1 for got in (c.feed_posts, c.offers) for n in got.values() if n > 1)
        want_posts = [pid for author, pid in world.published if author in c.follows_users
                      and not _fanned_out_while_away(world.fanout_windows.get(pid), c.away)]
        want_offers = [oid for oid, store, lat, lng, radius in world.live_offers if store in c.follows_stores
                       and _distance_m(c.lat, c.lng, lat, lng) <= radius - RADIUS_MARGIN_M]
        for kind, want, got in (("feed.new", want_posts, c.feed_posts), ("offer", want_offers, c.offers)):
            missing = [x for x in want if x not in got]
            required[kind][group] += len(want)
            lost[kind][group] += len(missing)
            if missing and len(examples) < 5:
                examples.append(f"{c.uid} {kind}: {missing[:3]}")
    return {"required": required, "lost": lost, "duplicates": duplicates, "examples": examples}


def _fanned_out_while_away(window: tuple[float, float] | None, away: tuple[float, float] | None) -> bool:
    if away is None:
        return False
    if window is None:  # fan-out never finished: expected (and lost) unless the client was away
        return False
    start, end = window
    return start <= away[1] and end >= away[0] - IN_FLIGHT_S


async def fanout_windows(services: Any, post_ids: list[str]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    ids = [ObjectId(p) for p in post_ids]
    async for doc in services.db.posts.find({"_id": {"$in": ids}}, {"created_at": 1, "fanout_done_at": 1}):
        if doc.get("fanout_done_at") is not None:
            out[str(doc["_id"])] = (_epoch(doc["created_at"]), _epoch(doc["fanout_done_at"]))
    return out


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def compare_history(clients: list[Client], recorded: dict[str, list[str]]) -> dict[str, Any]:
    """Against the server's own history streams: recorded for a client after the load started, not received.

    A client that dropped before receiving anything resumed without ``last_event_id``, so nothing
    recorded before it was back can be replayed to it: those entries are not required.
    """
    lost: dict[str, int] = {"stayed": 0, "resumed": 0}
    required: dict[str, int] = {"stayed": 0, "resumed": 0}
    duplicates = 0
    examples: list[str] = []
    for c in clients:
        if c.closed_by_server is not None:
            continue
        group = "resumed" if c.resumed else "stayed"
        got = set(c.received)
        duplicates += len(c.received) - len(got)
        want = recorded.get(c.uid, [])
        if c.resumed_blind and c.away:
            back_ms = int(c.away[1] * 1000)
            want = [e for e in want if int(e.split("-")[0]) >= back_ms]
        missing = [e for e in want if e not in got]
        required[group] += len(want)
        lost[group] += len(missing)
        if missing and len(examples) < 5:
            examples.append(f"{c.uid}: {missing[:3]}")
    return {"required": required, "lost": lost, "duplicates": duplicates, "examples": examples}


def rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


async def sample_memory(pid: int, samples: list[tuple[float, int]], stop: asyncio.Event, every: float = 2.0) -> None:
    t0 = time.perf_counter()
    while not stop.is_set():
        with contextlib.suppress(Exception):
            samples.append((round(time.perf_counter() - t0, 1), rss(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


# --------------------------------------------------------------------------------------------
# the run


METRICS_TOKEN = "soak-metrics"
STALL_GAUGE = "solomo_event_loop_max_stall_seconds"
LAG_HISTOGRAM = "solomo_event_loop_lag_seconds"
GC_HISTOGRAM = "solomo_gc_cpu_seconds"


def gc_totals(text: str) -> dict[str, tuple[float, float]]:
    """Per generation: (collections, seconds spent in them) so far."""
    counts = metric_samples(text, GC_HISTOGRAM + "_count")
    sums = metric_samples(text, GC_HISTOGRAM + "_sum")
    return {head.split('"')[1]: (counts[head], sums.get(head, 0.0)) for head in counts}


def metric_samples(text: str, name: str) -> dict[str, float]:
    """``{labels-or-empty: value}`` of one metric's samples in Prometheus text format."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            out[head[len(name):]] = float(value)
    return out


async def scrape(http: Any) -> str:
    """The API's metrics text; empty when it did not answer (the report then lacks those figures,
    the run goes on)."""
    try:
        resp = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        resp.raise_for_status()
    except Exception as exc:
        log(f"could not read the API's metrics: {type(exc).__name__}")
        return ""
    return str(resp.text)


_STACK_HEADER = re.compile(r"^\s+\d+/\d+ samples:$")


def traced_stalls(log_bytes: bytes, since: datetime | None = None, until: datetime | None = None,
                  top: int = 5) -> dict[str, Any]:
    """The stalls the API's tracer logged (:mod:`solomo.core.stalltrace`; JSON log lines of logger
    ``solomo.stalls``) between ``since`` and ``until``: how many, the longest, and the innermost
    frames of their most sampled stacks, counted over the stalls (the frame most often found
    holding the loop first), and the longest one's whole report."""
    held: list[float] = []
    frames: Counter[str] = Counter()
    longest = ""
    for line in log_bytes.decode("utf-8", "replace").splitlines():
        if '"solomo.stalls"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = str(entry.get("msg", ""))
        found = re.search(r"held for about (\d+) ms", message)
        if entry.get("logger") != "solomo.stalls" or found is None:
            continue
        at = datetime.fromisoformat(str(entry.get("ts", "")).replace("Z", "+00:00")) if entry.get("ts") else None
        if at is not None and ((since is not None and at < since) or (until is not None and at > until)):
            continue
        if not held or float(found.group(1)) > max(held):
            longest = message
        held.append(float(found.group(1)))
        first_stack: list[str] = []
        for ln in message.splitlines()[1:]:  # "  n/m samples:" then its frames, innermost last
            if _STACK_HEADER.match(ln):
                if first_stack:
                    break
                continue
            first_stack.append(ln.strip())
        frames[first_stack[-1] if first_stack else "(no sample: the loop thread never let the lock go)"] += 1
    return {"count": len(held), "longest_ms": max(held, default=0.0),
            "innermost_frames": [{"frame": f, "stalls": n} for f, n in frames.most_common(top)],
            "longest": longest}


def lag_buckets(text: str) -> dict[float, float]:
    """Cumulative counts of the lag histogram by upper bound."""
    out = {}
    for head, value in metric_samples(text, LAG_HISTOGRAM + "_bucket").items():
        bound = head.split('le="', 1)[1].split('"', 1)[0]
        out[math.inf if bound == "+Inf" else float(bound)] = value
    return out


SLOWLOG_US = 10_000
"""The data Redis logs commands slower than this (µs) during the load (its default, set explicitly)."""


def _text(value: Any) -> str:
    """A slow-log command line as text, whichever way the client decodes replies."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


HTTP_HISTOGRAM = "solomo_http_request_duration_seconds"


def http_buckets(text: str) -> dict[str, dict[float, float]]:
    """Per ``METHOD /route``: cumulative counts of the API's own request-duration histogram by bound."""
    out: dict[str, dict[float, float]] = defaultdict(dict)
    for head, value in metric_samples(text, HTTP_HISTOGRAM + "_bucket").items():
        labels = dict(part.split("=", 1) for part in head.strip("{}").split(","))
        # this script names every path parameter {id}; the API names them as its routes do ({post_id})
        template = re.sub(r"\{[^}]*\}", "{id}", labels["route"].strip('"'))
        route = f"{labels['method'].strip(chr(34))} {template}"
        bound = labels["le"].strip('"')
        out[route][math.inf if bound == "+Inf" else float(bound)] = value
    return out


def server_p99_ms(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> dict[str, float]:
    """Per route, the bucket bound (ms) under which 99 % of the load's requests were served, as the API
    measured them (from its first byte read to its last byte written): the client's queueing and its own
    event loop are not in it."""
    return {route: round(lag_p99(before.get(route, {}), buckets)[0] * 1000, 1) for route, buckets in after.items()}


def lag_p99(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """(the bucket bound under which 99 % of the ticks' lags fell during the load, the ticks)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if total and cumulative >= 0.99 * total:
            return bound, int(total)
    return math.inf, int(total)


async def sample_stalls(http: Any, stalls: list[float], stop: asyncio.Event, every: float = 2.0) -> None:
    """The API's longest recent stall, every ``every`` s (the gauge's window is longer)."""
    while not stop.is_set():
        text = await scrape(http)
        if text:
            stalls.append(metric_samples(text, STALL_GAUGE).get("", 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def own_loop_stalls(stalls: list[float], stop: asyncio.Event, tick: float = 0.05) -> None:
    """This process's loop: how late each tick wakes up (the clients' side of a slow answer)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + tick
        await asyncio.sleep(tick)
        stalls.append(max(0.0, loop.time() - due))


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    import httpx2

    rng = random.Random(args.seed)
    async with BenchEnv(keep_dir=args.keep) as env:
        if args.keep:
            log(f"logs and data kept in {env.tmp}")
        env.environ["SOLOMO_METRICS_TOKEN"] = METRICS_TOKEN  # the stall gauge is read from /metrics
        env.environ["SOLOMO_STALL_TRACE_MS"] = str(args.stall_trace_ms)  # what held the loop: in its log
        api = await env.api()
        worker = await env.worker()
        services = await env.services()
        log(f"seeding {args.clients:,} users, {STORES} stores …")
        world = await seed(services, args.clients, rng)
        base_ws = api.base_url.replace("http://", "ws://")
        sem = asyncio.Semaphore(CONNECT_PARALLEL)

        async def open_one(c: Client) -> None:
            async with sem:
                await connect(base_ws, c)

        log(f"connecting {args.clients:,} sockets …")
        t0 = time.perf_counter()
        await asyncio.gather(*(open_one(c) for c in world.clients))
        connect_s = time.perf_counter() - t0
        listeners = [asyncio.create_task(listen(c, c.ws)) for c in world.clients]
        for i, c in enumerate(world.clients):  # a first position for everyone, ~400 a second
            await send_location(c, rng, world)
            if i % 200 == 199 and not args.burst:
                await asyncio.sleep(0.5)
        from solomo.core.presence import is_online

        deadline = time.monotonic() + 60
        uids = [c.uid for c in world.clients]
        while not all(await is_online(services.redis, uids)):
            if time.monotonic() > deadline:
                raise RuntimeError("the clients did not all come online")
            await asyncio.sleep(0.2)

        since_ms = int((await services.redis.time())[0]) * 1000
        # the data Redis's own view of its slow commands during the load (one blocks every client)
        await services.redis.config_set("slowlog-log-slower-than", SLOWLOG_US)
        await services.redis.slowlog_reset()
        since = datetime.now(UTC) - timedelta(seconds=1)
        rss_start = rss(api.pid)
        memory: list[tuple[float, int]] = []
        stop = asyncio.Event()
        log(f"load: {args.seconds:g} s, {args.rate:g} HTTP actions/s, a location every {args.move_every:g} s "
            f"per client, an offer every {args.offer_every:g} s")
        kinds, weights = list(MIX), list(MIX.values())
        resumers = rng.sample(world.clients, round(len(world.clients) * args.resume_share))
        # the metrics are read on a connection of their own: a pool full of slow actions must not hide them
        async with httpx2.AsyncClient(base_url=api.base_url, timeout=30,
                                      limits=httpx2.Limits(max_connections=64)) as http, \
                httpx2.AsyncClient(base_url=api.base_url, timeout=30) as metrics_http:
            # one action of each kind, untimed: the first request of a route after start-up pays
            # once for what later ones reuse (a pooled connection, a script loaded into Redis)
            for kind in MIX:
                await action(kind, world, http, rng)
            world.routes.clear()
            memory_task = asyncio.create_task(sample_memory(api.pid, memory, stop))
            first = await scrape(metrics_http)
            lag_before, gc_before, http_before = lag_buckets(first), gc_totals(first), http_buckets(first)
            api_stalls: list[float] = []
            own_stalls: list[float] = []
            stall_tasks = [asyncio.create_task(sample_stalls(metrics_http, api_stalls, stop)),
                           asyncio.create_task(own_loop_stalls(own_stalls, stop))]
            movers = [asyncio.create_task(mover(c, random.Random(rng.random()), world, args.move_every, stop))
                      for c in world.clients]
            # Starting 2,000 movers holds this process's loop ~0.1 s: let that pass before the timed
            # actions start, or the first actions' latencies are this client's stall, not the API's.
            # This process's collector is off for the timed load: its young collections took 13-39
            # ms each here (gc.callbacks), and a request in flight during one was timed that much
            # slower than the API answered it. A minute of the clients' garbage is bounded; the
            # collector runs again right after. The probe (how fast the machine is this minute) and
            # the full collection before it hold the loop too (45-190 and ~140 ms on a slow
            # machine): both come before the pause, so the tick they held lands before the clear
            # below — as the load's first tick it was this client's longest stall in every soak,
            # and no action's latency.
            probe_before = host_probe_ms()
            gc.collect()
            gc.disable()
            await asyncio.sleep(MOVERS_SETTLE_S)
            own_stalls.clear()  # this loop's stalls are reported for the timed load only

            async def resume_all() -> None:
                for c in resumers:
                    await asyncio.sleep(rng.uniform(0, args.seconds * 0.6 / max(1, len(resumers))))
                    await drop_and_resume(base_ws, c, listeners)

            resume_task = asyncio.create_task(resume_all())
            load_window = [datetime.now(UTC), datetime.now(UTC)]  # the stalls the API logs in it are reported
            busy = CpuShares({"api": api.pid, "worker": worker.pid, "mongod": env.mongod_pid,
                              "redis": env.redis_pid})
            started = time.perf_counter()
            actions, offers = await asyncio.gather(
                open_loop(args.rate, args.seconds,
                          lambda: action(rng.choices(kinds, weights)[0], world, http, rng), stop),
                open_loop(1 / args.offer_every, args.seconds, lambda: post_offer(world, http, rng), stop))
            load_s = time.perf_counter() - started
            load_window[1] = datetime.now(UTC)
            cpu_report = busy.report()
            stop.set()
            # the actions still in flight finish before this process's collector runs again: its first
            # collection after a minute off holds the loop ~0.1 s here, and the last action of every
            # soak (started at 59.96 s) was timed through it, the slowest of the run in six soaks in
            # a row (110-140 ms, on whatever route it drew)
            try:
                await asyncio.gather(*actions, *offers)
            finally:
                gc.enable()
            await asyncio.gather(*movers, resume_task, *stall_tasks)
            cpu_report["host_probe_ms"] = {"before": probe_before, "after": host_probe_ms()}
            # the API's CPU over this client's: the client's code and work are the same in every run,
            # so it follows the machine's speed minute by minute, where the probe is one instant
            # (docs/benchmarks.md, thirty-fifth round: soaks of two versions compared by it)
            shares = cpu_report["processes"]
            if shares.get("soak client"):
                cpu_report["api_over_client"] = round(shares["api"] / shares["soak client"], 2)
            final = await scrape(metrics_http)
            api_stalls.append(metric_samples(final, STALL_GAUGE).get("", 0.0))
            p99_bound, ticks = lag_p99(lag_before, lag_buckets(final))
            world.server_p99_ms = server_p99_ms(http_before, http_buckets(final))
            world.load_started = started
            loop_report = {
                "api_longest_stall_ms": round(max(api_stalls, default=0.0) * 1000, 1),
                "api_lag_p99_ms_at_most": p99_bound * 1000 if p99_bound != math.inf else None,
                "api_ticks": ticks,
                "client_longest_stall_ms": round(max(own_stalls, default=0.0) * 1000, 1),
                "client_lag_p99_ms": round(percentile(own_stalls, 99) * 1000, 1),
                "api_gc": {gen: {"collections": int(n - gc_before.get(gen, (0, 0))[0]),
                                 "ms": round((t - gc_before.get(gen, (0, 0))[1]) * 1000, 1)}
                           for gen, (n, t) in sorted(gc_totals(final).items())},
            }
            redis_slow = [{"ms": round(e["duration"] / 1000, 1), "command": _text(e["command"])[:120]}
                          for e in await services.redis.slowlog_get(20)]
            log("draining …")
            drain_s = await drain(env, services, since)
            world.fanout_windows = await fanout_windows(services, [pid for _, pid in world.published])
            for i, c in enumerate(world.clients):  # last positions again: the offers' arrival path
                await send_position(c)
                if i % 200 == 199:
                    await asyncio.sleep(0.5)
            # give the last published events a moment to travel pub/sub → hub → socket
            for _ in range(60):
                expected = compare_expected(world.clients, world)
                history = compare_history(world.clients, await recorded_events(services, world.clients, since_ms))
                if not _lost(expected) and not sum(history["lost"].values()):
                    break
                await asyncio.sleep(0.25)
            result = {**expected, "history": history}
            rss_end = rss(api.pid)
            await memory_task
        for c in world.clients:
            with contextlib.suppress(Exception):
                c.ws.transport.abort()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        doc = report_doc(args, world, result, load_s, drain_s, connect_s, rss_start, rss_end, memory)
        doc["event_loop"] = loop_report
        doc["stall_trace_ms"] = args.stall_trace_ms
        # read at the end: the API's log writer thread has written the load's lines by now
        loop_report["api_traced_stalls"] = traced_stalls(api.log.read_bytes(), *load_window)
        doc["cpu"] = cpu_report
        doc["redis_slowlog"] = redis_slow
        return doc


def _lost(expected: dict[str, Any]) -> int:
    return sum(n for by_group in expected["lost"].values() for n in by_group.values())


def _required(expected: dict[str, Any]) -> int:
    return sum(n for by_group in expected["required"].values() for n in by_group.values())


MOVERS_SETTLE_S = 1.0
"""Seconds between starting the movers and starting the timed actions."""

SLOW_MS = 100.0
"""A request slower than this is listed by the second it started in (the timeline)."""


def timeline(world: World) -> dict[str, Any]:
    """When the slow requests happened: the slowest with their start (seconds into the load), and the
    count of requests over :data:`SLOW_MS` per second — clustered seconds point at a stall that hit
    every route at once, scattered ones at slow routes."""
    rows = [(t - world.load_started, name, ms) for name, st in world.routes.items()
            for t, ms in zip(st.started, st.latencies_ms, strict=True)]
    slow = Counter(int(at) for at, _, ms in rows if ms > SLOW_MS)
    return {"slowest": [{"at_s": round(at, 2), "route": name, "ms": round(ms, 1)}
                        for at, name, ms in sorted(rows, key=lambda r: -r[2])[:25]],
            "slow_per_second": {str(k): v for k, v in sorted(slow.items())}}


class CpuShares:
    """Each process's CPU over the load (% of one core) and the share of the machine's CPU time its
    host took (``steal`` in /proc/stat). The API near 100 % means the open-loop load queues up
    in it: its latencies then grow with every second of the load, whatever the route. Steal is
    time a virtual machine's CPUs were ready to run but the host ran something else: runs of the
    same code differ by as much as it does."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.before = {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}
        self.own = time.process_time()
        self.stat = cpu_stat()
        self.t0 = time.perf_counter()

    def report(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        shares = {name: round(100 * ((cpu_seconds(pid) or 0.0) - self.before[name]) / elapsed, 1)
                  for name, pid in self.pids.items()}
        shares["soak client"] = round(100 * (time.process_time() - self.own) / elapsed, 1)
        return {"processes": shares, "host_steal_percent": steal_percent(self.stat, cpu_stat())}


def report_doc(args: argparse.Namespace, world: World, events: dict[str, Any], load_s: float, drain_s: float,
               connect_s: float, rss_start: int, rss_end: int, memory: list[tuple[float, int]]) -> dict[str, Any]:
    routes = {}
    for name, st in sorted(world.routes.items()):
        routes[name] = {
            "requests": sum(st.statuses.values()), "per_s": round(sum(st.statuses.values()) / load_s, 2),
            "statuses": dict(sorted(st.statuses.items())), "transport_errors": dict(st.errors),
            "p50_ms": round(percentile(st.latencies_ms, 50), 1), "p99_ms": round(percentile(st.latencies_ms, 99), 1),
            "server_p99_ms_at_most": world.server_p99_ms.get(name),
            "5xx_bodies": st.failures,
        }
    fivexx = sum(n for st in world.routes.values() for code, n in st.statuses.items() if code >= 500)
    transport = sum(sum(st.errors.values()) for st in world.routes.values())
    types: Counter[str] = Counter()
    for c in world.clients:
        types.update(c.types)
    closed = Counter(c.closed_by_server for c in world.clients if c.closed_by_server is not None)
    peak = max((m for _, m in memory), default=rss_end)
    history = events["history"]
    ok = (fivexx == 0 and transport == 0 and _lost(events) == 0 and events["duplicates"] == 0
          and sum(history["lost"].values()) == 0 and history["duplicates"] == 0 and not closed
          and rss_end < 2 * rss_start)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "settings": {"burst": args.burst, "seconds": args.seconds, "clients": args.clients, "rate": args.rate,
                     "move_every_s": args.move_every, "offer_every_s": args.offer_every,
                     "resume_share": args.resume_share},
        "ok": ok, "load_seconds": round(load_s, 1), "drain_seconds": round(drain_s, 1),
        "connect_seconds": round(connect_s, 1), "http_5xx": fivexx, "http_transport_errors": transport,
        "routes": routes, "offers_posted": world.offers, **timeline(world),
        "clients": {"connected": len(world.clients),
                    "stayed_connected": sum(1 for c in world.clients if not c.resumed and c.closed_by_server is None),
                    "dropped_and_resumed": sum(1 for c in world.clients if c.resumed),
                    "closed_by_server": {str(k): v for k, v in closed.items()}},
        "events": {"delivered_by_type": dict(types.most_common()), **events},
        "api_rss_mib": {"start": round(rss_start / 2**20, 1), "end": round(rss_end / 2**20, 1),
                        "peak": round(peak / 2**20, 1)},
        "api_rss_samples_mib": [(t, round(m / 2**20, 1)) for t, m in memory],
    }


def print_report(doc: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    w = max(len(r) for r in doc["routes"]) if doc["routes"] else 10
    print(f"\n{'route':<{w}}  {'requests':>8}  {'per s':>6}  {'5xx':>4}  {'other':>22}  {'p50 ms':>7}  {'p99 ms':>7}"
          f"  {'server p99 ≤':>12}", file=out)
    for name, r in doc["routes"].items():
        other = {c: n for c, n in r["statuses"].items() if not 200 <= c < 300 and c < 500}
        fivexx = sum(n for c, n in r["statuses"].items() if c >= 500)
        print(f"{name:<{w}}  {r['requests']:>8}  {r['per_s']:>6}  {fivexx:>4}  {other or '-'!s:>22}  "
              f"{r['p50_ms']:>7}  {r['p99_ms']:>7}  {r.get('server_p99_ms_at_most') or '-'!s:>12}", file=out)
    ev, cl, mem = doc["events"], doc["clients"], doc["api_rss_mib"]
    busiest = sorted(doc.get("slow_per_second", {}).items(), key=lambda kv: -kv[1])[:8]
    if busiest:
        print(f"requests over {SLOW_MS:g} ms by second of the load (the busiest): "
              + ", ".join(f"{s} s: {n}" for s, n in busiest), file=out)
    print(f"\nHTTP 5xx: {doc['http_5xx']}   transport errors: {doc['http_transport_errors']}   "
          f"offers posted: {doc['offers_posted']}", file=out)
    print(f"sockets: {cl['connected']:,} connected in {doc['connect_seconds']} s; {cl['stayed_connected']:,} stayed "
          f"connected, {cl['dropped_and_resumed']} dropped and resumed with last_event_id, closed by the server: "
          f"{cl['closed_by_server'] or 0}", file=out)
    print(f"events delivered: {ev['delivered_by_type']}", file=out)
    for kind in ("feed.new", "offer"):
        req, lost = ev["required"][kind], ev["lost"][kind]
        print(f"{kind} events the clients expected: stayed connected {req['stayed']:,} (lost {lost['stayed']}), "
              f"resumed {req['resumed']:,} (lost {lost['resumed']})", file=out)
    hist = ev["history"]
    print(f"duplicates (same post or offer twice): {ev['duplicates']}; server history streams: "
          f"{sum(hist['required'].values()):,} recorded, {sum(hist['lost'].values())} not delivered, "
          f"{hist['duplicates']} event ids twice", file=out)
    for name, r in doc["routes"].items():
        for body in r["5xx_bodies"]:
            print(f"  5xx on {name}: {body}", file=out)
    if ev["examples"] or hist["examples"]:
        print(f"  missing, e.g.: {ev['examples'] + hist['examples']}", file=out)
    print(f"API process RSS: {mem['start']} MiB at start, {mem['end']} MiB at end, peak {mem['peak']} MiB", file=out)
    loop = doc.get("event_loop")
    for entry in doc.get("redis_slowlog", [])[:5]:
        print(f"  Redis slow log: {entry['ms']} ms {entry['command']}", file=out)
    cpu = doc.get("cpu")
    if cpu:
        print("CPU during the load, % of one core: " + ", ".join(f"{k} {v}" for k, v in cpu["processes"].items())
              + f"; the host took {cpu['host_steal_percent']} % of this machine's CPU time (steal)"
              + (f"; host probe {cpu['host_probe_ms']['before']} ms before the load, {cpu['host_probe_ms']['after']} "
                 "after (a fixed Python loop: higher is a slower machine)" if "host_probe_ms" in cpu else "")
              + (f"; the API's CPU over this client's {cpu['api_over_client']} (a yardstick for comparing runs: "
                 "the client does the same work in each)" if "api_over_client" in cpu else ""), file=out)
    if loop:
        print(f"API event loop: longest stall {loop['api_longest_stall_ms']} ms, p99 lag ≤ "
              f"{loop['api_lag_p99_ms_at_most']} ms ({loop['api_ticks']} ticks); this client's loop: longest "
              f"stall {loop['client_longest_stall_ms']} ms, p99 lag {loop['client_lag_p99_ms']} ms", file=out)
        traced = loop.get("api_traced_stalls")
        if traced and traced["count"]:
            print(f"API stalls traced (over {doc['stall_trace_ms']:g} ms): {traced['count']}, longest "
                  f"{traced['longest_ms']:g} ms; innermost frames: " + "; ".join(
                      f"{f['frame']} ×{f['stalls']}" for f in traced["innermost_frames"]), file=out)
        print("API garbage collections during the load (their CPU time): " + ", ".join(
            f"gen {gen} {g['collections']}× {g['ms']} ms" for gen, g in loop.get("api_gc", {}).items()), file=out)
    print(f"load {doc['load_seconds']} s, drain {doc['drain_seconds']} s — {'OK' if doc['ok'] else 'FAILED'}",
          file=out)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the load (default 60)")
    p.add_argument("--clients", type=int, default=2000, help="WebSocket clients (default 2000)")
    p.add_argument("--rate", type=float, default=25.0, help="HTTP actions a second (default 25)")
    p.add_argument("--move-every", type=float, default=20.0, help="seconds between a client's locations (20)")
    p.add_argument("--offer-every", type=float, default=5.0, help="seconds between offers (5)")
    p.add_argument("--resume-share", type=float, default=0.01, help="share of clients that drop and resume (0.01)")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--burst", action="store_true",
                   help="send every client's first location at once instead of ~400 a second (a stress case)")
    p.add_argument("--stall-trace-ms", type=float, default=0.0,
                   help="the API logs the stacks holding its loop longer than this, e.g. 40 (default 0: off; "
                        "the watchdog thread takes the interpreter lock from the loop at each wake-up)")
    p.add_argument("--keep", action="store_true", help="keep the servers' logs and data directory")
    args = p.parse_args(argv)
    if not (0 < args.seconds <= 3600 and 2 <= args.clients <= 9000 and 0 < args.rate <= 500
            and args.move_every > 0 and args.offer_every > 0 and 0 <= args.resume_share <= 0.5):
        p.error("out of range: 0 < seconds <= 3600, 2 <= clients <= 9000, 0 < rate <= 500, 0 <= resume-share <= 0.5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    doc = asyncio.run(soak(args))
    print_report(doc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
