"""Managing your account and your store in the browser (issue 16): edit the profile, change the
password, delete the account; a merchant edits a store's details and position and ends an offer
from the store's offer list."""

from __future__ import annotations

from pathlib import Path

from bson import ObjectId

from tests.offers.helpers import create_offer
from tests.support import random_point, register, unique_name

SHOTS = Path("/work/notes/shots")


async def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a local folder, once)
    await page.page.evaluate("document.getElementById('toasts').replaceChildren()")  # not over the screen
    await page.screenshot(SHOTS / name)


async def test_profile_password_and_account_deletion(phone, client, services):
    user = await register(client)
    page = await phone(locale="zh-CN")
    await page.login(user.username)
    await page.route("#/me")
    await page.page.locator("a.edit-profile").click()
    await page.page.wait_for_function("document.body.dataset.view === '#/me/profile'")
    form = page.page.locator("form.profile-form")
    await form.locator("input[name=display_name]").fill("小明")
    await form.locator("textarea[name=bio]").fill("住在人民广场附近，爱喝咖啡。")
    await form.locator("input[name=offers_from_unfollowed]").uncheck()
    await form.locator("button[type=submit]").click()
    await page.page.locator(".toast", has_text="已保存").wait_for()
    doc = await services.db.users.find_one({"_id": ObjectId(user.id)})
    assert doc["display_name"] == "小明" and doc["bio"] == "住在人民广场附近，爱喝咖啡。"
    assert doc["offers_from_unfollowed"] is False
    await _shot(page, "manage-profile.png")

    await page.page.locator("a.password-link").click()
    await page.page.wait_for_function("document.body.dataset.view === '#/me/password'")
    pw = page.page.locator("form.password-form")
    await pw.locator("input[name=old_password]").fill("not-the-password")
    await pw.locator("input[name=new_password]").fill("newpassword1")
    await pw.locator("button[type=submit]").click()
    await page.page.locator(".toast.error", has_text="密码不正确").wait_for()
    await pw.locator("input[name=old_password]").fill("password123")
    await pw.locator("input[name=new_password]").fill("newpassword1")
    await pw.locator("button[type=submit]").click()
    await page.page.locator(".toast", has_text="密码已修改").wait_for()
    assert (await client.post("/v1/auth/login", json={"username": user.username,
                                                      "password": "newpassword1"})).status_code == 200

    await page.route("#/me/delete")
    delete = page.page.locator("form.delete-form")
    await delete.locator("input[name=password]").fill("newpassword1")
    await _shot(page, "manage-delete.png")
    await delete.locator("button[type=submit]").click()
    await page.page.wait_for_selector("form.auth-form")
    doc = await services.db.users.find_one({"_id": ObjectId(user.id)})
    assert doc["status"] == "deleted" and "display_name" not in doc
    page.assert_clean(allow_socket_failures=True)


async def test_merchant_edits_store_and_ends_an_offer(phone, client, services):
    merchant = await register(client, role="merchant")
    lat, lng = random_point()
    resp = await client.post("/v1/stores", headers=merchant.headers,
                             json={"name": unique_name("Tea"), "lat": lat, "lng": lng, "category": "cafe"})
    store = resp.json()
    ending = await create_offer(client, merchant, store["id"], title="Half-price latte", stock=50)
    await create_offer(client, merchant, store["id"], title="Free cookie with any tea")
    page = await phone(lat=lat, lng=lng)
    await page.login(merchant.username)
    await page.route(f"#/store/{store['id']}")
    await page.page.locator("a.edit-store").click()
    await page.page.wait_for_function(f"document.body.dataset.view === '#/store/{store['id']}/edit'")
    form = page.page.locator("form.store-edit")
    await form.locator("input[name=name]").fill("人民广场咖啡")
    await form.locator("select[name=category]").select_option("bar")
    await form.locator("input[name=lat]").fill(str(lat + 0.01))
    await form.locator("button[type=submit]").click()
    await page.page.locator(".toast", has_text="Saved").wait_for()
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["name"] == "人民广场咖啡" and doc["category"] == "bar"
    assert doc["location"]["coordinates"] == [lng, lat + 0.01]

    await page.route(f"#/store/{store['id']}/offers")
    row = page.page.locator(f"li.offer-row[data-offer-id='{ending['id']}']")
    await row.wait_for()
    page.page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("button.end-offer").click()
    ended = page.page.locator(f"li.offer-row[data-offer-id='{ending['id']}'][data-status='ended']")
    await ended.wait_for()
    assert (await services.db.offers.find_one({"_id": ObjectId(ending["id"])}))["status"] == "ended"
    assert await page.page.locator("li.offer-row[data-status='live'] button.end-offer").count() == 1
    await _shot(page, "manage-offers.png")
    await page.route(f"#/store/{store['id']}/edit")
    await _shot(page, "manage-store-edit.png")
    page.assert_clean(allow_socket_failures=True)
