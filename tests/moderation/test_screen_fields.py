"""The screening functions for names, addresses and report notes (the ones ``PATCH /v1/me`` and
``PATCH /v1/stores/{id}`` reuse): which lists refuse what."""

from __future__ import annotations

import pytest

from moderation.screen import screen_note, screen_profile_text, screen_text
from solomo.core.errors import Invalid


@pytest.fixture
async def listed(extra_words):
    await extra_words(block=["zqblocked"], review=["zqreviewed"])


async def refused(call) -> bool:
    try:
        await call
    except Invalid as exc:
        assert exc.code == "content_rejected" and exc.status == 422
        assert "zq" not in str(exc)  # the word is never echoed back
        return True
    return False


async def test_names_and_addresses_refuse_block_and_review_words(services, listed):
    assert await refused(screen_profile_text(services, "the zqblocked cafe"))
    assert await refused(screen_profile_text(services, "the zqreviewed cafe"))
    assert await refused(screen_profile_text(services, "Clean Cafe", None, "12 zq\u034freviewed road"))
    assert not await refused(screen_profile_text(services, "Clean Cafe", None, "12 Main road", ""))


async def test_fields_are_matched_one_by_one(services, listed):
    """A word cannot straddle two fields: the store "zqblo" at "cked 1" is fine."""
    assert not await refused(screen_profile_text(services, "zqblo", "cked"))


async def test_notes_refuse_block_words_only(services, listed):
    assert await refused(screen_note(services, "he wrote zq\u3164blocked"))
    assert not await refused(screen_note(services, "he wrote zqreviewed"))
    assert not await refused(screen_note(services, None))


async def test_posts_keep_their_review_flow(services, listed):
    assert await screen_text(services, "zqreviewed\u17b4") == ("review", ["zqreviewed"])
    assert await refused(screen_text(services, "zq\ufe0fblocked"))
