"""What the client says when things go wrong, in the user's language, and how it retries.

- A refusal whose code had no sentence of its own (a post ending in "#") reads in Chinese for a
  zh user, never as the server's English message.
- Muting and unmuting say so in words (the toast once read "block.muteed").
- A post whose answers are all lost on the way back (the server wrote it) is sent again by the
  user's second tap with the same Idempotency-Key: one post, not two.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from tests.support import register


async def _dismiss_toasts(page: Any) -> None:
    await page.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")


async def test_a_refusal_reads_in_the_users_language(phone, client, screenshots):
    me = await register(client)
    zh = await phone(locale="zh-CN")
    await zh.login(me.username)
    await zh.route("#/home")
    form = zh.page.locator("form.compose")
    await form.locator("textarea").fill("今天打卡 #")
    await form.locator("button[type=submit]").click()
    toast = zh.page.locator(".toast.error")
    await toast.wait_for()
    words = await toast.inner_text()
    assert "# 后面要跟话题" in words, words
    assert "topic" not in words  # not the server's English
    await zh.screenshot(screenshots / "client-error-zh.png")
    zh.assert_clean()


async def test_mute_and_unmute_say_so(phone, client):
    me, other = await register(client), await register(client)
    page = await phone()
    await page.login(me.username)
    await page.route(f"#/user/{other.id}")
    await page.page.locator("button.mute-toggle").click()
    await page.page.locator(".sheet button.confirm-go").click()
    await page.page.locator(".toast", has_text=f"You muted {other.username}").wait_for()
    await _dismiss_toasts(page.page)
    await page.page.locator("button.mute-toggle.on").click()
    await page.page.locator(".toast", has_text=f"You unmuted {other.username}").wait_for()
    assert not await page.page.locator(".toast", has_text="block.").count()
    page.assert_clean()


async def test_a_post_whose_answers_were_lost_is_not_posted_twice(phone, client, services):
    me = await register(client)
    page = await phone()
    await page.login(me.username)
    await page.route("#/home")
    keys: list[str] = []
    lost = 0

    async def lose_the_answer(route: Any) -> None:
        """The server gets the request and writes; its answer never reaches the page (every
        automatic retry too): the connection drops on the way back."""
        nonlocal lost
        keys.append(route.request.headers.get("idempotency-key", ""))
        if lost < 3:  # the first try and both automatic retries
            lost += 1
            await route.fetch()
            await route.abort("connectionreset")
            return
        await route.continue_()

    await page.page.route("**/v1/posts", lose_the_answer)
    form = page.page.locator("form.compose")
    text = f"lost answers {ObjectId()}"
    await form.locator("textarea").fill(text)
    await form.locator("button[type=submit]").click()
    await page.page.locator(".toast.error").wait_for()  # "cannot reach the server"
    await _dismiss_toasts(page.page)
    await form.locator("button[type=submit]").click()  # the user taps again: the same request
    await page.page.locator(".toast", has_text="Posted").wait_for()
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0], keys
    assert await services.db.posts.count_documents({"author_id": ObjectId(me.id), "text": text}) == 1


async def test_a_cap_says_how_long_and_a_voucher_of_another_store_says_so(phone, client):
    """A daily cap (429 with a Retry-After of hours) tells how long, not "wait a moment"; at the
    counter, a voucher of the merchant's other store is named as such, not "not allowed"."""
    from tests.offers.helpers import create_offer, merchant_with_store

    merchant, store = await merchant_with_store(client)
    other = await client.post("/v1/stores", json={"name": "Second shop", "lat": store["lat"], "lng": store["lng"]},
                              headers=merchant.headers)
    assert other.status_code == 201, other.text
    offer = await create_offer(client, merchant, store["id"], stock=3)
    fan = await register(client)
    claimed = await client.post(f"/v1/offers/{offer['id']}/claim", headers=fan.headers)
    assert claimed.status_code == 201, claimed.text

    shop = await phone(locale="zh-CN")
    await shop.login(merchant.username)
    await shop.route(f"#/store/{other.json()['id']}")
    redeem = shop.page.locator("form.redeem-form")
    await redeem.locator("input[name=code]").fill(claimed.json()["code"])
    await redeem.locator("button[type=submit]").click()
    await shop.page.locator(".redeem-result.error", has_text="这张券属于别的店").wait_for()

    words = await shop.page.evaluate("""async () => {
        const { ApiError } = await import("/static/js/api.js");
        return [new ApiError(429, "rate_limited", "x", [], 7 * 3600).words,
                new ApiError(429, "rate_limited", "x", [], 300).words,
                new ApiError(429, "rate_limited", "x", [], 2).words,
                new ApiError(418, "no_such_code", "an English sentence", []).words,
                new ApiError(502, "http_502", "Bad Gateway", []).words];
    }""")
    assert words == ["已达到上限，请 7 小时后再试。", "已达到上限，请 5 分钟后再试。", "请求太频繁，请稍后再试。",
                     "无法完成，请检查后再试。", "服务繁忙，请稍后再试。"], words
    shop.assert_clean()


async def test_a_photo_upload_refused_401_signs_out(phone, client, services, tmp_path):
    """The upload is an XMLHttpRequest of its own: its 401 signs the page out as any request's does."""
    from tests.media.helpers import encoded, picture

    me = await register(client)
    photo = tmp_path / "p.png"
    photo.write_bytes(encoded(picture((200, 100)), "PNG"))
    page = await phone()
    await page.login(me.username)
    await page.route("#/home")
    token = await page.page.evaluate("localStorage.getItem('solomo.token')")
    await services.accounts.revoke_token(token)  # signed out elsewhere
    await page.page.locator("form.compose input.photo-input").set_input_files(str(photo))
    await page.page.wait_for_selector("form.auth-form.login")
    assert await page.page.evaluate("localStorage.getItem('solomo.token')") is None


async def test_too_far_without_a_device_position_asks_for_it(phone, client):
    """No device position (refused: the page stands at its default place): "get closer" would be no
    help, so the refusal asks for the position."""
    from tests.offers.helpers import merchant_with_store

    _, store = await merchant_with_store(client)  # somewhere random, far from the default place
    me = await register(client)
    page = await phone()  # no geolocation granted
    await page.login(me.username)
    await page.route(f"#/store/{store['id']}")
    await page.page.locator(".store-head button.checkin").click()
    await page.page.locator("form.checkin-form button[type=submit]").click()
    error = page.page.locator("form.checkin-form .error")
    await error.wait_for()
    assert "real location" in await error.inner_text()
    page.assert_clean()
