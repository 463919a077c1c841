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
