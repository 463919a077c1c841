"""How a socket's frames are written (:class:`solomo.realtime.connection.Connection`): at once,
in the caller's turn, while the socket keeps up; behind a write that has to wait, queued in order
and bounded; stopped when the session ends. The socket is a stand-in with the ASGI send's one
property that matters here: ``send_text`` waits only while its transport is paused (``gate``)."""

from __future__ import annotations

import asyncio

from solomo.core.closecodes import TOO_SLOW
from solomo.realtime.connection import Connection


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False
        self.closed: tuple[int, str] | None = None

    async def send_text(self, text: str) -> None:
        await self.gate.wait()  # returns at once while set, like uvicorn's ``writable``
        if self.fail:
            raise OSError("connection reset")
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def _open(queue_size: int = 8) -> tuple[Connection, _Socket]:
    sock = _Socket()
    conn = Connection(sock, "u1", queue_size)  # type: ignore[arg-type]  # the stand-in above
    conn.start()
    return conn, sock


def _senders() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ws-send-") and not t.done()]


async def test_a_frame_for_an_idle_socket_is_written_before_send_returns():
    conn, sock = _open()
    for n in range(3):
        assert conn.send(f"f{n}")
        assert sock.sent == [f"f{i}" for i in range(n + 1)]  # no await in between: written in this turn
    assert not _senders() and conn.queue.empty()


async def test_a_burst_bigger_than_the_queue_does_not_close_a_client_that_keeps_up():
    """One pub/sub message can carry many events for one user (a ``publish_each``): with a sender
    task per socket they all queued in the hub's turn, and more than the queue's size closed even
    a client that reads everything at once."""
    conn, sock = _open(queue_size=8)
    for n in range(40):
        assert conn.send(f"f{n}")
    assert not conn.done.is_set() and len(sock.sent) == 40


async def test_frames_behind_a_write_that_waits_are_queued_then_written_in_order():
    conn, sock = _open()
    sock.gate.clear()  # the client stopped reading: the transport is paused
    assert conn.send("a") and conn.send("b") and conn.send("c")
    assert sock.sent == [] and conn.queue.qsize() == 2
    [sender] = _senders()
    sock.gate.set()
    await asyncio.wait_for(sender, 5)
    assert sock.sent == ["a", "b", "c"] and conn.queue.empty()
    assert conn.send("d") and sock.sent[-1] == "d"  # idle again: written at once
    assert not conn.done.is_set()


async def test_a_client_that_cannot_keep_up_is_closed_and_its_queue_stays_bounded():
    conn, sock = _open(queue_size=2)
    sock.gate.clear()
    assert conn.send("a") and conn.send("b") and conn.send("c")
    assert not conn.send("d")
    assert conn.done.is_set() and conn.close_code == TOO_SLOW
    assert conn.queue.qsize() == 2
    await conn.close(timeout=1)
    assert not _senders() and sock.sent == [] and sock.closed == (TOO_SLOW, "client too slow")


async def test_closing_stops_a_write_that_waits():
    conn, sock = _open()
    sock.gate.clear()
    conn.send("a")
    [sender] = _senders()
    conn.finish(4401, "token revoked")
    await conn.close(timeout=1)
    assert sender.cancelled() and not _senders()
    assert sock.closed == (4401, "token revoked") and sock.sent == []


async def test_frames_handed_over_before_the_socket_opens_go_first():
    sock = _Socket()
    conn = Connection(sock, "u1", 8)  # type: ignore[arg-type]
    assert conn.send("early1") and conn.send("early2")
    assert sock.sent == []  # not accepted yet: nothing may be written
    conn.start()
    conn.send("later")  # behind them, however the early ones are written
    for sender in _senders():
        await asyncio.wait_for(sender, 5)
    assert sock.sent == ["early1", "early2", "later"]
    conn.send("idle")
    assert sock.sent[-1] == "idle"  # then at once again


async def test_a_failed_write_finishes_the_connection():
    conn, sock = _open()
    sock.fail = True
    conn.send("a")
    assert conn.done.is_set() and conn.close_code == 1006
    assert not conn.send("b")


async def test_the_replay_waits_for_room_instead_of_closing_the_socket():
    conn, sock = _open(queue_size=2)
    sock.gate.clear()
    conn.send("live")
    replay = asyncio.create_task(_replay(conn, [f"r{n}" for n in range(6)]))
    await asyncio.sleep(0.05)
    assert not replay.done() and not conn.done.is_set()  # paced by the client, not closed
    sock.gate.set()
    await asyncio.wait_for(replay, 5)
    for sender in _senders():
        await asyncio.wait_for(sender, 5)
    assert sock.sent == ["live", *(f"r{n}" for n in range(6))]


async def _replay(conn: Connection, frames: list[str]) -> None:
    for frame in frames:
        await conn.send_wait(frame)
