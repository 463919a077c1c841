"""Thin-handler plumbing: parse and validate input, authenticate, shape the answer.

A handler is declared with :func:`endpoint`, which records its route and the models used for
validation, so that the app's routes (:func:`routes_in`) and the OpenAPI document
(:mod:`solomo.openapi`) are generated from the very same declaration::

    @endpoint("POST /v1/auth/register",
              body=RegisterIn, response=AuthOut, status=201, auth=None, summary="Register")
    async def register(ctx: Ctx) -> dict[str, Any]: ...

``auth`` is ``None`` (public), ``"any"`` (any signed-in account) or a tuple of roles.
``idempotent=True`` makes a write honour ``Idempotency-Key`` (see :mod:`solomo.core.idempotency`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from solomo.core import afterwards, idempotency
from solomo.core.errors import ApiError, BadRequest, Forbidden, Invalid, PayloadTooLarge
from solomo.core.jsonio import JSONResponse
from solomo.core.ratelimit import enforce

if TYPE_CHECKING:
    from solomo.accounts import Principal
    from solomo.core.services import Services

Auth = None | Literal["any"] | tuple[str, ...]
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
OPERATION_ID = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


@dataclass
class Ctx:
    """What a handler gets: the request, the app's services, the caller, parsed input."""

    request: Request
    services: Services
    principal: Principal | None
    body: Any = None
    query: Any = None
    path: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "endpoint declared auth=None"
        return self.principal


@dataclass
class EndpointSpec:
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: Auth
    tags: list[str]
    errors: dict[int, str]
    description: str = ""
    operation_id: str = ""
    """The OpenAPI ``operationId``: unique, stable snake_case (see :func:`endpoint`)."""
    method: str = "GET"
    path: str = "/"
    idempotent: bool = False
    """Accepts ``Idempotency-Key`` (:mod:`solomo.core.idempotency`)."""
    rate: str | None = None
    """The action of ``settings.rate_limits`` counted per caller (:mod:`solomo.core.ratelimit`)."""
    upload: str | None = None
    """The body is ``multipart/form-data`` with one file part of this name (read by the handler
    with :func:`read_upload`, after its own checks); documented as such in OpenAPI."""


def _format_errors(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        out.append({"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"], "type": err["type"]})
    return out


def validate_model(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("request is not valid", details=_format_errors(exc)) from None


def _refuse_declared_length(request: Request, limit: int, too_large: str) -> None:
    """400 for a ``Content-Length`` that is not ASCII digits (``str.isdigit`` alone takes "²", which
    ``int`` refuses), 413 for one over ``limit``: decided from the header before any body is read.
    A number longer than any limit's is too large without being converted."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.isascii() or not declared.isdigit():
        raise BadRequest("bad Content-Length")
    digits = declared.lstrip("0")
    if len(digits) > len(str(limit)) or int(digits or "0") > limit:
        raise PayloadTooLarge(too_large)


async def read_raw_body(request: Request, limit: int) -> bytes:
    """The body's bytes, refused unless JSON and at most ``limit`` bytes (counted as it arrives)."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise ApiError("send JSON with Content-Type: application/json",
                       status=415, code="unsupported_media_type")
    _refuse_declared_length(request, limit, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_body(raw: bytes, model: type[BaseModel]) -> Any:
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRequest("the request body is not valid JSON") from None
        raise Invalid("request is not valid", details=_format_errors(exc)) from None


def parse_query(request: Request, model: type[BaseModel]) -> Any:
    params = request.query_params
    data: dict[str, Any] = {}
    for key in params:
        values = params.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    return validate_model(model, data)


Handler = Callable[[Ctx], Awaitable[Any]]


def endpoint(
    route: str,
    *,
    summary: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: Auth = "any",
    tags: list[str] | None = None,
    errors: dict[int, str] | None = None,
    description: str = "",
    rate: str | None = None,
    operation_id: str | None = None,
    idempotent: bool = False,
    upload: str | None = None,
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """``route``: ``"METHOD /path/{param}"``, where the handler answers (:func:`routes_in` collects them).

    ``rate``: an action name from ``settings.rate_limits``, counted per caller after
    authentication (429 ``rate_limited`` with ``Retry-After``; see :mod:`solomo.core.ratelimit`).

    ``operation_id``: the OpenAPI ``operationId``; by default ``<first tag>_<handler name>``
    (``feeds_home``), so give one only where the handler's name reads badly in a client.

    ``idempotent``: a request with an ``Idempotency-Key`` header runs at most once per (caller,
    key) for 24 h; its repeats get the first answer (:mod:`solomo.core.idempotency`). Validation
    errors are answered before the key is looked at; the rate limit counts only runs, not replays.
    Such a route must declare ``rate``: it bounds the answers one caller can leave stored."""
    method, _, path = route.partition(" ")
    assert method in HTTP_METHODS and path.startswith("/"), f"route {route!r} is not 'METHOD /path'"
    spec = EndpointSpec(summary, body, query, response, status, auth, tags or [], errors or {}, description,
                        method=method, path=path, idempotent=idempotent, rate=rate, upload=upload)
    assert upload is None or body is None, "a route takes JSON or an upload, not both"
    if idempotent:
        assert auth is not None, "idempotency keys are per caller: the route must authenticate"
        # every request with a key keeps its answer a day, refusals (403, 404) included: without a
        # per-caller rate limit one account could grow the idempotency collection without bound
        assert rate is not None, "an idempotent route needs a per-caller rate limit (rate=...)"
        for code, error in ((409, "idempotency_in_progress"), (422, "idempotency_key_reused")):
            spec.errors[code] = ", ".join(filter(None, (spec.errors.get(code), error)))
    if rate is not None:
        assert auth is not None, "rate limits are per caller: the route must authenticate"
        spec.errors.setdefault(429, "rate_limited")

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        group = spec.tags[0] if spec.tags else handler.__module__.rpartition(".")[2]
        spec.operation_id = operation_id or f"{group}_{handler.__name__}"
        assert OPERATION_ID.fullmatch(spec.operation_id), f"operationId {spec.operation_id!r} is not snake_case"

        @functools.wraps(handler)
        async def asgi_endpoint(request: Request) -> Response:
            services: Services = request.app.state.services
            principal = None
            if auth is not None:
                principal = await services.authenticator.authenticate(request.headers.get("authorization"))
                if isinstance(auth, tuple) and principal.role not in auth:
                    raise Forbidden(f"this route is for {' or '.join(auth)} accounts")
            key = idempotency.parse_key(request.headers.get(idempotency.KEY_HEADER)) if idempotent else None
            if rate is not None and key is None:
                await enforce(services, rate, principal)
            ctx = Ctx(request, services, principal, path=dict(request.path_params))
            if query is not None:
                ctx.query = parse_query(request, query)
            raw = b""
            if body is not None:
                raw = await read_raw_body(request, services.settings.max_body_bytes)
                ctx.body = parse_json_body(raw, body)
            if key is None:
                return await answer(handler, ctx, status)

            async def run() -> Response:  # with a key, a run counts toward the rate limit, a replay does not
                if rate is not None:
                    await enforce(services, rate, principal)
                return await answer(handler, ctx, status)

            assert principal is not None
            once = idempotency.Request(principal.id, key,
                                       idempotency.fingerprint(method, path, request.url.path, raw))
            return await idempotency.run_once(services, once, run)

        asgi_endpoint.spec = spec  # type: ignore[attr-defined]
        return asgi_endpoint

    return wrap


async def answer(handler: Handler, ctx: Ctx, status: int) -> Response:
    """The handler's answer; the work it deferred (:func:`solomo.core.afterwards.after_response`)
    runs after the answer is sent, as the response's background task."""
    with afterwards.collecting() as jobs:
        response = as_response(await handler(ctx), status)
    if jobs:
        earlier = response.background

        async def then() -> None:
            if earlier is not None:
                await earlier()
            await afterwards.run_all(jobs)

        response.background = BackgroundTask(then)
    return response


def as_response(result: Any, status: int) -> Response:
    """A handler's result as its answer: a Response as is, ``None`` as no content, else JSON."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204 if status == 200 else status)
    return JSONResponse(result, status_code=status)


def routes_in(module: ModuleType) -> list[BaseRoute]:
    """The routes of a module's :func:`endpoint` handlers, in definition order, then its
    ``extra_routes`` (plain Starlette routes: files, the socket, health checks)."""
    found: list[BaseRoute] = []
    for value in vars(module).values():
        spec: EndpointSpec | None = getattr(value, "spec", None)
        if spec is not None and getattr(value, "__module__", None) == module.__name__:
            found.append(Route(spec.path, value, methods=[spec.method]))
    return found + list(getattr(module, "extra_routes", []))


UPLOAD_OVERHEAD_BYTES = 64 * 1024
"""What a multipart body may add to its file: boundaries, part headers, small other fields."""


async def read_upload(request: Request, part: str, limit: int) -> bytes:
    """The bytes of the ``multipart/form-data`` file part named ``part``, parsed as the body streams
    in: 413 as soon as the part passes ``limit`` bytes (or the body ``limit`` plus
    :data:`UPLOAD_OVERHEAD_BYTES`, or a declared Content-Length says it will), never buffering more;
    415 for another content type; 400 for a malformed body; 422 when the part is missing or repeated.
    Other parts are skipped (counted toward the body's limit)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise ApiError(f"send multipart/form-data with one part named {part!r}", status=415,
                       code="unsupported_media_type")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart body has no boundary")
    body_limit = limit + UPLOAD_OVERHEAD_BYTES
    _refuse_declared_length(request, body_limit, f"files are at most {limit} bytes")
    wanted = part.encode()
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "current": False, "found": 0, "size": 0}
    chunks: list[bytes] = []

    def on_part_begin() -> None:
        state["headers"], state["current"] = {}, False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if disposition.get(b"name") == wanted:
            state["found"] += 1
            if state["found"] > 1:
                raise Invalid(f"send one part named {part!r}, not several")
            state["current"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["current"]:
            state["size"] += end - start
            if state["size"] > limit:
                raise PayloadTooLarge(f"files are at most {limit} bytes")
            chunks.append(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data})
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > body_limit:
                raise PayloadTooLarge(f"files are at most {limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError:
        raise BadRequest("the multipart body is malformed") from None
    if not state["found"]:
        raise Invalid(f"a part named {part!r} is required")
    return b"".join(chunks)
