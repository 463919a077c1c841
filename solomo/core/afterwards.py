"""Work a request's answer does not depend on, run once the answer has been sent.

A like, comment, follow or repost tells someone (:mod:`notifications.recorder`): about eight
MongoDB round trips that the liker's answer does not need (what it owes stays on the action's
document until recorded, and a sweep records it if this job fails: :mod:`notifications.outbox`).
Inside an HTTP request, :func:`after_response` collects such a job and the endpoint
(:mod:`solomo.http`) hands the collected jobs to Starlette as the response's background task,
which runs them in order after the last byte went out. Outside a request (a Celery task, a socket,
a test calling the domain) the job runs at once, so its caller sees the same effects as before.

Nothing acknowledged depends on these jobs, and what they write has its own repair or is best
effort by contract; each job's failure is logged and does not stop the next.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

log = logging.getLogger("solomo.afterwards")

Job = tuple[Callable[[], Awaitable[Any]], str]
"""(the work, what it is — for the log when it fails)."""

_collector: ContextVar[list[Job] | None] = ContextVar("solomo_afterwards", default=None)


async def after_response(job: Callable[[], Awaitable[Any]], what: str) -> None:
    """Runs ``job`` after the current request's answer is sent, or now outside a request."""
    jobs = _collector.get()
    if jobs is None:
        await _run(job, what)
    else:
        jobs.append((job, what))


@contextlib.contextmanager
def collecting() -> Iterator[list[Job]]:
    """The jobs a request's handler defers; the endpoint runs them with :func:`run_all`."""
    jobs: list[Job] = []
    token = _collector.set(jobs)
    try:
        yield jobs
    finally:
        _collector.reset(token)


async def run_all(jobs: list[Job]) -> None:
    for job, what in jobs:
        await _run(job, what)


async def _run(job: Callable[[], Awaitable[Any]], what: str) -> None:
    try:
        await job()
    except Exception as exc:
        log.warning("%s failed after the answer: %s", what, exc)
