"""The floor: the least a home page can cost in this stack, served the same way as the API.

The shared planning notes measured it once (on h11 and asyncio's loop, before the twenty-first
round moved both sides to httptools and uvloop): "auth + timeline slice + 20 cached post bodies
served from Redis in one Lua round trip, bodies joined as bytes without parsing". This app is that
page, so that a read row can show, in the same run, how far the bare endpoint is from any page that
reads Redis at all, and how far ours is from that floor.

``GET /floor/home?limit=20`` with ``Authorization: Bearer <token>``: one ``EVAL`` that reads the
token's reader, the newest ``limit`` ids of the reader's timeline and their stored bodies; the
answer is the bodies joined into ``{"items": [...], "next_cursor": ...}``. The data
(:func:`store_pages`) is a copy of the API's own first pages, so the floor's answers are ours, byte
for byte per post. Nothing else a real page does is here: no block or mute screen, no post status,
no ``liked_by_me`` per reader, no author names that can change, no counters, no metrics, no access
line, no rate limit. Served with the API's uvicorn flags, through the API's own Redis client: the
same connection class and the auto-pipeline (:mod:`solomo.core.autopipe`: the requests of a turn
share one round trip), undecoded replies.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from solomo.core.autopipe import shared
from solomo.core.redisio import WatchedConnection

PREFIX = "benchfloor:"
SCRIPT = """
local reader = redis.call('GET', KEYS[1])
if not reader then return false end
local ids = redis.call('ZREVRANGE', ARGV[1] .. 'h:' .. reader, 0, tonumber(ARGV[2]) - 1)
if #ids == 0 then return {} end
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. 'p:' .. id end
local bodies = redis.call('MGET', unpack(keys))
bodies[#bodies + 1] = ids[#ids]  -- the cursor: the page's last id
return bodies
"""

_redis = Redis.from_pool(BlockingConnectionPool.from_url(
    os.environ.get("SOLOMO_BENCH_FLOOR_REDIS", "redis://127.0.0.1:6379/0"), max_connections=64, protocol=2,
    connection_class=WatchedConnection, socket_timeout=None))
_batch = shared(_redis)
_UNAUTHORIZED = Response(b'{"error":{"code":"unauthorized","message":"a token is needed"}}', status_code=401,
                         media_type="application/json")


async def home(request: Request) -> Response:
    token = request.headers.get("authorization", "")[7:]
    limit = request.query_params.get("limit", "20")
    key = PREFIX + "t:" + token
    # EVAL on the auto-pipeline, as the API runs every script (solomo.core.scripts), but not as a
    # declared LuaScript: this one builds its keys inside, which only a single Redis allows, and
    # every declared script must run on a cluster (tests/test_lua_keys.py)
    (bodies,) = await _batch.run(lambda pipe: pipe.eval(SCRIPT, 1, key, PREFIX, limit))
    if bodies is None:
        return _UNAUTHORIZED
    last = bodies.pop() if bodies else b""
    return Response(b'{"items":[' + b",".join(bodies) + b'],"next_cursor":"' + last + b'"}',
                    media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/floor/home", home, methods=["GET"]), Route("/readyz", ready, methods=["GET"])])


async def store_pages(redis: Any, pages: list[tuple[str, bytes]]) -> int:
    """Stores the API's answered first pages for the floor: ``pages`` = (token, page JSON) of each
    reader; returns how many post bodies were stored."""
    posts: dict[str, bytes] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for n, (token, page) in enumerate(pages):
            items = orjson.loads(page)["items"]
            pipe.set(PREFIX + "t:" + token, str(n))
            if items:
                pipe.zadd(PREFIX + f"h:{n}", {item["id"]: float(i) for i, item in enumerate(reversed(items))})
            for item in items:
                posts[item["id"]] = orjson.dumps(item)
        for post_id, body in posts.items():
            pipe.set(PREFIX + "p:" + post_id, body)
        await pipe.execute()
    return len(posts)
