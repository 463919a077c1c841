"""The error handlers' view of Redis client failures that are not a ``ConnectionError``: redis-py's
cluster errors (CLUSTERDOWN, TRYAGAIN, an uncovered slot, redirections that do not settle) and the
AttributeError its cluster client raises when a failover's topology refresh closes a connection
another request is using. Both are 503 ``unavailable``; an AttributeError of our own stays a 500.

The cluster drill (test_cluster_failover.py) meets these on a real cluster; here each is raised on
purpose, so the mapping is checked every run (the drill meets the AttributeError only by chance)."""

from __future__ import annotations

import httpx2
import pytest
from redis.asyncio import Connection
from redis.exceptions import ClusterDownError, ClusterError, MovedError, SlotNotCoveredError, TryAgainError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from solomo.core.errors import EXCEPTION_HANDLERS

RAISED = {
    "clusterdown": ClusterDownError("The cluster is down"),
    "ttl": ClusterError("TTL exhausted."),
    "tryagain": TryAgainError("Multiple keys request during rehashing of slot"),
    "uncovered": SlotNotCoveredError('Slot "42" is not covered by the cluster.'),
    "moved": MovedError("3999 127.0.0.1:6381"),
}


async def _raise(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind == "closed":  # a real redis-py connection whose stream is gone, as after a topology refresh
        await Connection(host="127.0.0.1", port=1)._send_packed_command([b"PING\r\n"])
    if kind == "ours":
        None.attribute  # type: ignore[attr-defined]  # noqa: B018  # a bug of ours
    raise RAISED[kind]


@pytest.fixture
async def http():
    app = Starlette(routes=[Route("/{kind}", _raise)], exception_handlers=EXCEPTION_HANDLERS)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app, raise_app_exceptions=False),
                                  base_url="http://t") as client:
        yield client


@pytest.mark.parametrize("kind", [*RAISED, "closed"])
async def test_redis_client_failures_are_unavailable(http, kind):
    resp = await http.get(f"/{kind}")
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "unavailable"
    assert resp.headers["Retry-After"] == "2"


async def test_an_attribute_error_of_ours_is_still_a_500(http):
    resp = await http.get("/ours")
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal"
