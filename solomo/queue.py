"""Sending Celery tasks from the API by name (the API never imports task code)."""

from __future__ import annotations

import asyncio
from typing import Any

from celery import Celery


class TaskQueue:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def send_sync(self, name: str, *args: Any, countdown: float | None = None) -> None:
        self.celery.send_task(name, args=list(args), countdown=countdown)

    async def send(self, name: str, *args: Any, countdown: float | None = None) -> None:
        """Enqueue; a broker failure is logged by the caller's outbox sweep, not raised to clients."""
        await asyncio.to_thread(self.send_sync, name, *args, countdown=countdown)
