"""Run a coroutine now, in the caller's turn, and give it a task only if it has to wait.

Python 3.12's eager tasks (``asyncio.eager_task_factory``) do this for every task; on 3.11 this
module does it for the one place that needs it: a frame handed to an idle socket
(:mod:`solomo.realtime.connection`). Writing a WebSocket frame almost never waits — the ASGI
``send`` encodes it and calls the transport's ``write`` — yet a sender task's turn for each frame
(a queue wake-up, a future, ``call_soon``, a task step) was about a fifth of the API's samples on
a 10,000-socket offer. Only when the transport is paused (the client reads slower than we write)
does the send wait; then, and only then, a task takes the coroutine over from where it stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


def run(coro: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run ``coro`` until it finishes or first waits. None: it finished (an exception it raised
    before waiting propagates here); otherwise an awaitable for the rest of it, for a task to await."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return _Resumed(coro, waiting_on)


class _Resumed:
    """An awaitable over a coroutine already run up to a suspension: it hands the task what the
    coroutine waits on (the future it yielded, as ``yield from`` would) and sends back in what the
    task resumes it with, a cancellation included."""

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self.coro = coro
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self.coro, self.waiting_on
        while True:
            try:
                value = yield waiting_on
            except BaseException as exc:  # the task was cancelled (or a future failed): the coroutine decides
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coro.send(value)
                except StopIteration:
                    return
