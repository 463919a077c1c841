"""Reposts in the browser: a repost with a comment made from the compose sheet appears live in a
follower's open feed with the original embedded; reposting it there shows the //@ chain; the
post's page lists its reposts; a removed original shows as unavailable in every repost."""

from __future__ import annotations

from tests.feed.helpers import follow, post, ready_home
from tests.support import make_account, register, unique_name
from tests.web.browser import LIVE_TIMEOUT_MS
from tests.web.guards import require_routes, require_websocket


async def test_repost_with_comment_reaches_a_followers_open_page(phone, client, services, live_server, celery_worker,
                                                                 screenshots):
    await require_routes(client, "POST /v1/posts/{id}/repost", "GET /v1/posts/{id}/reposts", "GET /v1/feed/home")
    alice, carol, bob = await register(client), await register(client), await register(client)
    await require_websocket(live_server, bob.token)
    await follow(client, carol, alice)
    await follow(client, bob, carol)  # bob follows the reposter only
    await ready_home(client, services, bob)
    original = await post(client, alice, f"Sunset over the Bund #{unique_name('bund')}#")

    bob_page = await phone()
    await bob_page.login(bob.username)
    await bob_page.page.wait_for_function("document.body.dataset.view === '#/home'")
    await bob_page.wait_socket_open()
    await bob_page.page.evaluate("window.__same_page = true")

    carol_page = await phone()
    await carol_page.login(carol.username)
    await carol_page.route(f"#/post/{original['id']}")
    await carol_page.page.locator("article.post button.repost-btn").first.click()
    sheet = carol_page.page.locator(".repost-sheet")
    await sheet.locator("textarea").fill("Look at this! @" + alice.username)
    await carol_page.screenshot(screenshots / "reposts-compose.png")
    await sheet.locator("button[type=submit]").click()
    await carol_page.page.wait_for_selector(".toast:has-text('Reposted')")
    assert await carol_page.page.locator("article.post button.repost-btn").first.inner_text() == "1"

    # bob's open home page gets carol's repost live, the original embedded in the card
    card = bob_page.page.locator("article.post", has_text="Look at this!")
    await card.wait_for(timeout=LIVE_TIMEOUT_MS)
    embedded = card.locator(".repost-original")
    assert await embedded.get_attribute("data-original-id") == original["id"]
    assert "Sunset over the Bund" in await embedded.inner_text()
    assert await bob_page.page.evaluate("window.__same_page") is True
    await bob_page.screenshot(screenshots / "reposts-feed.png")

    # bob reposts carol's repost: the chain, Weibo-style, and still alice's original embedded
    await card.locator("button.repost-btn").click()
    sheet = bob_page.page.locator(".repost-sheet")
    assert "//@" + carol.username in await sheet.locator(".chain-preview").inner_text()
    await sheet.locator("textarea").fill("+1")
    await sheet.locator("button[type=submit]").click()
    mine = bob_page.page.locator("article.post", has_text="+1").first
    await mine.wait_for()
    assert await mine.locator(".text .chain").inner_text() == f"//@{carol.username}: Look at this! @{alice.username}"
    assert await mine.locator(".repost-original").get_attribute("data-original-id") == original["id"]
    await bob_page.screenshot(screenshots / "reposts-chain.png")

    # the original's page: its repost count and the list of reposts, newest first
    await bob_page.route(f"#/post/{original['id']}")
    reposts = bob_page.page.locator("section.reposts article.post")
    await reposts.nth(1).wait_for()
    assert await reposts.count() == 2
    assert "+1" in await reposts.nth(0).inner_text() and await reposts.locator(".repost-original").count() == 0
    assert await bob_page.page.locator("section.reposts h3 .muted").inner_text() == "2"
    await bob_page.page.locator("section.reposts").scroll_into_view_if_needed()
    await bob_page.screenshot(screenshots / "reposts-list.png")

    # a moderator removes the original: every repost shows it unavailable (zh)
    mod = await make_account(services, "moderator")
    resp = await client.post(f"/v1/moderation/posts/{original['id']}", headers=mod.headers,
                             json={"action": "remove", "reason": "test"})
    assert resp.status_code == 200, resp.text
    zh_page = await phone(locale="zh-CN")
    await zh_page.login(bob.username)
    gone = zh_page.page.locator("article.post", has_text="+1").first.locator(".repost-original.unavailable")
    await gone.wait_for()
    assert await gone.inner_text() == "抱歉，原微博已无法查看。"
    card = zh_page.page.locator("article.post", has_text="+1").first
    assert await card.locator("button.repost-btn").is_disabled()  # nothing left to repost
    await zh_page.screenshot(screenshots / "reposts-unavailable-zh.png")
    for p in (bob_page, carol_page, zh_page):
        p.assert_clean()
