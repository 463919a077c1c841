"""A merchant targets regulars: the audience picker's live preview counts them, and of two users
near the store with open pages — a regular (3 check-in days) and a one-time visitor — only the
regular receives the offer. Screenshots of the offer form with the picker, in English and Chinese."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from solomo.core.keys import POSITIONS
from tests.support import Account, offset, random_point, register, unique_name, wait_until
from tests.web.browser import LIVE_TIMEOUT_MS


async def _visited(services: Any, user: Account, store_id: str, *days_ago: int) -> None:
    now = datetime.now(UTC)
    await services.db.checkins.insert_many([
        {"_id": ObjectId(), "user_id": ObjectId(user.id), "store_id": ObjectId(store_id),
         "day": (now - timedelta(days=d)).strftime("%Y-%m-%d"), "created_at": now - timedelta(days=d)}
        for d in days_ago])


async def test_a_merchant_targets_regulars_and_only_the_regular_gets_it(phone, client, services, screenshots):
    merchant = await register(client, role="merchant")
    regular, visitor = await register(client), await register(client)
    lat, lng = random_point()
    resp = await client.post("/v1/stores", headers=merchant.headers,
                             json={"name": unique_name("Noodle bar"), "lat": lat, "lng": lng})
    assert resp.status_code == 201, resp.text
    store_id = resp.json()["id"]
    await _visited(services, regular, store_id, 2, 9, 30)
    await _visited(services, visitor, store_id, 4)

    # both have the app open near the store (their positions reach the server over the socket)
    pages = {}
    for user, north in ((regular, 80), (visitor, 120)):
        page = await phone(lat=offset(lat, lng, north_m=north)[0], lng=offset(lat, lng, north_m=north)[1])
        await page.login(user.username)
        await page.wait_socket_open()
        pages[user.id] = page

    async def positioned() -> bool:
        return all(p is not None for p in await services.redis.geopos(POSITIONS, regular.id, visitor.id))

    await wait_until(positioned, timeout=10)

    shop = await phone(lat=lat, lng=lng)
    await shop.login(merchant.username)
    await shop.route(f"#/store/{store_id}")
    form = shop.page.locator("form.offer-form")
    await form.wait_for()
    picker = form.locator(".audience-picker")
    await picker.locator("select[name=audience]").select_option("regulars")
    assert await picker.locator("input[name=min_visits]").is_visible()
    assert not await picker.locator("input[name=audience_days]").is_visible()
    await picker.locator(".audience-size", has_text="1").wait_for()
    await picker.locator(".audience-online", has_text="1").wait_for()
    await picker.locator("select[name=audience]").select_option("visitors")
    await picker.locator(".audience-size", has_text="2").wait_for()  # both visited within 90 days
    await picker.locator("select[name=audience]").select_option("regulars")
    await picker.locator(".audience-size", has_text="1").wait_for()
    title = f"Regulars' noodles {unique_name('n')}"
    await form.locator("input[name=title]").fill(title)
    await form.locator(".audience-hint", has_text="at least 3 days").wait_for()
    await form.scroll_into_view_if_needed()
    await picker.scroll_into_view_if_needed()
    await shop.screenshot(screenshots / "offer_audience_picker.png")
    await form.locator("button[type=submit]").click()
    await shop.page.wait_for_selector(".toast:has-text('Offer broadcast')")

    offer = await services.db.offers.find_one({"title": title})
    assert offer is not None and offer["audience"] == "regulars" and offer["min_visits"] == 3
    popup = pages[regular.id].page.locator(".offer-sheet")
    await popup.locator(".offer-title", has_text=title).wait_for(timeout=LIVE_TIMEOUT_MS)
    await asyncio.sleep(1.5)  # anything sent to the visitor would have arrived by now
    assert await pages[visitor.id].page.locator(".offer-sheet .offer-title", has_text=title).count() == 0
    assert (await services.db.offers.find_one({"_id": offer["_id"]}))["pushed"] == 1

    # the same form in Chinese
    zh = await phone(lat=lat, lng=lng, locale="zh-CN")
    await zh.login(merchant.username)
    await zh.route(f"#/store/{store_id}")
    zh_picker = zh.page.locator("form.offer-form .audience-picker")
    await zh_picker.locator("select[name=audience]").select_option("visitors")
    await zh_picker.locator(".audience-size", has_text="2").wait_for()
    assert "到店顾客" in await zh_picker.inner_text()
    await zh_picker.scroll_into_view_if_needed()
    await zh.screenshot(screenshots / "offer_audience_picker_zh.png")
    for page in (shop, zh, *pages.values()):
        page.assert_clean()
