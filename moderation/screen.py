"""Screening of user text against the sensitive-word lists. The rejection message never names the
word: echoing it back would teach evasion.

- Posts, comments, check-in notes — :func:`screen_text`: a block word → 422 ``content_rejected``;
  review words → ``("review", words)`` (the caller stores the item as ``pending_review``, seen by
  its author and moderators until approved).
- Names and addresses shown to everyone — :func:`screen_profile_text`: display names (at
  registration, and ``PATCH /v1/me`` with bios), store names and addresses (``POST /v1/stores``,
  ``PATCH /v1/stores/{id}``). They have no review queue and appear at once in lists, search and
  every post's author line, so a review word is refused like a block word: 422 ``content_rejected``.
- Report notes — :func:`screen_note`: a block word → 422 ``content_rejected``; review words are
  accepted, since a note is read only by moderators, the very people a review would ask.
"""

from __future__ import annotations

from typing import Literal

from moderation.matcher import Match, word_filter
from solomo.core.errors import Invalid
from solomo.core.services import Services

Verdict = Literal["ok", "review"]


def _rejected() -> Invalid:
    return Invalid("the text contains words that are not allowed here", code="content_rejected")


async def _matches(services: Services, text: str) -> list[Match]:
    compiled = await word_filter(services).current(services)
    return compiled.find(text)


async def screen_text(services: Services, text: str) -> tuple[Verdict, list[str]]:
    """Returns (verdict, matched review words); raises for a block word."""
    matches = await _matches(services, text)
    if any(m.kind == "block" for m in matches):
        raise _rejected()
    if matches:
        return "review", [m.word for m in matches]
    return "ok", []


async def screen_profile_text(services: Services, *texts: str | None) -> None:
    """Raises 422 ``content_rejected`` if any of ``texts`` (``None`` skipped) holds a listed word,
    block or review. Each text is matched on its own: a word cannot straddle two fields."""
    for text in texts:
        if text and await _matches(services, text):
            raise _rejected()


async def screen_note(services: Services, text: str | None) -> None:
    """Raises 422 ``content_rejected`` if ``text`` holds a block word."""
    if text and any(m.kind == "block" for m in await _matches(services, text)):
        raise _rejected()
