"""Blocks in the browser: a user blocks someone from their profile (after a confirming sheet); the
blocked user, whose page still shows the post, can no longer comment on it nor open it again, nor
follow; the blocker finds them in the "blocked" list of the me page and undoes it there."""

from __future__ import annotations

from pathlib import Path

import pytest
from bson import ObjectId

from tests.feed.helpers import follow
from tests.support import register

NOTES_SHOTS = Path("/work/notes/shots")


@pytest.fixture
def shots(screenshots: Path) -> Path:
    """The session's notes folder when there is one (reviewed by hand), else the artifacts folder."""
    if NOTES_SHOTS.parent.is_dir():
        NOTES_SHOTS.mkdir(exist_ok=True)
        return NOTES_SHOTS
    return screenshots


async def test_block_from_profile_then_undo_from_the_list(phone, client, services, shots):
    blocker, blocked = await register(client), await register(client)
    await follow(client, blocked, blocker)
    resp = await client.post("/v1/posts", json={"text": "a quiet afternoon at the lake"}, headers=blocker.headers)
    assert resp.status_code == 201, resp.text
    post_id = resp.json()["id"]

    reader = await phone()  # the one about to be blocked has the post open
    await reader.login(blocked.username)
    await reader.route(f"#/post/{post_id}")
    await reader.page.locator("form.comment-form").wait_for()

    me = await phone(locale="zh-CN")
    await me.login(blocker.username)
    await me.route(f"#/user/{blocked.id}")
    await me.page.locator("button.block-toggle").click()
    sheet = me.page.locator(".sheet .confirm-sheet")
    await sheet.wait_for()
    assert "互相取消关注" in await sheet.inner_text()
    await me.screenshot(shots / "blocks-confirm.png")
    await sheet.locator("button.confirm-go").click()
    await me.page.locator("button.block-toggle.on", has_text="解除拉黑").wait_for()
    assert await services.db.follows.count_documents({"follower_id": ObjectId(blocked.id)}) == 0
    await me.screenshot(shots / "blocks-profile.png")

    # the blocked user: the open page no longer takes a comment, and the post is gone on reopening
    form = reader.page.locator("form.comment-form")
    await form.locator("textarea").fill("hello?")
    await form.locator("button[type=submit]").click()
    await reader.page.locator(".toast.error", has_text="blocked").wait_for()
    await reader.page.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")
    await reader.route("#/home")
    await reader.route(f"#/post/{post_id}")
    await reader.page.locator("p.empty").wait_for()
    assert not await reader.page.locator("article.post").count()
    await reader.route(f"#/user/{blocker.id}")
    await reader.page.locator(".blocked-by").wait_for()
    await reader.page.locator("button.follow").click()
    await reader.page.locator(".toast.error", has_text="blocked").wait_for()
    await reader.page.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")
    await reader.screenshot(shots / "blocks-blocked-user.png")

    # the blocker undoes it from the me page's list
    await me.route("#/me")
    await me.page.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")
    await me.screenshot(shots / "blocks-me.png")
    await me.page.locator(".shut-out-links a[href='#/me/blocks']").click()
    row = me.page.locator(f".shut-out-list li.person[data-user-id='{blocked.id}']")
    await row.wait_for()
    await me.page.evaluate("document.querySelectorAll('.toast').forEach((el) => el.remove())")
    await me.screenshot(shots / "blocks-list.png")
    await row.locator("button.undo").click()
    await row.wait_for(state="detached")
    await me.page.locator(".shut-out-list li.empty").wait_for()
    resp = await client.get(f"/v1/posts/{post_id}", headers=blocked.headers)
    assert resp.status_code == 200, resp.text
    me.assert_clean()
    reader.assert_clean()
