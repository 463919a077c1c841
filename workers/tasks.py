"""Celery tasks: a few lines each — take ids, call domain code, nothing else.

Every task is idempotent: with late acknowledgement a task may run again after a crash.
"""

from __future__ import annotations

from typing import Any

from solomo.services import Services
from workers import runtime
from workers.app import app


def _run(job: Any) -> Any:
    return runtime.run(app.conf.solomo_settings, job)


@app.task(name="maintenance.ping")
def ping(key: str) -> None:
    """Sets a Redis key: proves a worker is consuming (used by tests and `solomo dev`)."""

    async def job(services: Services) -> None:
        await services.redis.set(key, "pong", ex=60)

    _run(job)
