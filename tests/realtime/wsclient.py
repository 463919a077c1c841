"""Real WebSocket clients (the `websockets` library) against a real uvicorn process."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


def ws_url(base_url: str, token: str | None, last_event_id: str | None = None) -> str:
    params: dict[str, str] = {}
    if token is not None:
        params["token"] = token
    if last_event_id is not None:
        params["last_event_id"] = last_event_id
    return base_url.replace("http://", "ws://") + "/v1/ws" + ("?" + urlencode(params) if params else "")


async def open_ws(base_url: str, token: str | None, last_event_id: str | None = None, *,
                  rcvbuf: int | None = None, max_queue: int = 1024) -> ClientConnection:
    sock = None
    if rcvbuf is not None:
        host, port = base_url.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await connect(ws_url(base_url, token, last_event_id), proxy=None, compression=None,
                         max_queue=max_queue, sock=sock, open_timeout=10)


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


async def recv_type(ws: ClientConnection, type: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame of ``type`` (skipping others)."""
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == type:
                return msg


async def quiet_for(ws: ClientConnection, seconds: float, type: str | None = None) -> list[dict[str, Any]]:
    """Frames (of ``type``, if given) that arrive within ``seconds``; tests assert this is empty."""
    got: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                msg = json.loads(await ws.recv())
                if type is None or msg.get("type") == type:
                    got.append(msg)
    except TimeoutError:
        pass
    return got


async def close_code(ws: ClientConnection, timeout: float = 5.0) -> tuple[int | None, list[str]]:
    """Waits for the server to close; returns its close code and any frames received first."""
    frames: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(await ws.recv())
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), frames

