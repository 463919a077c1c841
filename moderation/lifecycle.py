"""API-process lifecycle hook: seed the word lists into an empty database and compile them
before the first request (so the first post does not pay for it)."""

from __future__ import annotations

from typing import Any

from moderation.matcher import word_filter
from moderation.words import ensure_seeded


async def start(app: Any) -> None:
    services = app.state.services
    await ensure_seeded(services)
    await word_filter(services).current(services)


async def stop(app: Any) -> None:
    """Nothing to release: the matcher and limiter live in ``services.extras``."""
