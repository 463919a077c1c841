"""The bell and the inbox in the browser: likes make the author's bell count go up live, the inbox
groups three likers into one entry that opens the post, and "mark all read" clears the badge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import Account, register, unique_name
from tests.web.browser import LIVE_TIMEOUT_MS
from tests.web.guards import require_routes, require_websocket

SHOTS = Path("/work/notes/shots")


async def _person(client: Any, display_name: str) -> Account:
    name = unique_name("f")
    resp = await client.post("/v1/auth/register", json={"username": name, "password": "password123",
                                                        "display_name": display_name})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return Account(body["user"]["id"], name, body["token"], "user", body["user"])


async def _badge(p: Any, count: str) -> None:
    await p.page.wait_for_function(
        "(n) => { const b = document.querySelector('.bell .bell-count');"
        " return b && !b.hidden && b.textContent === n; }",
        arg=count, timeout=LIVE_TIMEOUT_MS)


async def _shot(p: Any, name: str) -> None:
    await p.page.evaluate("document.getElementById('toasts').replaceChildren()")  # the toasts hide the page
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a folder, once)
    await p.screenshot(SHOTS / name)


async def test_likes_raise_the_bell_live_and_the_inbox_groups_them(phone, client, live_server):
    await require_routes(client, "GET /v1/notifications", "GET /v1/notifications/unread",
                         "POST /v1/notifications/read", "POST /v1/posts/{id}/like")
    author = await register(client)
    await require_websocket(live_server, author.token)
    resp = await client.post("/v1/posts", json={"text": "人民广场的鸽子今天特别多 #人民广场#"}, headers=author.headers)
    post = resp.json()
    fans = [await _person(client, name) for name in ("小明", "美美", "Amy")]
    commenter = await _person(client, "李雷")
    p = await phone()
    await p.login(author.username)
    await p.wait_socket_open()
    assert await p.page.locator(".bell .bell-count").is_hidden()

    for n, fan in enumerate(fans, start=1):  # each like moves the badge while the page stays open
        assert (await client.post(f"/v1/posts/{post['id']}/like", headers=fan.headers)).status_code == 200
        await _badge(p, str(n))
    await p.page.wait_for_selector(".toast.notification:has-text('Amy and 2 others liked your post')",
                                   timeout=LIVE_TIMEOUT_MS)
    resp = await client.post(f"/v1/posts/{post['id']}/comments", json={"text": "好多鸽子！"},
                             headers=commenter.headers)
    assert resp.status_code == 201
    await _badge(p, "4")

    await p.page.locator("a.bell").click()
    await p.page.wait_for_function("document.body.dataset.view === '#/notifications'")
    entries = p.page.locator("ul.inbox li.notif")
    await entries.first.wait_for()
    assert await entries.count() == 2
    newest = await entries.nth(0).inner_text()
    assert "李雷 commented on your post" in newest and "好多鸽子！" in newest
    group = entries.nth(1)
    assert "Amy and 2 others liked your post" in await group.inner_text()
    assert await group.locator(".avatar").count() == 3
    assert await group.evaluate("el => el.classList.contains('unread')")
    # opening the inbox reads what it shows: the badge clears, the entries keep their "new" look
    await p.page.wait_for_selector(".bell .bell-count[hidden]", state="attached")
    assert (await client.get("/v1/notifications/unread", headers=author.headers)).json()["total"] == 0
    assert await group.evaluate("el => el.classList.contains('unread')")
    await _shot(p, "inbox-en.png")

    await group.locator("a.notif-link").click()  # tap → the post
    await p.page.wait_for_function(f"document.body.dataset.view === '#/post/{post['id']}'")
    await p.page.go_back()
    await p.page.wait_for_function("document.body.dataset.view === '#/notifications'")
    await p.page.locator("button.mark-all").click()
    await p.page.wait_for_selector(".bell .bell-count[hidden]", state="attached")
    await p.page.wait_for_function("!document.querySelector('ul.inbox li.notif.unread')")
    unread = (await client.get("/v1/notifications/unread", headers=author.headers)).json()
    assert unread["total"] == 0

    # in Chinese, a new like after reading starts a new group
    await p.page.locator("button.lang-switch").click()
    await p.page.wait_for_function("document.body.dataset.view === '#/notifications'")
    late = await _person(client, "韩梅梅")
    assert (await client.post(f"/v1/posts/{post['id']}/like", headers=late.headers)).status_code == 200
    await _badge(p, "1")
    await p.page.wait_for_selector("ul.inbox li.notif.unread:has-text('韩梅梅 赞了你的微博')", timeout=LIVE_TIMEOUT_MS)
    await p.page.locator("button.chip[data-kind=like]").click()
    await p.page.wait_for_function("document.querySelectorAll('ul.inbox li.notif').length === 2")
    await _shot(p, "inbox-zh.png")
    p.assert_clean()


async def test_an_offer_removed_after_its_delivery_reads_as_gone(phone, client, services, live_server):
    """Delivered, then removed by a moderator: the entry stays in the inbox, without the offer
    (which the user can no longer open), in words."""
    from tests.offers.helpers import offer_to_a_follower
    from tests.support import make_account

    _, fan, offer, deliver = await offer_to_a_follower(client, services)
    assert await deliver([(fan.id, 80.0)]) == 1
    moderator = await make_account(services, "moderator")
    resp = await client.post(f"/v1/moderation/offers/{offer['id']}", headers=moderator.headers,
                             json={"action": "remove", "reason": "misleading"})
    assert resp.status_code == 200, resp.text
    p = await phone()
    await p.login(fan.username)
    await p.route("#/notifications")
    entry = p.page.locator("ul.inbox li.notif").first
    await entry.wait_for()
    text = await entry.inner_text()
    assert "An offer that is no longer available" in text and offer["title"] not in text, text
    await _shot(p, "inbox-offer-gone.png")
    p.assert_clean(allow_socket_failures=True)
