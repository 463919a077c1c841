"""A merchant sets a store's time zone on the create form, then changes it on the edit form; the
API holds each choice. An unknown zone is refused in words and creates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import Account, random_point, register, unique_name

SHOTS = Path("/work/notes/shots")


async def _store(client: Any, merchant: Account, store_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/stores/{store_id}", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def _my_stores(client: Any, merchant: Account) -> int:
    return len((await client.get("/v1/me/stores", headers=merchant.headers)).json()["items"])


async def _open_create_form(page: Any, merchant: Account) -> Any:
    await page.login(merchant.username)
    await page.page.wait_for_function("document.body.dataset.view === '#/merchant'")
    await page.page.locator("button.create-store-open").click()
    return page.page.locator("form.create-store")


async def test_create_then_edit_the_store_time_zone(phone, client):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    page = await phone(lat=lat, lng=lng)
    form = await _open_create_form(page, merchant)
    zone = form.locator("input[name=timezone]")
    assert await zone.input_value() == "Asia/Shanghai"  # the default, shown
    assert await form.locator(f"datalist#{await zone.get_attribute('list')} option[value='America/New_York']").count()
    await form.locator("input[name=name]").fill(unique_name("Diner"))
    await form.locator("select[name=category]").select_option("food")

    await zone.fill("America/New_York")
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a local folder, once)
    await page.screenshot(SHOTS / "store-create-timezone-en.png")

    # an unknown zone: the server's words, nothing created
    await zone.fill("Mars/Olympus_Mons")
    await form.locator("button[type=submit]").click()
    await page.page.locator(".toast.error").wait_for()
    assert await _my_stores(client, merchant) == 0

    await zone.fill("America/New_York")
    await form.locator("button[type=submit]").click()
    await page.page.wait_for_function("/^#\\/store\\/[0-9a-f]{24}$/.test(location.hash)")
    store_id = (await page.page.evaluate("location.hash")).rsplit("/", 1)[1]
    assert (await _store(client, merchant, store_id))["timezone"] == "America/New_York"

    # the edit form shows it and changes it
    await page.route(f"#/store/{store_id}/edit")
    edit = page.page.locator("form.store-edit")
    assert await edit.locator("input[name=timezone]").input_value() == "America/New_York"
    await edit.locator("input[name=timezone]").fill("Europe/Berlin")
    await edit.locator("input[name=timezone]").scroll_into_view_if_needed()
    await page.screenshot(SHOTS / "store-edit-timezone-en.png")
    await edit.locator("button[type=submit]").click()
    await page.page.locator(".toast", has_text="Saved").wait_for()
    assert (await _store(client, merchant, store_id))["timezone"] == "Europe/Berlin"
    page.assert_clean(allow_socket_failures=True)

    # the same form in Chinese (screenshot only: the strings)
    chinese = await phone(lat=lat, lng=lng, locale="zh-CN")
    form = await _open_create_form(chinese, merchant)
    await form.get_by_text("时区", exact=False).first.wait_for()
    assert await form.locator("input[name=timezone]").input_value() == "Asia/Shanghai"
    await chinese.screenshot(SHOTS / "store-create-timezone-zh.png")
    chinese.assert_clean(allow_socket_failures=True)
