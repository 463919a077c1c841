"""The yardstick: a bare Starlette JSON endpoint under the same uvicorn settings as the API.

``POST /echo`` parses a JSON body and answers 201 with a small JSON document; ``GET /echo`` answers
200 with its query parameters as JSON; ``POST /upload`` receives a ``multipart/form-data`` body
through Starlette's own form parser (the media upload's yardstick), drops the file and answers
201 with its size. A request costs what the framework, the HTTP server and
JSON cost — nothing else (no auth, no database). A benchmark's ratio
``ours / baseline`` says how much of that ceiling the real endpoint keeps.

Like the API, it answers an incoming ``X-Request-ID`` with the same header: the load generator
that sends each request once matches answers to requests by it (``benchmarks.wrk``).
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _request_id(request: Request) -> dict[str, str] | None:
    rid = request.headers.get("x-request-id")
    return {"x-request-id": rid} if rid else None


async def echo(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(orjson.dumps({"ok": True, "keys": sorted(body)}), status_code=201,
                    media_type="application/json", headers=_request_id(request))


async def echo_query(request: Request) -> Response:
    return Response(orjson.dumps({"ok": True, "query": dict(request.query_params)}), media_type="application/json",
                    headers=_request_id(request))


async def upload(request: Request) -> Response:
    # parsed like any Starlette form (the file part spools to a temporary file), then discarded
    async with request.form(max_part_size=16 * 1024 * 1024) as form:
        part = form.get("file")
        size = part.size if isinstance(part, UploadFile) else None
    return Response(orjson.dumps({"ok": size is not None, "bytes": size}), status_code=201 if size else 422,
                    media_type="application/json", headers=_request_id(request))


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/echo", echo_query, methods=["GET"]),
                        Route("/upload", upload, methods=["POST"]), Route("/readyz", ready, methods=["GET"])])
