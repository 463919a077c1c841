"""Side tasks a coroutine started beside its own work and then stopped waiting for.

A read started ahead of its use (the fan-out's next batch of followers, the targeting's next
chunk of recipients) or a write left running when the caller fails must still end before the
caller does — cancelled first when it is a read nobody wants any more, finished when it is a
write — and its outcome must be seen, or asyncio logs "exception was never retrieved".
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from solomo.core.groupwrite import retrieved

T = TypeVar("T")


async def reap(task: asyncio.Future[Any], *, cancel: bool) -> None:
    """Waits for ``task`` (cancelled first if ``cancel``: a read; not a write, which finishes) and
    marks its outcome seen."""
    if cancel and not task.done():
        task.cancel()
    await asyncio.wait({task})
    retrieved(task)


def finished(value: T) -> asyncio.Future[T]:
    """A side task with nothing to do: a future already holding ``value`` (no task is made)."""
    done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    done.set_result(value)
    return done
