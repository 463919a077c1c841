"""Service routes, OpenAPI, the worker, and the embedded servers."""

from __future__ import annotations

import uuid

from solomo.core import tasknames
from tests.support import wait_until


async def test_health_ready(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200


async def test_openapi_documents_every_route(client, app):
    from starlette.routing import Route

    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for route in app.routes:
        if isinstance(route, Route) and route.include_in_schema and hasattr(route.endpoint, "spec"):
            for method in route.methods - {"HEAD"}:
                assert method.lower() in doc["paths"][route.path], (route.path, method)


async def test_worker_consumes(services, celery_worker):
    key = f"ping:{uuid.uuid4().hex}"
    await services.tasks.send(tasknames.PING, key)

    async def done():
        return await services.redis.get(key)

    assert await wait_until(done) == "pong"
