"""Search in the browser: typing pinyin finds a Chinese store, nearest first with its distance, in
both languages; the tabs switch to people and topics."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.feed.helpers import post
from tests.search.test_search_api import random_point
from tests.support import offset, register

SHOTS = Path("/work/notes/shots")
DEVICE_LOCATION = "window.solomo && window.solomo.session.location?.source === 'device'"


async def _shown(page: Any, shows: str) -> None:
    """Waits for the search list to show a query's answer; if it does not, says what the page shows
    instead (an error's words in the status line, or the last answer shown)."""
    try:
        await page.wait_for_function(shows)
    except PlaywrightTimeout:
        state = await page.evaluate("JSON.stringify({search: document.body.dataset.search, "
                                    "status: document.querySelector('.search-status')?.textContent, "
                                    "input: document.querySelector('.search-input')?.value})")
        raise AssertionError(f"not shown within the timeout: {shows}; the page: {state}") from None


async def test_typing_pinyin_finds_the_chinese_store(phone, client, screenshots, celery_worker) -> None:
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    slat, slng = offset(lat, lng, north_m=120)
    tag = "zq" + uuid.uuid4().hex[:6]
    resp = await client.post("/v1/stores", headers=merchant.headers,
                             json={"name": "人民广场咖啡", "lat": slat, "lng": slng, "category": "cafe",
                                   "address": f"南京东路 {tag} 号"})
    assert resp.status_code == 201, resp.text
    store = resp.json()
    await post(client, merchant, f"#{tag}咖啡# 新店开张")
    user = await register(client)

    page = await phone(lat=lat, lng=lng, locale="zh-CN")
    await page.login(user.username)
    await page.page.wait_for_function(DEVICE_LOCATION)  # distances from the phone's own position
    await page.page.locator("a.search-link").click()
    await page.page.wait_for_function("document.body.dataset.view === '#/search'")
    box = page.page.locator("input.search-input")
    await box.press_sequentially("rmgc", delay=60)  # one request per pause, stale ones cancelled
    await _shown(page.page, "document.body.dataset.search === 'stores:rmgc'")
    first = page.page.locator("li.search-store").first
    assert await first.get_attribute("data-store-id") == store["id"]  # the nearest of its name
    assert "人民广场咖啡" in await first.inner_text() and "120 m" in await first.inner_text()
    await box.fill("")
    await box.press_sequentially("kafei", delay=60)
    await _shown(page.page, "document.body.dataset.search === 'stores:kafei'")
    rows = page.page.locator("li.search-store")
    names = [text.split("\n")[0] for text in await rows.all_inner_texts()]
    ours = names.index("人民广场咖啡")  # the nearest store of that name among the pinyin matches
    assert await rows.nth(ours).get_attribute("data-store-id") == store["id"]
    assert all(n.lower().startswith("kafei") for n in names[:ours])  # a name starting with q ranks first
    await page.screenshot(SHOTS / "search-stores-zh.png")

    await page.page.locator("button.search-tab[data-tab='topics']").click()
    await box.fill(tag)
    await _shown(page.page, f"document.body.dataset.search === 'topics:{tag}'")
    await page.page.locator("li.search-topic", has_text=f"#{tag}咖啡#").wait_for()
    await page.screenshot(SHOTS / "search-topics-zh.png")
    await page.page.locator("button.search-tab[data-tab='users']").click()
    await box.fill(merchant.username)
    await _shown(page.page, f"document.body.dataset.search === 'users:{merchant.username}'")
    assert await page.page.locator("li.search-user").count() == 1
    await page.page.locator("li.search-user a").click()
    await page.page.wait_for_function(f"document.body.dataset.view === '#/user/{merchant.id}'")
    page.assert_clean()

    en = await phone(lat=lat, lng=lng)
    await en.login(user.username)
    await en.page.wait_for_function(DEVICE_LOCATION)
    await en.route("#/search")
    await en.page.locator("button.search-tab[data-tab='stores']").click()
    await en.page.locator("input.search-input").press_sequentially("renmin", delay=40)
    await _shown(en.page, "document.body.dataset.search === 'stores:renmin'")
    assert await en.page.locator("li.search-store").first.get_attribute("data-store-id") == store["id"]
    await en.screenshot(SHOTS / "search-stores-en.png")
    en.assert_clean()
