"""One event loop and one set of connections per worker thread.

Celery tasks are synchronous; the domain code is async. Each worker process (prefork) or
thread (the test worker) gets its own loop and :class:`~solomo.services.Services`, opened on
first use and reused by every task it runs. :func:`close_all` closes them when the worker
stops (Celery's ``worker_shutdown`` signal, or the test fixture), from any thread, once no task
runs on those loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from solomo.core.services import Services
from solomo.core.settings import Settings
from solomo.services import open_services

T = TypeVar("T")
_local = threading.local()
_opened: list[tuple[asyncio.AbstractEventLoop, Services]] = []
_opened_lock = threading.Lock()


def run(settings: Settings, job: Callable[[Services], Awaitable[T]]) -> T:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
        _local.services = loop.run_until_complete(open_services(settings, create_indexes=False))
        with _opened_lock:
            _opened.append((loop, _local.services))
    return loop.run_until_complete(job(_local.services))


def close_all() -> None:
    with _opened_lock:
        opened = list(_opened)
        _opened.clear()
    for loop, services in opened:
        if loop.is_closed() or loop.is_running():
            continue
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(services.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
