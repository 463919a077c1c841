"""A profile photo and a bio, set from the phone and shown on the user's page to others."""

from __future__ import annotations

from pathlib import Path

from bson import ObjectId

from tests.media.helpers import encoded, picture
from tests.support import register


async def test_profile_photo_and_bio_are_set_and_shown(phone, client, services, screenshots, tmp_path: Path):
    me, other = await register(client), await register(client)
    photo = tmp_path / "me.png"
    photo.write_bytes(encoded(picture((300, 300)), "PNG"))

    page = await phone(locale="zh-CN")
    await page.login(me.username)
    await page.route("#/me/profile")
    card = page.page.locator("section.avatar-card")
    await card.locator("span.profile-avatar.initial").wait_for()
    assert await card.locator("button.avatar-remove").is_hidden()
    await card.locator("input.avatar-input").set_input_files(str(photo))
    await card.locator("img.profile-avatar").wait_for()
    stored = await services.db.users.find_one({"_id": ObjectId(me.id)})
    shown = await card.locator("img.profile-avatar").get_attribute("src")
    assert stored["avatar_url"] and shown == stored["avatar_url"]
    # the photo's own "已保存" may still be up (3.5 s): cleared, so the toast awaited below is the bio's
    await page.page.evaluate("document.getElementById('toasts').replaceChildren()")
    form = page.page.locator("form.profile-form")
    await form.locator("textarea[name=bio]").fill("喝咖啡，逛外滩")
    await form.locator("button[type=submit]").click()
    await page.page.locator(".toast", has_text="已保存").wait_for()
    await page.screenshot(screenshots / "profile-edit-zh.png")

    viewer = await phone()
    await viewer.login(other.username)
    await viewer.route(f"#/user/{me.id}")
    profile = viewer.page.locator("section.profile")
    await profile.locator("img.profile-avatar").wait_for()
    assert await viewer.page.evaluate("document.querySelector('section.profile img.profile-avatar').naturalWidth") > 0
    assert "喝咖啡，逛外滩" in await profile.locator(".profile-bio").inner_text()
    await viewer.screenshot(screenshots / "profile-seen.png")

    await card.locator("button.avatar-remove").click()  # back to the initial
    await card.locator("span.profile-avatar.initial").wait_for()
    assert (await services.db.users.find_one({"_id": ObjectId(me.id)})).get("avatar_url") is None
    page.assert_clean()
    viewer.assert_clean()


async def test_a_users_check_ins_name_their_stores(phone, client, screenshots):
    from tests.offers.helpers import merchant_with_store

    _, store = await merchant_with_store(client)
    visitor, viewer = await register(client), await register(client)
    resp = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]},
                             headers=visitor.headers)
    assert resp.status_code == 201, resp.text

    page = await phone(locale="zh-CN")
    await page.login(viewer.username)
    await page.route(f"#/user/{visitor.id}")
    await page.page.locator(".user-tabs button[data-tab=checkins]").click()
    row = page.page.locator(f"li.checkin-row[data-checkin-id='{resp.json()['checkin']['id']}']")
    await row.wait_for()
    assert await row.locator("a.store-name").inner_text() == store["name"]
    assert await row.locator("a.store-name").get_attribute("href") == f"#/store/{store['id']}"
    assert await page.page.locator("section.feed").is_hidden()
    await page.screenshot(screenshots / "user-checkins-zh.png")
    await page.route(f"#/user/{viewer.id}")  # someone who never checked in: the list says so
    await page.page.locator(".user-tabs button[data-tab=checkins]").click()
    await page.page.locator("ul.checkin-history li.empty", has_text="还没有签到。").wait_for()
    page.assert_clean()
