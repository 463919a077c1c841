"""Home-feed and topic-feed reads: a 20-item page at 64 concurrent clients, beside the bare endpoint.

Set-up (not timed): 40 authors with 50 posts each (2,000 posts, some with topics, mentions and
locations), 256 readers following 10 authors each, every reader's feed built (READY), some likes
so ``liked_by_me`` has work to do. Each request is ``GET /v1/feed/home?limit=20`` with a reader's
token (round robin): token check, the Redis page (timeline slice), one pipeline for the cached
post views and the reader's likes among them (MongoDB only on a miss), JSON out.

The topic row reads ``GET /v1/topics/bench<n>/posts?limit=20`` (seven topics of about 285 posts
each, round robin over readers and topics): the same hydration behind a topic listing.

The home row also drives a third side in the same turns: the floor (:mod:`benchmarks.floor_app`),
each reader's first page as the API answered it, served from Redis in one auto-pipelined Lua round
trip with the bodies joined as bytes; ``floor_same_pages`` checks it answers the API's Posts.

The baseline is the harness's bare Starlette endpoint (``GET /echo?limit=20``, a small JSON
answer) under the same uvicorn flags and the same load generator (wrk when available): the
ceiling a request costs in framework, HTTP and JSON alone.
"""

from __future__ import annotations

import random
import secrets
import uuid
from typing import Any

import orjson
from bson import ObjectId

from benchmarks.common import BenchEnv, HttpRequest, Result, compare_reads, run_load
from benchmarks.floor_app import store_pages
from benchmarks.seed import auth

AUTHORS = 40
POSTS_EACH = 50
READERS = 256
FOLLOWS_EACH = 10
CONCURRENCY = 64
SECONDS = 8.0


def _photo_copies(templates: list[dict[str, Any]], n: int, owner_id: ObjectId,
                  rng: random.Random) -> list[dict[str, Any]]:
    """``n`` media documents for one post: copies of real uploads (``templates``) with their own
    ids and keys, as if each photo had been uploaded (the files are shared: only the post's
    embedded copies are read by a feed page)."""
    picked = [templates[rng.randrange(len(templates))] for _ in range(n)]
    return [{**{k: v for k, v in t.items() if k != "expires_at"}, "_id": ObjectId(), "key": secrets.token_urlsafe(16),
             "owner_id": owner_id, "status": "attached"} for t in picked]


async def seed(services: Any, n_authors: int, n_readers: int, *, photos: list[dict[str, Any]] | None = None,
                photos_per_post: int = 0) -> list[str]:
    """Authors, their posts, readers with built feeds; with ``photos`` (real uploads' media documents)
    every post carries ``photos_per_post`` of them, attached as ``create_post`` attaches them."""
    from feed.home import rebuild_home
    from feed.posts import build_post
    from media.store import embedded
    from solomo.accounts import Principal

    rng = random.Random(7)
    authors = [await services.accounts.create_user(f"fa_{uuid.uuid4().hex[:12]}", "password123")
               for _ in range(n_authors)]
    docs = []
    media_docs: list[dict[str, Any]] = []
    for a in authors:
        who = Principal(a["_id"], a["username"], a["username"], "user")
        for i in range(POSTS_EACH):
            lat, lng = (rng.uniform(-60, 60), rng.uniform(-170, 170)) if i % 3 == 0 else (None, None)
            text = f"post {i} by {a['username']} #bench{i % 7} #话题{i % 5}#"
            mine = _photo_copies(photos, photos_per_post, a["_id"], rng) if photos else []
            doc = await build_post(services, who, text, lat=lat, lng=lng, media=[embedded(m) for m in mine] or None)
            doc["fanout"] = "done"
            docs.append(doc)
            media_docs += [{**m, "post_id": doc["_id"]} for m in mine]
    await services.db.posts.insert_many(docs)
    if media_docs:
        await services.db.media.insert_many(media_docs)
    tokens = []
    follows = []
    likes = []
    readers = []
    for _ in range(n_readers):
        r = await services.accounts.create_user(f"fr_{uuid.uuid4().hex[:12]}", "password123")
        readers.append(r["_id"])
        tokens.append(await services.accounts.issue_token(r["_id"]))
        for a in rng.sample(authors, FOLLOWS_EACH):
            follows.append({"_id": ObjectId(), "follower_id": r["_id"], "target_type": "user", "target_id": a["_id"],
                            "created_at": None, "created_ms": 0})
        for d in rng.sample(docs, 20):
            likes.append({"_id": ObjectId(), "post_id": d["_id"], "user_id": r["_id"], "created_at": None})
    await services.db.follows.insert_many(follows)
    await services.db.likes.insert_many(likes)
    for r in readers:
        await rebuild_home(services, r)
    return tokens


def _unliked(page: bytes) -> list[dict[str, Any]]:
    """A page's Posts without ``liked_by_me``: the floor keeps one body a post for every reader."""
    return [{k: v for k, v in item.items() if k != "liked_by_me"} for item in orjson.loads(page)["items"]]


def full_pages(bodies: list[tuple[int, bytes]]) -> dict[str, Any]:
    full = sum(1 for status, body in bodies if status == 200 and body.count(b'"author"') == 20)
    return {"warmup_full_pages": f"{full}/{len(bodies)}"}


async def run(env: BenchEnv) -> list[Result]:
    services = await env.services()
    tokens = await seed(services, env.size(AUTHORS, FOLLOWS_EACH), env.size(READERS, 8))
    ours = [HttpRequest("GET", "/v1/feed/home?limit=20", headers=auth(t)) for t in tokens]
    base = [HttpRequest("GET", "/echo?limit=20", headers=auth(t)) for t in tokens]
    topics = [HttpRequest("GET", f"/v1/topics/bench{i % 7}/posts?limit=20", headers=auth(t))
              for i, t in enumerate(tokens)]
    # the floor (benchmarks.floor_app) serves each reader's first page as the API answers it
    api = await env.api()
    pages: list[tuple[int, bytes]] = []
    await run_load(api.port, ours, concurrency=1, bodies=pages)
    if any(status != 200 for status, _ in pages):
        raise RuntimeError(f"a home page for the floor did not answer 200: {sorted({s for s, _ in pages})}")
    await store_pages(services.redis, [(t, body) for t, (_, body) in zip(tokens, pages, strict=True)])
    floor = await env.uvicorn("benchmarks.floor_app:app", "floor",
                              environ={"SOLOMO_BENCH_FLOOR_REDIS": env.settings().redis_url})
    lowest = [HttpRequest("GET", "/floor/home?limit=20", headers=auth(t)) for t in tokens]
    served: list[tuple[int, bytes]] = []
    await run_load(floor.port, lowest, concurrency=1, bodies=served)
    same = sum(1 for (_, a), (status, b) in zip(pages, served, strict=True)
               if status == 200 and _unliked(a) == _unliked(b))
    # the warm-up reads every reader's page once: the per-reader caches (token, likes, shut-out set)
    # are built before the clock starts, as on a server that has been up for a while
    return [await compare_reads(env, "home feed, 20/page", ours, base, concurrency=CONCURRENCY,
                                seconds=env.seconds(SECONDS), check=full_pages, readers=len(tokens),
                                warmup=max(200, len(tokens)), floor=(floor, lowest),
                                floor_same_pages=f"{same}/{len(tokens)}"),
            await compare_reads(env, "topic feed, 20/page", topics, base, concurrency=CONCURRENCY,
                                seconds=env.seconds(SECONDS), check=full_pages, readers=len(tokens))]
