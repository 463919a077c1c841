"""The HTTP middleware: each request's id, its access line and its latency series.

A module of its own so that it is compiled with the hot modules (:mod:`solomo.core.compiled`):
``solomo.observability`` defines the ``/metrics`` endpoint, whose signature Starlette reads, and a
compiled function has none. The access line itself is made by :func:`solomo.observability.log_access`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.routing import Mount, Route

from solomo.core import httpseries
from solomo.observability import (
    KNOWN_METHODS,
    OTHER_METHOD,
    REQUEST_ID_HEADER,
    UNMATCHED_ROUTE,
    _request_id,
    log,
    log_access,
    request_id_from,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template (a bounded label), or ``<unmatched>``."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return route.path + "/{path}"
    if isinstance(route, Route):
        prefix = str(scope.get("root_path", ""))[len(root_path):]
        return prefix + route.path
    return UNMATCHED_ROUTE


def method_label(method: str) -> str:
    """A known HTTP method, or ``other``: a client choosing the method must not choose new series."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()


class ObservabilityMiddleware:
    """Request id, access log line, latency histogram and status counter for each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                token = _request_id.set(request_id_from(_header(scope, _REQUEST_ID_KEY)))
                try:
                    await self.app(scope, receive, send)
                finally:
                    _request_id.reset(token)
                return
            await self.app(scope, receive, send)
            return

        rid = request_id_from(_header(scope, _REQUEST_ID_KEY))
        token = _request_id.set(rid)
        root_path = str(scope.get("root_path", ""))
        start = time.perf_counter()
        status = 500
        finished = False
        answered_at: float | None = None  # the last byte of the answer sent

        async def send_wrapper(message: Message) -> None:
            nonlocal status, finished, answered_at
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _REQUEST_ID_KEY]
                headers.append((_REQUEST_ID_KEY, rid.encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
                await send(message)
                answered_at = time.perf_counter()
                return
            await send(message)

        httpseries.SERVING.requests += 1
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500
            raise
        finally:
            httpseries.SERVING.requests -= 1
            # the latency is the answer's: work the response runs after it (solomo.core.afterwards)
            # is not what the client waited for
            elapsed = (answered_at if answered_at is not None else time.perf_counter()) - start
            route = route_template(scope, root_path)
            method = str(scope.get("method", "GET"))
            httpseries.series(method_label(method), route).count(status, elapsed)
            if log.isEnabledFor(logging.INFO):
                log_access(method, scope.get("path", ""), status, route, round(elapsed * 1000, 3), finished)
            _request_id.reset(token)


def _header(scope: Scope, key: bytes) -> str | None:
    """A request header's value by its name in lowercase bytes (ASGI servers give header names in
    lowercase: so does Starlette's ``Headers`` read them)."""
    for name, value in scope.get("headers", ()):
        if name == key:
            return str(value.decode("latin-1"))
    return None
