"""The application factory: routes, error handlers, middleware and the lifespan."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from solomo import observability
from solomo.api import ROUTE_MODULES
from solomo.core.errors import EXCEPTION_HANDLERS
from solomo.core.heap import freeze_startup_heap
from solomo.core.jsonio import JSONResponse
from solomo.core.settings import Settings, load_settings, require_secret_key
from solomo.http import routes_in
from solomo.middleware import ObservabilityMiddleware
from solomo.openapi import build_openapi
from solomo.routing import IndexedRouter, most_specific_first, with_method_guards
from solomo.services import open_services

log = logging.getLogger("solomo")

LIFECYCLE_HOOKS: list[str] = [
    "solomo.observability",
    "moderation.lifecycle",
    "solomo.realtime.lifecycle",
    "solomo.diagnostics",
]
"""Modules with ``async def start(app)`` / ``async def stop(app)``, run inside the lifespan
after the services open (the real-time hub, the word filter, the rate limiter …)."""


def collect_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in ROUTE_MODULES:
        routes.extend(routes_in(importlib.import_module(name)))
    return with_method_guards(most_specific_first(routes))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    require_secret_key(settings, "the API")
    routes = collect_routes()
    document: dict[str, Any] = {}

    async def openapi(request: Request) -> Response:
        if not document:
            document.update(build_openapi(routes))
        return JSONResponse(document)

    routes.append(Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.services = await open_services(settings)
        hooks = [importlib.import_module(name) for name in LIFECYCLE_HOOKS]
        started = []
        try:
            for hook in hooks:
                await hook.start(app)
                started.append(hook)
            log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
            yield
        finally:
            for hook in reversed(started):
                await hook.stop(app)
            await app.state.services.close()

    app = Starlette(lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.router = IndexedRouter(routes, lifespan=lifespan)  # before the first request builds the stack
    app.state.settings = settings
    observability.install(app, settings)
    app.add_middleware(ObservabilityMiddleware)
    return app
