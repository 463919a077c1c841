"""A WebSocket client process for the push benchmark: holds its share of the sockets.

``python -m benchmarks.push_clients`` reads one JSON command per line on stdin and answers one
JSON line on stdout:

* ``{"op": "open", "urls": [...]}`` — opens a socket per URL → ``{"opened": n}``;
* ``{"op": "arm", "match": TEXT}`` — from now on every socket waits for its first frame containing
  ``TEXT`` → ``{"armed": n}``;
* ``{"op": "collect", "timeout": S}`` — waits (at most S seconds) until every armed socket has its
  frame → ``{"arrived": [t, ...], "missing": m, "frame_bytes": b}``, where ``t`` is the
  ``time.perf_counter()`` of each arrival: CLOCK_MONOTONIC, the same clock in every process on
  the machine, so the parent subtracts its own start time;
* ``{"op": "send", "text": TEXT}`` — sends TEXT on the first socket → ``{"sent": true}``;
* ``{"op": "close"}`` — drops every socket → ``{"closed": n}``; end of input ends the process.

Several of these processes share the sockets, so a client-bound run shows in their CPU (the
parent reads each one's CPU time) instead of hiding in one saturated process.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

CONNECT_PARALLEL = 100


class Holder:
    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.waiting: list[asyncio.Task[float | None]] = []
        self.frame_bytes = 0

    async def open(self, urls: list[str]) -> dict[str, Any]:
        from websockets.asyncio.client import connect

        sem = asyncio.Semaphore(CONNECT_PARALLEL)

        async def one(url: str) -> Any:
            async with sem:
                return await connect(url, proxy=None, compression=None, open_timeout=120, ping_interval=None,
                                     max_queue=64)

        self.sockets += await asyncio.gather(*(one(u) for u in urls))
        return {"opened": len(self.sockets)}

    def arm(self, match: str) -> dict[str, Any]:
        async def first(ws: Any) -> float | None:
            while True:
                frame = await ws.recv()
                if match in frame:
                    self.frame_bytes = len(frame)
                    return time.perf_counter()

        self.waiting = [asyncio.create_task(first(ws)) for ws in self.sockets]
        return {"armed": len(self.waiting)}

    async def collect(self, timeout: float) -> dict[str, Any]:
        done, pending = await asyncio.wait(self.waiting, timeout=timeout) if self.waiting else (set(), set())
        for task in pending:
            task.cancel()
        arrived = [t for task in done if not task.cancelled() and task.exception() is None
                   and (t := task.result()) is not None]
        self.waiting = []
        return {"arrived": arrived, "missing": len(self.sockets) - len(arrived), "frame_bytes": self.frame_bytes}

    async def send(self, text: str) -> dict[str, Any]:
        await self.sockets[0].send(text)
        return {"sent": True}

    async def close(self) -> dict[str, Any]:
        n = len(self.sockets)
        for ws in self.sockets:
            ws.transport.abort()
        self.sockets = []
        await asyncio.sleep(0.2)
        return {"closed": n}


async def serve() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holder = Holder()
    while line := await asyncio.to_thread(sys.stdin.readline):
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "open":
            reply = await holder.open(cmd["urls"])
        elif op == "arm":
            reply = holder.arm(cmd["match"])
        elif op == "collect":
            reply = await holder.collect(float(cmd["timeout"]))
        elif op == "send":
            reply = await holder.send(cmd["text"])
        elif op == "close":
            reply = await holder.close()
        else:
            reply = {"error": f"unknown op {op!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    await holder.close()


if __name__ == "__main__":
    asyncio.run(serve())
