"""The contract's error body, ``{"error": {"code", "message", "details"?}}``, and its handlers.

Domain code raises :class:`ApiError` (or a subclass); the app turns it, and every other
failure, into that body. Nothing a client sends may surface as a 500 with a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from redis.exceptions import AskError, ClusterError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from solomo.core.jsonio import JSONResponse

log = logging.getLogger("solomo.core.errors")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 410: "gone", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid", 429: "rate_limited", 503: "unavailable",
}


class ApiError(Exception):
    """An error a client can cause or observe; carries the contract's status and code."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Gone(ApiError):
    status, code = 410, "gone"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class Invalid(ApiError):
    status, code = 422, "invalid"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))


class Unavailable(ApiError):
    status, code = 503, "unavailable"


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    log.warning("backing store unavailable: %s", exc)
    return error_response(503, "unavailable", "a backing service is unavailable; retry shortly",
                          {"Retry-After": "2"})


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """A MongoDB failure no domain code handled (say, a primary stepping down mid-write): the
    client can retry, so 503 — logged with its stack so a real bug stays visible."""
    log.error("unhandled MongoDB error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(503, "unavailable", "the database is unavailable; retry shortly", {"Retry-After": "2"})


def _raised_in_redis_client(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside redis-py itself (its innermost frame is there)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith("redis.")


async def redis_client_failure_handler(request: Request, exc: Exception) -> Response:
    """redis-py's cluster client, refreshing its view after a failover, closes every connection, also
    one another request is using: that request fails with "'NoneType' object has no attribute
    'writelines'" instead of a ConnectionError (redis-py 8). Transient: 503. An AttributeError
    raised anywhere else is a bug, re-raised to :func:`unexpected_handler` (500)."""
    if not _raised_in_redis_client(exc):
        raise exc
    log.warning("Redis connection closed under a command on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "unavailable", "a backing service is unavailable; retry shortly", {"Retry-After": "2"})


async def unexpected_handler(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error")


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    ConnectionFailure: unavailable_handler,
    ServerSelectionTimeoutError: unavailable_handler,
    PyMongoError: database_error_handler,
    RedisConnectionError: unavailable_handler,
    RedisTimeoutError: unavailable_handler,
    # a Redis Cluster while slots move (a master died, its replica not yet promoted): CLUSTERDOWN,
    # a slot no live master serves, TRYAGAIN, redirections that did not settle within the client's
    # retries ("TTL exhausted" is a ClusterError; MOVED/ASK are AskError) — all pass in seconds
    ClusterError: unavailable_handler,
    SlotNotCoveredError: unavailable_handler,
    TryAgainError: unavailable_handler,
    AskError: unavailable_handler,
    AttributeError: redis_client_failure_handler,
    Exception: unexpected_handler,
}
