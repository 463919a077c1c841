"""A socket its client closes leaves nothing running in the server: the session stops the sender
task it started whoever ends the socket (found in the soak's API log, "Task was destroyed but it is
pending", once for every socket a client dropped: the pump was only reclaimed by the garbage
collector). The server runs in this process, on the suite's app, so its tasks can be seen."""

from __future__ import annotations

import asyncio

import uvicorn

from solomo.embedded import free_port
from tests.realtime.wsclient import open_ws
from tests.support import register, wait_until


def _pumps() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("ws-pump-") and not t.done()}


async def test_a_socket_its_client_closes_leaves_no_sender_behind(app, client):
    user = await register(client)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                           ws="websockets-sansio"))
    serving = asyncio.create_task(server.serve())
    try:
        async def started() -> bool:
            return bool(server.started)

        await wait_until(started)
        before = _pumps()
        for _ in range(3):
            ws = await open_ws(f"http://127.0.0.1:{port}", user.token)

            async def sending() -> bool:
                return len(_pumps() - before) == 1

            await wait_until(sending)
            await ws.close()  # the client's close: the server hears it (not one it sent)

            async def stopped() -> bool:
                return not (_pumps() - before)

            await wait_until(stopped, timeout=5)
    finally:
        server.should_exit = True
        await serving
