"""A socket its client drops leaves nothing running in the server: frames are written at once
while the socket keeps up, and a write that has to wait (the client stopped reading) continues in
a sender task, which the session stops whoever ends the socket (found in the soak's API log,
"Task was destroyed but it is pending", once for every socket a client dropped: the sender was
only reclaimed by the garbage collector). The server runs in this process, on the suite's app, so
its tasks can be seen."""

from __future__ import annotations

import asyncio

import uvicorn

from solomo.embedded import free_port
from tests.realtime.wsclient import open_ws, recv_type
from tests.support import register, wait_until


def _senders() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("ws-send-") and not t.done()}


async def test_a_socket_its_client_drops_mid_send_leaves_no_sender_behind(app, client, services):
    user = await register(client)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                           ws="websockets-sansio"))
    serving = asyncio.create_task(server.serve())
    try:
        async def started() -> bool:
            return bool(server.started)

        await wait_until(started)
        before = _senders()
        blob = "x" * 16000
        for _ in range(3):
            ws = await open_ws(f"http://127.0.0.1:{port}", user.token, rcvbuf=4096, max_queue=1)
            await ws.send('{"type":"ping"}')
            await recv_type(ws, "pong")  # open and answering; it reads nothing from now on

            async def waiting() -> bool:  # events until a write has to wait for the client
                await services.events.publish([user.id], "feed.new", {"blob": blob})
                return bool(_senders() - before)

            await wait_until(waiting, timeout=30, interval=0.01)
            assert ws.transport is not None
            ws.transport.abort()  # the client is gone mid-send

            async def stopped() -> bool:
                return not (_senders() - before)

            await wait_until(stopped, timeout=5)
    finally:
        server.should_exit = True
        await serving
