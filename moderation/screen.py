"""Screening of user text (posts, comments, check-in notes) against the sensitive-word lists.

``screen_text`` raises 422 ``content_rejected`` for a block word and returns ``("review", words)``
for review words (the caller stores the item as ``pending_review``), else ``("ok", [])``.
The rejection message does not name the word: echoing it back would teach evasion.
"""

from __future__ import annotations

from typing import Literal

from moderation.matcher import word_filter
from solomo.core.errors import Invalid
from solomo.core.services import Services

Verdict = Literal["ok", "review"]


async def screen_text(services: Services, text: str) -> tuple[Verdict, list[str]]:
    """Returns (verdict, matched review words); raises for a block word."""
    compiled = await word_filter(services).current(services)
    matches = compiled.find(text)
    if any(m.kind == "block" for m in matches):
        raise Invalid("the text contains words that are not allowed here", code="content_rejected")
    if matches:
        return "review", [m.word for m in matches]
    return "ok", []
