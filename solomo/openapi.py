"""The OpenAPI 3.1 document, generated from the same pydantic models that validate requests."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import BaseRoute, Route

from solomo import __version__
from solomo.api.models import ErrorOut
from solomo.core import idempotency
from solomo.http import EndpointSpec

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")

_STATIC_DOCS: dict[tuple[str, str], dict[str, Any]] = {
    ("/healthz", "get"): {"summary": "Liveness", "tags": ["service"], "operationId": "service_healthz",
                          "responses": {"200": {"description": "The process runs"}}},
    ("/readyz", "get"): {"summary": "Readiness: MongoDB and Redis answer", "tags": ["service"],
                         "operationId": "service_readyz",
                         "responses": {"200": {"description": "Ready"},
                                       "503": {"description": "Not ready", "content": {"application/json": {
                                           "schema": {"$ref": "#/components/schemas/ErrorOut"}}}}}},
}

IDEMPOTENCY_KEY_PARAM: dict[str, Any] = {
    "name": idempotency.KEY_HEADER, "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": idempotency.KEY_PATTERN},
    "description": "Any value of 1..64 printable ASCII characters, new for each new write. Repeating the "
                   "request with the same key within 24 hours returns its first answer (same status and body, "
                   f"header `{idempotency.REPLAYED_HEADER}: true`) and writes nothing again; the same key "
                   "with another body or route is 422 idempotency_key_reused; while the first request still "
                   "runs a repeat waits a few seconds, then answers 409 idempotency_in_progress.",
}

_ERROR_TEXT = {
    400: "Bad request", 401: "Missing, invalid or revoked token", 403: "Not allowed for this account",
    404: "Not found", 409: "Conflict", 410: "Gone", 413: "Body too large", 415: "Not JSON",
    422: "Invalid input", 429: "Rate limited (see Retry-After)", 503: "A backing service is unavailable",
}


def _collect(routes: list[BaseRoute]) -> list[tuple[str, str, Any]]:
    out = []
    for route in routes:
        if isinstance(route, Route) and route.methods and route.include_in_schema:
            for method in sorted(route.methods - {"HEAD"}):
                out.append((route.path, method.lower(), route.endpoint))
    return out


def _check_unique_operation_ids(paths: dict[str, dict[str, Any]]) -> None:
    """Clients generate one function per operationId: two operations must never share one."""
    seen: dict[str, str] = {}
    for path, ops in paths.items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            other = seen.setdefault(op["operationId"], where)
            if other != where:
                raise ValueError(f"operationId {op['operationId']!r} of {where} is also that of {other}")


def build_openapi(routes: list[BaseRoute]) -> dict[str, Any]:
    ops = _collect(routes)
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorOut, "serialization"): None}
    for _, _, ep in ops:
        spec: EndpointSpec | None = getattr(ep, "spec", None)
        if spec is None:
            continue
        uses: tuple[tuple[type[BaseModel] | None, JsonSchemaMode], ...] = (
            (spec.body, "validation"), (spec.query, "validation"), (spec.response, "serialization"))
        for model, mode in uses:
            if model is not None:
                models[(model, mode)] = None
    keyed, defs = models_json_schema(list(models), ref_template=REF)
    schemas = dict(defs.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(keyed[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for path, method, ep in ops:
        spec = getattr(ep, "spec", None)
        if spec is None:
            if (path, method) in _STATIC_DOCS:
                paths.setdefault(path, {})[method] = _STATIC_DOCS[(path, method)]
            continue
        op: dict[str, Any] = {"summary": spec.summary, "tags": spec.tags, "operationId": spec.operation_id}
        if spec.description:
            op["description"] = spec.description
        params = [{"name": m.group(1), "in": "path", "required": True, "schema": {"type": "string"}}
                  for m in _PARAM.finditer(path)]
        if spec.idempotent:
            params.append(IDEMPOTENCY_KEY_PARAM)
        if spec.query is not None:
            qschema = spec.query.model_json_schema(ref_template=REF, mode="validation")
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
            schemas.update(qschema.get("$defs", {}))
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": ref(spec.body, "validation")}}}
        if spec.upload is not None:
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": [spec.upload],
                "properties": {spec.upload: {"type": "string", "format": "binary"}}}}}}
        ok: dict[str, Any] = {"description": "OK" if spec.status < 300 else "Done"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": ref(spec.response, "serialization")}}
        responses: dict[str, Any] = {str(spec.status): ok}
        codes = {400, 404, 422, 503} | set(spec.errors)
        if spec.body is not None or spec.upload is not None:
            codes |= {413, 415}
        if spec.auth is not None:
            codes |= {401}
            op["security"] = [{"bearerAuth": []}]
        if isinstance(spec.auth, tuple):
            codes |= {403}
            op["x-roles"] = list(spec.auth)  # only these roles; any other account gets 403
        for code in sorted(codes):
            text = "Unsupported media type" if code == 415 and spec.upload else _ERROR_TEXT.get(code, "Error")
            if code in spec.errors:
                text = f"{text}: {spec.errors[code]}"
            responses[str(code)] = {"description": text, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        op["responses"] = responses
        paths.setdefault(_PARAM.sub(lambda m: "{" + m.group(1) + "}", path), {})[method] = op
    _check_unique_operation_ids(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SoLoMo API", "version": __version__,
                 "description": "Social-local-mobile check-ins, feeds, offers and moderation. "
                                "Real time: WebSocket `/v1/ws?token=…[&last_event_id=…]`."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }
