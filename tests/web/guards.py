"""Preconditions of the end-to-end stories: the routes they drive must be served.

``require_route`` asks the route without a token: a route that exists answers 401 (every /v1
route but register and login needs one) — 404 or 405 means it is missing, and the story fails
at once with that message instead of somewhere deep in the browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

PLACEHOLDER_ID = "0" * 24


async def require_route(client: Any, method: str, path: str) -> None:
    path = path.replace("{id}", PLACEHOLDER_ID)
    resp = await client.request(method, path)
    if resp.status_code in (404, 405):
        pytest.fail(f"{method} {path} answers {resp.status_code}: route missing")


async def require_routes(client: Any, *routes: str) -> None:
    for spec in routes:
        method, _, path = spec.partition(" ")
        await require_route(client, method, path)


async def websocket_refusal(base_url: str, token: str) -> str | None:
    """Why the socket endpoint refuses a valid token's handshake, or None when it accepts."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    url = base_url.replace("http://", "ws://") + "/v1/ws?" + urlencode({"token": token})
    try:
        async with connect(url, open_timeout=5, close_timeout=1):
            return None
    except InvalidStatus as exc:
        return f"/v1/ws refused the handshake ({exc.response.status_code})"


async def require_websocket(base_url: str, token: str) -> None:
    """The socket endpoint with a valid token must accept the handshake."""
    refusal = await websocket_refusal(base_url, token)
    if refusal:
        pytest.fail(refusal)
