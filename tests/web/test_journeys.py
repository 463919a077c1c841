"""Shorter journeys through the client: posting, likes, comments and replies, topics, following;
the socket resuming after a drop; a suspended user's open page signing out."""

from __future__ import annotations

from bson import ObjectId

from notifications import recorder
from tests.support import make_account, register, unique_name
from tests.web.browser import LIVE_TIMEOUT_MS
from tests.web.guards import require_routes, require_websocket


async def test_post_like_comment_reply_topic_and_follow(phone, client, celery_worker):
    await require_routes(client, "POST /v1/posts", "GET /v1/feed/home", "POST /v1/posts/{id}/like",
                         "POST /v1/posts/{id}/comments", "GET /v1/posts/{id}/comments", "GET /v1/topics/{id}/posts",
                         "POST /v1/users/{id}/follow", "GET /v1/users/{id}/following", "GET /v1/users/{id}/posts")
    author = await register(client)
    reader = await register(client)
    topic = f"话题{unique_name('t')[2:]}"
    p = await phone()
    await p.login(author.username)
    await p.page.wait_for_function("document.body.dataset.view === '#/home'")
    await p.page.locator("form.compose textarea").fill(f"今天的 #{topic}# 真好 #sunny")
    await p.page.locator("form.compose button[type=submit]").click()
    card = p.page.locator("article.post", has_text=topic).first
    await card.wait_for()
    assert await card.locator("a.topic").all_inner_texts() == [f"#{topic}#", "#sunny"]
    await card.locator("button.like").click()
    await p.page.wait_for_selector("article.post button.like.on:has-text('1')")

    await card.locator("a.comments-link").click()
    await p.page.wait_for_selector("form.comment-form")
    await p.page.locator("form.comment-form textarea").fill("first!")
    await p.page.locator("form.comment-form button[type=submit]").click()
    first = p.page.locator(".comment", has_text="first!")
    await first.wait_for()
    await first.locator("button", has_text="Reply").click()
    assert f"Replying to @{author.username}" in await p.page.locator(".reply-to").inner_text()
    await p.page.locator("form.comment-form textarea").fill("and a reply")
    await p.page.locator("form.comment-form button[type=submit]").click()
    reply = p.page.locator(".comment.reply", has_text="and a reply")
    await reply.wait_for()
    assert f"reply to @{author.username}" in await reply.inner_text()

    await p.page.locator("article.post a.topic", has_text=topic).click()
    await p.page.wait_for_function("document.body.dataset.view.startsWith('#/topic/')")
    await p.page.locator("article.post", has_text=topic).wait_for()
    assert await p.page.locator("h2.topic-title").inner_text() == f"#{topic}#"
    p.assert_clean()

    r = await phone()
    await r.login(reader.username)
    await r.route(f"#/user/{author.id}")
    await r.page.locator(".profile button.follow").click()
    await r.page.wait_for_selector(".profile button.follow.on")
    following = (await client.get(f"/v1/users/{reader.id}/following", headers=reader.headers)).json()
    assert [u["id"] for u in following["items"]] == [author.id]
    await r.page.locator(".profile button.follow").click()
    await r.page.wait_for_selector(".profile button.follow:not(.on)")
    following = (await client.get(f"/v1/users/{reader.id}/following", headers=reader.headers)).json()
    assert following["items"] == []
    await r.route("#/topics")
    await r.page.wait_for_selector("ol.hot-topics li")
    r.assert_clean()


async def test_socket_resumes_with_last_event_id_after_a_drop(phone, client, services, live_server):
    account = await register(client)
    await require_websocket(live_server, account.token)
    p = await phone()
    await p.login(account.username)
    await p.wait_socket_open()
    me = ObjectId(account.id)
    fan = await services.accounts.create_user(unique_name("f"), "password123", "user", "First Fan")
    away = await services.accounts.create_user(unique_name("f"), "password123", "user", "While Away")
    await recorder.record(services, "follow", me, fan["_id"], strict=True)
    await p.page.wait_for_selector(".toast.notification:has-text('First Fan followed you')", timeout=LIVE_TIMEOUT_MS)
    last = await p.page.evaluate(f"localStorage.getItem('solomo.last_event.{account.id}')")
    assert last

    await p.page.evaluate("window.solomo.socket.stop()")
    await p.page.wait_for_selector("body[data-socket='closed']")
    await recorder.record(services, "follow", me, away["_id"], strict=True)
    await p.page.evaluate("window.solomo.socket.start()")
    await p.wait_socket_open()
    await p.page.wait_for_selector(".toast.notification:has-text('While Away followed you')", timeout=LIVE_TIMEOUT_MS)
    assert await p.page.evaluate(f"localStorage.getItem('solomo.last_event.{account.id}')") != last

    # an unplanned drop: the client reconnects by itself
    await p.page.evaluate("window.solomo.socket.drop()")
    await p.wait_socket_open()
    mine = await client.post("/v1/posts", json={"text": "like this"}, headers=account.headers)
    await recorder.record(services, "like", me, fan["_id"], post_id=ObjectId(mine.json()["id"]), strict=True)
    await p.page.wait_for_selector(".toast.notification:has-text('First Fan liked your post')", timeout=LIVE_TIMEOUT_MS)
    p.assert_clean()


async def test_suspended_users_open_page_signs_out(phone, client, services, live_server):
    await require_routes(client, "POST /v1/moderation/users/{id}")
    account = await register(client)
    await require_websocket(live_server, account.token)
    moderator = await make_account(services, "moderator")
    p = await phone()
    await p.login(account.username)
    await p.wait_socket_open()

    mod = await phone()
    await mod.login(moderator.username)
    await mod.route(f"#/mod/users/{account.id}")
    await mod.page.locator("input[name=reason]").fill("spam wave")
    await mod.page.locator("button.primary", has_text="Suspend").click()
    await mod.page.wait_for_selector(f"p[role=status]:has-text('@{account.username}')")

    await p.page.wait_for_selector("form.auth-form.login", timeout=LIVE_TIMEOUT_MS)
    await p.page.wait_for_selector(".toast.error:has-text('This account is suspended.')")
    assert await p.page.evaluate("localStorage.getItem('solomo.token')") is None
    form = p.page.locator("form.auth-form")
    await form.locator("input[name=username]").fill(account.username)
    await form.locator("input[name=password]").fill("password123")
    await form.locator("button[type=submit]").click()
    await form.locator(".error:not([hidden])").wait_for()
    assert await form.locator(".error").inner_text() == "This account is suspended."

    # lifted by the name the moderator knows, not an id; a name nobody has is said so
    await mod.route("#/mod/users")
    await mod.page.locator("input[name=user_id]").fill("@nobody_has_this_name_9")
    await mod.page.locator("input[name=reason]").fill("appeal accepted")
    await mod.page.locator("button", has_text="Unsuspend").click()
    await mod.page.wait_for_selector("p[role=status]:has-text('Not found.')")
    await mod.page.locator("input[name=user_id]").fill(f"@{account.username}")
    await mod.page.locator("button", has_text="Unsuspend").click()
    await mod.page.wait_for_selector(f"p[role=status]:has-text('@{account.username}')")
    assert (await services.db.users.find_one({"_id": ObjectId(account.id)}))["status"] == "active"
    mod.assert_clean()


async def test_a_post_whose_answer_the_network_lost_is_written_once(phone, client, services):
    """The composer's POST reaches the server, but the answer is lost on the way back (the phone
    changed networks): the client sends it again with the same Idempotency-Key, the server answers
    with the first answer, and the post exists once."""
    author = await register(client)
    p = await phone()
    await p.login(author.username)
    await p.page.wait_for_function("document.body.dataset.view === '#/home'")
    keys: list[str | None] = []

    async def lose_first_answer(route) -> None:  # the request is delivered; its answer is not
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            await route.fetch()
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await p.page.route("**/v1/posts", lose_first_answer)
    text = f"once only {unique_name('i')}"
    await p.page.locator("form.compose textarea").fill(text)
    await p.page.locator("form.compose button[type=submit]").click()
    await p.page.locator("article.post", has_text=text).first.wait_for()
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert await services.db.posts.count_documents({"text": text}) == 1
    assert not p.bad_responses, p.bad_responses
