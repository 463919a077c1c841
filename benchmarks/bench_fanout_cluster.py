"""Fan-out on a real Redis Cluster, beside the in-Redis ``ZADD`` run per bucket on the same cluster.

Rows (sizes at ``--scale 1``):

* ``fan-out to 10,000 followers on a Redis Cluster (vs in-Redis ZADD per bucket)``;
* ``fan-out to 100,000 followers on a Redis Cluster (vs in-Redis ZADD per bucket)``.

The cluster is an :class:`~solomo.embedded.EmbeddedRedisCluster` (six real ``redis-server`` nodes:
three masters, three replicas) started inside this run and stopped by pid when the benchmark ends,
whatever happens. MongoDB is the harness's.

Ours: :func:`feed.fanout.fanout_post` called in this process, with services whose Redis is a
``RedisCluster`` (``redis_cluster=True``, ``redis_url`` = a node), timed from the call until it
returns (the post is then marked ``fanout: done``; every follower's feed is checked afterwards). It
is the worker's code path without the Celery hop: followers read from MongoDB in batches of
``fanout_chunk``, each batch one pipelined round of Lua calls, one per reader bucket (redis-py sends
each master its share), with the feed trim, the skip of inactive readers, the online check, the
checkpoints, the author's own feed, the topic and the trends. The hybrid threshold is raised to the
largest size, so both sizes are pushed. Each size starts with one untimed post and one untimed
baseline call, as in :mod:`benchmarks.bench_fanout`: an author's first big post also builds its
follower pages (:mod:`feed.followerpages`), once per audience.

Baseline, same cluster, same run, interleaved with ours: the minimal Lua script of
:mod:`benchmarks.bench_fanout` (only ``ZADD`` of the same score and a post id into the same feed
keys), per hash-tag bucket — the same followers grouped by :func:`solomo.core.keys.bucket_of`,
``fanout_chunk`` followers per pipelined round, one ``EVAL`` per bucket with that bucket's home
keys (the cheapest correct way to write those entries on a cluster: a script's keys must share a
slot, and redis-py refuses ``EVALSHA`` in cluster pipelines). Keys are built and grouped before the
clock starts. CPU: ours and the baseline this process (``harness``: ours runs the fan-out code
here, the baseline the client), the masters and the replicas (summed), and mongod for ours.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from benchmarks.bench_fanout import BASELINE_LUA, LARGE, PUSHED, REPEATS, Side, _cpu, _cpu_delta
from benchmarks.common import BenchEnv, Result, client_limit_note

if TYPE_CHECKING:
    from solomo.core.services import Services
    from solomo.embedded import EmbeddedRedisCluster

SETUP_CHUNK = 5000


def _pids(cluster: EmbeddedRedisCluster) -> tuple[dict[str, list[int]], list[int]]:
    """Pids of the masters and of the replicas (summed per role in the notes)."""
    masters = set(cluster.masters())
    roles: dict[str, list[int]] = {"redis_masters": [], "redis_replicas": []}
    for port, proc in cluster.nodes.items():
        assert proc.process is not None
        roles["redis_masters" if port in masters else "redis_replicas"].append(proc.process.pid)
    return roles, sorted(masters)


class Clock:
    """CPU seconds of this process, mongod and the cluster's nodes (per role) over one run."""

    def __init__(self, env: BenchEnv, roles: dict[str, list[int]], *, mongod: bool) -> None:
        self.pids: dict[str, int | None] = {f"{role}#{i}": pid for role, pids in roles.items()
                                            for i, pid in enumerate(pids)}
        if mongod:
            self.pids["mongod"] = env.mongod_pid

    def __enter__(self) -> Clock:
        self.before, self.own = _cpu(self.pids), time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu: dict[str, float] = {"harness": time.process_time() - self.own}  # before psutil's own reads
        per_pid = _cpu_delta(self.before, self.pids)
        for name, value in per_pid.items():
            role = name.split("#", 1)[0]
            self.cpu[role] = self.cpu.get(role, 0.0) + value


async def _feeds(services: Services, followers: list[ObjectId]) -> None:
    """An existing (READY) home feed for each follower, on the cluster."""
    from feed.timeline import MARKER, READY
    from solomo.core.keys import home_key

    for start in range(0, len(followers), SETUP_CHUNK):
        async with services.redis.pipeline(transaction=False) as pipe:
            for f in followers[start:start + SETUP_CHUNK]:
                pipe.zadd(home_key(f), {MARKER: READY})
            await pipe.execute()


async def _author(services: Services, followers: list[ObjectId]) -> Any:
    """A fresh author followed by all of ``followers`` (in MongoDB); returns the author's Principal."""
    from solomo.accounts import Principal

    user = await services.accounts.create_user(f"fc_{uuid.uuid4().hex[:12]}", "password123")
    for start in range(0, len(followers), 10_000):
        await services.db.follows.insert_many(
            [{"follower_id": f, "target_type": "user", "target_id": user["_id"], "created_ms": 0}
             for f in followers[start:start + 10_000]], ordered=False)
    await services.db.users.update_one({"_id": user["_id"]}, {"$set": {"followers_count": len(followers)}})
    return Principal(id=user["_id"], username=user["username"], display_name=user.get("display_name") or "",
                     role=user.get("role", "user"))


async def _holding(services: Services, followers: list[ObjectId], member: str) -> int:
    from solomo.core.keys import home_key

    holding = 0
    for start in range(0, len(followers), SETUP_CHUNK):
        async with services.redis.pipeline(transaction=False) as pipe:
            for f in followers[start:start + SETUP_CHUNK]:
                pipe.zscore(home_key(f), member)
            holding += sum(s is not None for s in await pipe.execute())
    return holding


async def _ours(env: BenchEnv, services: Services, author: Any, followers: list[ObjectId],
                roles: dict[str, list[int]], side: Side, label: str) -> tuple[str, bool, int]:
    """One post fanned out by ``fanout_post`` on the cluster; returns (outcome, marked done, feeds holding it)."""
    from feed.fanout import fanout_post
    from feed.posts import build_post, insert_post

    doc = await build_post(services, author, f"hello {label} #bench")  # no task sent: only this call fans out
    await insert_post(services, doc)
    with Clock(env, roles, mongod=True) as clock:
        outcome = await fanout_post(services, doc["_id"])
    side.add(clock.seconds, clock.cpu)
    post = await services.db.posts.find_one({"_id": doc["_id"]}, {"fanout": 1})
    done = bool(post and post.get("fanout") == "done")
    return outcome, done, await _holding(services, followers, str(doc["_id"]))


def _bucket_rounds(followers: list[ObjectId], chunk: int) -> list[list[list[str]]]:
    """Per ``chunk`` of followers, their home keys grouped by bucket (one script call each)."""
    from solomo.core.keys import by_bucket, home_key

    return [[[home_key(u) for u in uids] for uids in by_bucket(followers[start:start + chunk]).values()]
            for start in range(0, len(followers), chunk)]


async def _warm(services: Services) -> None:
    """Every master compiles the baseline script once before any clock starts (EVAL caches it)."""
    from solomo.core.keys import BUCKETS, bucket_tag

    async with services.redis.pipeline(transaction=False) as pipe:
        for bucket in range(BUCKETS):
            pipe.eval(BASELINE_LUA, 1, f"bench:warm:{bucket_tag(bucket)}", 0, "warm")
        await pipe.execute()


async def _in_redis(env: BenchEnv, services: Services, rounds: list[list[list[str]]],
                    roles: dict[str, list[int]], side: Side) -> int:
    """The baseline: one EVAL of the ZADD-only script per bucket, pipelined per chunk; returns entries written."""
    member, score = str(ObjectId()), int(time.time() * 1000)
    written = 0
    with Clock(env, roles, mongod=False) as clock:
        for groups in rounds:
            async with services.redis.pipeline(transaction=False) as pipe:
                for keys in groups:
                    pipe.eval(BASELINE_LUA, len(keys), *keys, score, member)
                written += sum(int(n) for n in await pipe.execute())
    side.add(clock.seconds, clock.cpu)
    return written


def _row(n: int, ours: Side, base: Side, masters: list[int], **extra: Any) -> Result:
    base_notes = base.notes("in_redis_")
    return Result.compare(
        f"fan-out to {n:,} followers on a Redis Cluster (vs in-Redis ZADD per bucket)", n / ours.median,
        n / base.median, "inserts/s", followers=n, repeats=len(ours.seconds), repeat_ratios=ours.ratios(base),
        generator="fanout_post in the harness on a RedisCluster client; baseline: one EVAL per bucket, pipelined",
        cluster="6 nodes (3 masters, 3 replicas)", masters=len(masters), **extra, **ours.notes(""), **base_notes,
        in_redis_client_limit=client_limit_note(base_notes.get("in_redis_cpu%_harness", 0.0)))


async def run(env: BenchEnv) -> list[Result]:
    from solomo.core.keys import BUCKETS
    from solomo.embedded import EmbeddedRedisCluster
    from solomo.services import open_services

    await env.services()  # MongoDB's indexes, as the other benchmarks have them
    chunk = env.settings().fanout_chunk
    pushed, large = env.size(PUSHED, 100), env.size(LARGE, 1000)
    repeats = REPEATS if env.scale >= 0.05 else 1
    cluster = EmbeddedRedisCluster(env.tmp / "redis-cluster")
    services: Services | None = None
    results: list[Result] = []
    try:
        await asyncio.to_thread(cluster.start)
        settings = env.settings().model_copy(update={
            "redis_cluster": True, "redis_url": cluster.url, "fanout_max_followers": large,
            "broker_url": env.settings().effective_broker_url})  # no task is sent; never the cluster
        services = await open_services(settings, create_indexes=False)
        roles, masters = _pids(cluster)
        big = [ObjectId() for _ in range(large)]
        await _feeds(services, big)
        await _warm(services)
        for n in (pushed, large):
            followers = big[:n]
            author = await _author(services, followers)
            rounds = _bucket_rounds(followers, chunk)
            ours, base = Side(), Side()
            failures: list[str] = []
            outcome, done, holding = "", False, 0
            # untimed, as in bench_fanout: the author's first post also builds its follower pages
            # (feed.followerpages), once per audience, and each side's first call warms its path
            await _ours(env, services, author, followers, roles, Side(), f"cluster {n} followers warm-up")
            await _in_redis(env, services, rounds, roles, Side())
            for i in range(repeats):
                outcome, done, holding = await _ours(env, services, author, followers, roles, ours,
                                                     f"cluster {n} followers {i}")
                if outcome != "published" or not done or holding != n:
                    failures.append(f"{n:,} followers: post {i} {outcome}, done={done}, {holding:,} feeds hold it")
                written = await _in_redis(env, services, rounds, roles, base)
                if written != n:
                    failures.append(f"{n:,} followers: baseline run {i} wrote {written:,} entries")
            results.append(_row(n, ours, base, masters, threshold=large, mode="push", feeds_holding=holding,
                                fanout_done=done, fanout_chunk=chunk, buckets=BUCKETS,
                                script_calls_per_chunk=max(len(r) for r in rounds), online_followers=0,
                                cluster_ports=list(cluster.ports),
                                cluster_pids=[p.process.pid for p in cluster.nodes.values() if p.process]))
            results[-1].failures = failures
    finally:
        if services is not None:
            await services.close()
        await asyncio.to_thread(cluster.stop)  # every node, by its pid
    return results
