"""Fixtures for the moderation tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support import Account, make_account


@pytest.fixture
async def moderator(services) -> Account:
    return await make_account(services, "moderator")


@pytest.fixture
async def extra_words(client, services) -> AsyncIterator[Callable[..., Awaitable[dict]]]:
    """Adds words to the live lists for one test, then puts the lists back as they were."""
    mod = await make_account(services, "moderator")
    resp = await client.get("/v1/moderation/words", headers=mod.headers)
    assert resp.status_code == 200, resp.text
    before = resp.json()

    async def add(block: list[str] = (), review: list[str] = ()) -> dict:  # type: ignore[assignment]
        resp = await client.put("/v1/moderation/words", headers=mod.headers, json={
            "block": before["block"] + list(block), "review": before["review"] + list(review),
            "reason": "test words"})
        assert resp.status_code == 200, resp.text
        return resp.json()

    yield add
    resp = await client.put("/v1/moderation/words", headers=mod.headers, json={**before, "reason": "restore"})
    assert resp.status_code == 200, resp.text
