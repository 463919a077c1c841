"""Deleting a comment from the post's page: the post's author may (the comment's author and a
moderator too), another reader sees no button; a comment's replies go with it."""

from __future__ import annotations

from bson import ObjectId

from tests.support import register


async def test_the_posts_author_deletes_a_comment_and_its_reply(phone, client, services, screenshots):
    author, commenter, replier, reader = [await register(client) for _ in range(4)]
    post = (await client.post("/v1/posts", json={"text": "周末去哪儿喝咖啡？"}, headers=author.headers)).json()
    url = f"/v1/posts/{post['id']}/comments"
    rude = (await client.post(url, json={"text": "不好喝"}, headers=commenter.headers)).json()
    reply = await client.post(url, json={"text": "同意", "reply_to": rude["id"]}, headers=replier.headers)
    assert reply.status_code == 201, reply.text
    kept = (await client.post(url, json={"text": "街角那家不错"}, headers=reader.headers)).json()

    other = await phone()
    await other.login(reader.username)
    await other.route(f"#/post/{post['id']}")
    await other.page.locator(f".comment[data-comment-id='{rude['id']}']").wait_for()
    assert not await other.page.locator(f".comment[data-comment-id='{rude['id']}'] button.comment-delete").count()
    assert await other.page.locator(f".comment[data-comment-id='{kept['id']}'] button.comment-delete").count() == 1

    page = await phone(locale="zh-CN")
    page.page.on("dialog", lambda dialog: dialog.accept())
    await page.login(author.username)
    await page.route(f"#/post/{post['id']}")
    row = page.page.locator(f".comment[data-comment-id='{rude['id']}']")
    await row.wait_for()
    await page.screenshot(screenshots / "comments-delete-zh.png")
    await row.locator("button.comment-delete").click()
    await page.page.locator(".toast", has_text="评论已删除").wait_for()
    await row.wait_for(state="detached")
    await page.page.locator(f".comment[data-comment-id='{reply.json()['id']}']").wait_for(state="detached")
    assert await page.page.locator(f".comment[data-comment-id='{kept['id']}']").count() == 1
    statuses = {str(c["_id"]): c["status"] async for c in services.db.comments.find({"post_id": ObjectId(post["id"])})}
    assert statuses == {rude["id"]: "deleted", reply.json()["id"]: "deleted", kept["id"]: "published"}
    page.assert_clean()
    other.assert_clean()
