"""One client socket as the hub sees it: frames written at once while the socket keeps up, a
bounded queue behind a send that has to wait.

The hub hands frames over with :meth:`Connection.deliver`, which never waits. A frame for an
idle socket is written there and then (:mod:`solomo.realtime.eager`: no task, no queue, no
wake-up per frame). When a write has to wait (the client reads slower than we send and the
transport paused), a task finishes it and then writes the frames queued behind it, in order; when
that queue is full the client cannot keep up, so the connection is finished (closed with 4408)
instead of slowing anyone else down. While a resume replay runs, live frames are parked in
``pending`` and released by :meth:`go_live`, skipping what the replay already sent.

Metrics: an event counts as delivered when it is handed to the socket — written, or queued behind
a write that waits (``EVENTS_DELIVERED``, by type); one that a socket cannot take is dropped
(``EVENTS_DROPPED``, by reason: ``closed``, ``slow_client``, ``resume_overflow``) and the client
gets it back by resuming; every close for slowness counts in ``SLOW_CLIENT_CLOSES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from starlette.websockets import WebSocket

from solomo.core.closecodes import TOO_SLOW
from solomo.core.metrics import EVENTS_DELIVERED, EVENTS_DROPPED, SLOW_CLIENT_CLOSES
from solomo.realtime import eager

log = logging.getLogger("solomo.realtime")

EventKey = tuple[int, int]
_TYPE_FIELD = '"type":"'


def frame_type(frame: str) -> str:
    """The ``type`` of an event frame (``{"id":…,"type":"…","data":…}``) without parsing the JSON."""
    start = frame.find(_TYPE_FIELD)
    if start < 0:
        return "unknown"
    start += len(_TYPE_FIELD)
    end = frame.find('"', start)
    return frame[start:end] if 0 < end - start <= 40 else "unknown"


class Connection:
    def __init__(self, ws: WebSocket, user_id: str, queue_size: int, *, live: bool = True, slot: str = "") -> None:
        self.ws = ws
        self.user_id = user_id
        self.slot = slot
        """``{process id}|{socket id}``: its place in the user's cap (:mod:`solomo.realtime.slots`)."""
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.done = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""
        self.live = live
        self.peer_closed = False
        self.pending: list[tuple[EventKey, str]] = []
        self.floor: EventKey | None = None
        """The last id a resume replay sent: pub/sub can lag behind the history read, so a live
        frame at or below it is one the client already has (ids only grow per user)."""
        self._pending_cap = queue_size * 4
        self._started = False
        self._writer: asyncio.Task[None] | None = None
        """The task finishing a write that had to wait (and the frames queued behind it), if any."""
        self.token_hash: str | None = None
        """sha256 of the token the socket was opened with, so logging out closes it."""

    # -- called by the hub (synchronous, never blocks) ------------------------------------------
    def deliver(self, key: EventKey, frame: str) -> bool:
        """Hand over one event; True when it was queued now (the hub counts those as delivered);
        a parked one is counted when :meth:`go_live` releases it."""
        if self.done.is_set():
            EVENTS_DROPPED.labels(reason="closed").inc()
            return False
        if self.floor is not None and key <= self.floor:
            return False
        if not self.live:
            self.pending.append((key, frame))
            if len(self.pending) > self._pending_cap:
                EVENTS_DROPPED.labels(reason="resume_overflow").inc(len(self.pending))
                self.pending = []
                self.finish(TOO_SLOW, "too many events while resuming")
            return False
        if self.send(frame):
            return True
        EVENTS_DROPPED.labels(reason="slow_client").inc()
        return False

    def send(self, frame: str) -> bool:
        """Write a frame now if the socket is idle, else queue it behind the write in progress; a
        full queue finishes the connection (the client is too slow)."""
        if self.done.is_set():
            return False
        if self._started and self._writer is None:
            try:
                rest = eager.run(self.ws.send_text(frame))
            except Exception:  # the peer went away: the frame is lost with the socket (the client resumes)
                self.finish(1006, "send failed")
                return True
            if rest is not None:  # the transport is paused: a task finishes this write, then the queue
                self._writer = asyncio.create_task(self._drain(rest), name=f"ws-send-{self.user_id}")
            return True
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.finish(TOO_SLOW, "client too slow")
            return False
        return True

    async def _drain(self, waiting: Awaitable[None] | None) -> None:
        """Finish the write that had to wait (if any), then write whatever queued behind it."""
        queue, send = self.queue, self.ws.send_text
        try:
            if waiting is not None:
                await waiting
            while not queue.empty():
                await send(queue.get_nowait())
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-send
            self.finish(1006, "send failed")
        finally:
            self._writer = None

    def finish(self, code: int, reason: str = "") -> None:
        """Ask for the socket to close; the session closes it and leaves the hub."""
        if not self.done.is_set():
            self.close_code, self.close_reason = code, reason
            self.done.set()
            if code == TOO_SLOW:
                SLOW_CLIENT_CLOSES.inc()

    # -- called by the session ----------------------------------------------------------------
    async def send_wait(self, frame: str) -> None:
        """Send a frame, waiting for room in the queue (used by the replay, which the client paces)."""
        while self._writer is not None and self.queue.full() and not self.done.is_set():
            await asyncio.wait([self._writer])
        self.send(frame)

    def go_live(self, after: EventKey | None) -> None:
        """Release frames parked during replay, skipping those at or before ``after``."""
        parked, self.pending = self.pending, []
        self.live = True
        self.floor = after
        for key, frame in parked:
            if after is None or key > after:
                if self.send(frame):
                    EVENTS_DELIVERED.labels(type=frame_type(frame)).inc()
                else:
                    EVENTS_DROPPED.labels(reason="slow_client" if self.close_code == TOO_SLOW else "closed").inc()

    def start(self) -> None:
        """The socket is open (accepted): send what queued before, and from now on write at once."""
        self._started = True
        if self._writer is None and not self.queue.empty():
            self._writer = asyncio.create_task(self._drain(None), name=f"ws-send-{self.user_id}")

    async def stop_sending(self) -> None:
        """Stop sending. Every session ends with it, the peer's own close included: a sender task
        left waiting was only reclaimed by the garbage collector ("Task was destroyed but it is
        pending", seen in the soak's API log for each socket its client dropped)."""
        self._started = False
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def close(self, timeout: float = 5.0) -> None:
        """Stop sending and send the close frame (bounded: a stuck peer cannot hold us)."""
        await self.stop_sending()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self.ws.close(self.close_code, self.close_reason[:120])
