"""Browser fixtures: Debian's chromium driven by Playwright (no browser download), phone-sized
pages that record console errors, and a folder for screenshots (artifacts/, git-ignored)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.web.browser import CHROMIUM, LAUNCH_ARGS, PhonePage

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (make test does)")
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    try:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            # bounded, so a wedged browser cannot hold the whole session's teardown
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b.close(), 20)
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pw.stop(), 20)


@pytest.fixture
async def phone(browser, live_server) -> AsyncIterator:
    """A factory of fresh phone-sized pages (each its own context: storage, geolocation)."""
    pages: list[PhonePage] = []

    async def make(*, lat: float | None = None, lng: float | None = None, locale: str = "en-US") -> PhonePage:
        page = await PhonePage.open(browser, live_server, lat=lat, lng=lng, locale=locale)
        pages.append(page)
        return page

    yield make
    for page in pages:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(page.close(), 10)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
