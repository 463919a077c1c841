"""Screening of user text against the sensitive-word lists (see the moderation issue).

``screen_text`` raises 422 ``content_rejected`` for a block word and returns ``"review"`` for a
review word, else ``"ok"``. The real matcher lives in :mod:`moderation.words`.
"""

from __future__ import annotations

from typing import Literal

Verdict = Literal["ok", "review"]


async def screen_text(services: object, text: str) -> tuple[Verdict, list[str]]:
    """Returns (verdict, matched words). Placeholder until moderation.words lands."""
    return "ok", []
