"""Browser story (issue 17): loyalty points at a partner store, on two phones.

The merchant enables the programme in the console; a user checks in at the store and sees the
points arrive (the ``points`` event); the user shows a spend code, the merchant charges it at the
counter, and the balance drops on the user's open wallet, live. Screenshots at 390 × 844: the
wallet with points, the spend code, the counter.
"""

from __future__ import annotations

import re

from tests.offers.helpers import merchant_with_store
from tests.support import offset, register
from tests.web.browser import LIVE_TIMEOUT_MS
from tests.web.guards import require_routes, require_websocket


async def test_points_arrive_and_are_spent_at_the_counter(phone, client, live_server, celery_worker, screenshots):
    await require_routes(client, "PUT /v1/stores/{id}/loyalty", "GET /v1/me/points", "GET /v1/me/points/history",
                         "POST /v1/me/points/spend-codes", "POST /v1/stores/{id}/points/charge")
    merchant, store = await merchant_with_store(client)
    user = await register(client)
    await require_websocket(live_server, user.token)

    # the merchant joins the programme from the console
    shop = await phone(lat=store["lat"], lng=store["lng"])
    await shop.login(merchant.username)
    await shop.route(f"#/store/{store['id']}")
    settings = shop.page.locator("form.loyalty-form")
    await settings.locator("input[name=enabled]").check()
    await settings.locator("input[name=checkin_points]").fill("10")
    await settings.locator("input[name=redemption_points]").fill("5")
    await settings.locator("button[type=submit]").click()
    await shop.page.wait_for_selector(".toast:has-text('Saved')")
    saved = (await client.get(f"/v1/stores/{store['id']}/loyalty", headers=merchant.headers)).json()
    assert saved == {"enabled": True, "checkin_points": 10, "redemption_points": 5}

    # the user checks in at the store and sees the points arrive
    near = offset(store["lat"], store["lng"], north_m=30)
    fan = await phone(lat=near[0], lng=near[1])
    await fan.login(user.username)
    await fan.wait_socket_open()
    await fan.route(f"#/store/{store['id']}")
    await fan.page.locator("button.checkin").first.click()
    await fan.page.locator("form.checkin-form button[type=submit]").click()
    await fan.page.wait_for_selector(".toast:has-text('Points +10')", timeout=LIVE_TIMEOUT_MS)
    await fan.route("#/wallet")
    balance = fan.page.locator(".points-balance")
    await fan.page.wait_for_selector(".points-balance[data-balance='10']")
    assert "Check-in" in await fan.page.locator(".points-entry.kind-checkin").first.inner_text()

    # the user shows a spend code; the counter charges it
    await fan.page.locator("button.spend-open").click()
    sheet = fan.page.locator(".spend-sheet")
    code = await sheet.locator(".code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code)
    await fan.page.wait_for_function("document.querySelector('.spend-sheet img.qr').naturalWidth > 0")
    await fan.screenshot(screenshots / "user_points_spend_code.png")

    counter = shop.page.locator("form.charge-form")
    await counter.locator("input[name=code]").fill(code)
    await counter.locator("input[name=points]").fill("11")
    await counter.locator("button[type=submit]").click()
    await shop.page.wait_for_selector(".charge-result.error:has-text('not have enough points')")
    await counter.locator("input[name=points]").fill("4")
    await counter.locator("button[type=submit]").click()
    await shop.page.wait_for_selector(".charge-result.ok:has-text('Charged 4 points')")
    await counter.scroll_into_view_if_needed()
    await shop.screenshot(screenshots / "merchant_points_counter.png")
    await counter.locator("input[name=code]").fill(code)
    await counter.locator("input[name=points]").fill("1")
    await counter.locator("button[type=submit]").click()
    await shop.page.wait_for_selector(".charge-result.error:has-text('already used')")

    # the store's settlement shows the charge (today's row, the totals)
    ledger = shop.page.locator("form.ledger-form")
    await ledger.locator("button[type=submit]").click()
    await shop.page.wait_for_selector(".ledger-totals:has-text('spent 4')")
    assert "−4" in await ledger.locator("ul.ledger-days li").first.inner_text()
    await ledger.scroll_into_view_if_needed()
    await shop.screenshot(screenshots / "merchant_points_ledger.png")

    # the balance drops on the user's open page, live
    await fan.page.wait_for_selector(".points-balance[data-balance='6']", timeout=LIVE_TIMEOUT_MS)
    await fan.page.locator(".spend-sheet button.close").click()
    await fan.page.wait_for_selector(".points-entry.kind-spend")
    assert (await balance.inner_text()) == "6"
    assert "−4" in (await fan.page.locator(".points-entry.kind-spend").inner_text()).replace("-", "−")
    await fan.page.wait_for_selector(".toast", state="detached")  # the "Points -4" toast covers the balance
    await fan.screenshot(screenshots / "user_wallet_points.png")
    shop.assert_clean()
    fan.assert_clean()


async def test_wallet_points_in_chinese(phone, client, services, screenshots):
    from tests.loyalty.helpers import grant, partner_store

    _, store = await partner_store(client)
    user = await register(client)
    await grant(services, user.id, store["id"], 120)
    page = await phone(locale="zh-CN")
    await page.login(user.username)
    await page.route("#/wallet")
    await page.page.wait_for_selector(".points-balance[data-balance='120']")
    text = await page.page.locator(".points-card").inner_text()
    assert "我的积分" in text and "签到" in text and "使用积分" in text
    await page.screenshot(screenshots / "user_wallet_points_zh.png")
    page.assert_clean()
