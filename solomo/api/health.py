"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from solomo.core.errors import error_response
from solomo.core.jsonio import JSONResponse


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = request.app.state.services
    try:
        async with asyncio.timeout(2):
            await services.db.command("ping")
            await services.redis.ping()
    except Exception as exc:  # any failure of either store means "not ready"
        return error_response(503, "unavailable", f"not ready: {type(exc).__name__}")
    return JSONResponse({"status": "ok"})


extra_routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
