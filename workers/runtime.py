"""One event loop and one set of connections per worker thread.

Celery tasks are synchronous; the domain code is async. Each worker process (prefork) or
thread (the test worker) gets its own loop and :class:`~solomo.services.Services`, opened on
first use and reused by every task it runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from solomo.services import Services, open_services
from solomo.settings import Settings

T = TypeVar("T")
_local = threading.local()


def run(settings: Settings, job: Callable[[Services], Awaitable[T]]) -> T:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
        _local.services = loop.run_until_complete(open_services(settings, create_indexes=False))
    return loop.run_until_complete(job(_local.services))


def close() -> None:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.run_until_complete(_local.services.close())
        loop.close()
