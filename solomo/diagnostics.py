"""``kill -USR2 <api pid>``: the API writes what it is waiting on to its log.

An API that stops answering while its event loop still runs (a health check with its own timeout
answers) is waiting on something shared: a pool, a lock, a thread. A stack dump of the process
(py-spy, faulthandler) shows only the loop idling in ``select``; what is stuck is in the suspended
coroutines. On SIGUSR2 this logs, at WARNING, every pending task's await chain and the MongoDB
client's connection pools (checked out, being opened, idle), the two things a hang there is made
of. The fault drills send it when the API does not recover (``tests/faults``); an operator can too.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from typing import Any

from starlette.applications import Starlette

log = logging.getLogger("solomo.diagnostics")

MAX_TASKS_SHOWN = 40
"""Tasks with the same await chain are counted once: a hang is hundreds of requests in one place."""
MAX_DEPTH = 60


def await_chain(task: asyncio.Task[Any]) -> str:
    """Where a task is suspended: each coroutine it awaits, outermost first, down to the future.

    ``Task.print_stack`` shows only the task's outermost coroutine for a suspended task; the place
    it waits is at the end of the ``cr_await`` chain."""
    lines = []
    awaited: Any = task.get_coro()
    for _ in range(MAX_DEPTH):
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None) \
            or getattr(awaited, "ag_frame", None)
        if frame is None:
            lines.append(f"  awaiting {type(awaited).__name__}")
            break
        code = frame.f_code
        lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None) \
            or getattr(awaited, "ag_await", None)
        if awaited is None:
            break
    return "\n".join(lines)


def describe_tasks() -> str:
    chains: Counter[str] = Counter(await_chain(task) for task in asyncio.all_tasks())
    parts = [f"{n} task(s) at:\n{chain}" for chain, n in chains.most_common(MAX_TASKS_SHOWN)]
    return f"{sum(chains.values())} tasks, {len(chains)} distinct\n" + "\n".join(parts)


def describe_mongo_pools(client: Any) -> str:
    """Counters of each server's pool; PyMongo's private attributes, read defensively."""
    servers = getattr(getattr(client, "_topology", None), "_servers", {}) or {}
    lines = []
    for address, server in servers.items():
        pool = getattr(server, "pool", None)
        fields = {name: getattr(pool, name, "?") for name in ("requests", "active_sockets", "_pending", "state")}
        idle = len(getattr(pool, "conns", ()) or ())
        lines.append(f"{address}: {fields} idle={idle} description={getattr(server, 'description', '?')}")
    return "\n".join(lines) or "no servers known"


def dump(app: Starlette) -> None:
    services = getattr(app.state, "services", None)
    mongo = describe_mongo_pools(services.mongo) if services is not None else "no services"
    log.warning("diagnostics on SIGUSR2\nMongoDB pools:\n%s\n%s", mongo, describe_tasks())


async def start(app: Starlette) -> None:
    """Lifecycle hook. Not where signals cannot be handled (a loop outside the main thread)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump, app)
    except (RuntimeError, ValueError, NotImplementedError):
        log.debug("SIGUSR2 diagnostics not installed: not the main thread")


async def stop(app: Starlette) -> None:
    try:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR2)
    except (RuntimeError, ValueError, NotImplementedError):
        pass
