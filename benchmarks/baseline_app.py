"""The yardstick: a bare Starlette JSON endpoint under the same uvicorn settings as the API.

``POST /echo`` parses a JSON body and answers 201 with a small JSON document, so a request costs
what the framework, the HTTP server and JSON cost — nothing else. A benchmark's ratio
``ours / baseline`` says how much of that ceiling the real endpoint keeps.
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(orjson.dumps({"ok": True, "keys": sorted(body)}), status_code=201,
                    media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/readyz", ready, methods=["GET"])])
