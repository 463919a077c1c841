"""Claiming an offer from the store's offers page (a second claim says it was already claimed;
a sold-out one says so; the wallet lists the offers around the user), and a comment held for
review: its author sees it waiting, a moderator approves it from the held-comments screen, and
then everyone sees it published."""

from __future__ import annotations

import asyncio
import re

from bson import ObjectId

from moderation.matcher import CHECK_INTERVAL_S
from tests.moderation.conftest import extra_words  # noqa: F401  (the fixture)
from tests.moderation.helpers import token
from tests.offers.helpers import create_offer
from tests.support import make_account, random_point, register, unique_name


async def _shot(page, path) -> None:
    await page.page.evaluate("document.getElementById('toasts').replaceChildren()")  # not over the screen
    await page.screenshot(path)


async def test_a_user_claims_an_offer_on_the_store_offers_page(phone, client, services, screenshots):
    merchant = await register(client, role="merchant")
    lat, lng = random_point()
    resp = await client.post("/v1/stores", headers=merchant.headers,
                             json={"name": unique_name("人民广场咖啡"), "lat": lat, "lng": lng, "category": "cafe"})
    assert resp.status_code == 201, resp.text
    store = resp.json()
    latte = await create_offer(client, merchant, store["id"], title="拿铁第二杯半价", stock=20,
                               description="下午两点到五点，出示券码即可")
    last = await create_offer(client, merchant, store["id"], title="最后一份提拉米苏", stock=1)
    user = await register(client)

    page = await phone(lat=lat, lng=lng, locale="zh-CN")
    await page.login(user.username)
    await page.route(f"#/store/{store['id']}/offers")
    row = page.page.locator(f"li.offer-row[data-offer-id='{latte['id']}']")
    claim = row.locator("button.claim-offer")
    await claim.wait_for()
    assert await claim.inner_text() == "领取"
    assert await page.page.locator("button.end-offer").count() == 0  # not the owner's
    await _shot(page, screenshots / "store_offers_claim_zh.png")

    await claim.click()
    sheet = page.page.locator(".voucher-sheet")
    await sheet.wait_for()
    assert await sheet.locator(".sheet-head h2").inner_text() == "已领取"
    code = await sheet.locator(".code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code)
    await page.page.wait_for_function("document.querySelector('.voucher-sheet img.qr').naturalWidth > 0")
    assert "已领 1/20" in await row.inner_text()
    await _shot(page, screenshots / "store_offers_voucher_zh.png")
    await sheet.locator("button.close").click()
    await sheet.wait_for(state="detached")

    # a second claim: the same voucher, said to be claimed already
    assert await claim.inner_text() == "我的券"
    await claim.click()
    await sheet.wait_for()
    assert await sheet.locator(".sheet-head h2").inner_text() == "你已经领过这张券了"
    assert await sheet.locator(".code").inner_text() == code
    await sheet.locator("button.close").click()
    assert await services.db.vouchers.count_documents({"offer_id": ObjectId(latte["id"]),
                                                       "user_id": ObjectId(user.id)}) == 1

    # someone else takes the last one while the page is open: the claim says it is sold out
    other = await register(client)
    resp = await client.post(f"/v1/offers/{last['id']}/claim", headers=other.headers)
    assert resp.status_code == 201, resp.text
    sold = page.page.locator(f"li.offer-row[data-offer-id='{last['id']}']")
    await sold.locator("button.claim-offer").click()
    await sold.locator(".claim-error", has_text="抱歉，优惠已被领完。").wait_for()
    await page.page.locator(f"li.offer-row[data-offer-id='{last['id']}'][data-status='sold_out']").wait_for()
    assert await sold.locator("button.claim-offer").count() == 0

    # back on the page later, the offer already held reads "my voucher" from the start
    await page.page.reload()
    await page.page.wait_for_function("(h) => document.body.dataset.ready === '1' && document.body.dataset.view === h",
                                      arg=f"#/store/{store['id']}/offers")
    assert await claim.inner_text() == "我的券"
    assert await page.page.locator(f"li.offer-row[data-offer-id='{last['id']}']").count() == 0  # sold out: not listed

    # the wallet lists the live offers around the user (GET /v1/offers/nearby), the held one as such
    await page.route("#/wallet")
    nearby = page.page.locator(f".nearby-offers li.offer-row[data-offer-id='{latte['id']}']")
    await nearby.scroll_into_view_if_needed()
    assert await nearby.locator("button.claim-offer").inner_text() == "我的券"
    assert store["name"] in await nearby.locator("a.offer-store").inner_text()
    await _shot(page, screenshots / "wallet_nearby_offers_zh.png")
    page.assert_clean(allow_socket_failures=True)


async def _quiet_comment_queue(services, keep: ObjectId) -> None:
    """Only ``keep`` waits in the held-comments queue (test database only: the suite leaves many
    held comments behind, more than a browser can page through)."""
    await services.db.comments.update_many({"_id": {"$ne": keep}, "status": "pending_review"},
                                           {"$set": {"status": "removed"}})


async def test_a_held_comment_waits_then_a_moderator_approves_it(phone, client, services, screenshots,
                                                                  extra_words):  # noqa: F811
    review = token("zq")
    await extra_words(review=[review])
    await asyncio.sleep(CHECK_INTERVAL_S + 0.5)  # the live server's matcher picks the new list up
    poster = await register(client)
    author = await register(client)
    reader = await register(client)
    moderator = await make_account(services, "moderator")
    resp = await client.post("/v1/posts", headers=poster.headers, json={"text": "周末去哪儿喝咖啡？#周末#"})
    assert resp.status_code == 201, resp.text
    post = resp.json()

    page = await phone(locale="zh-CN")
    await page.login(author.username)
    await page.route(f"#/post/{post['id']}")
    form = page.page.locator("form.comment-form")
    text = f"推荐街角那家 {review} 小店"
    await form.locator("textarea[name=text]").fill(text)
    await form.locator("button[type=submit]").click()
    mine = page.page.locator(".comment[data-status='pending_review']", has_text=text)
    await mine.wait_for()
    assert "审核中" in await mine.locator(".comment-status").inner_text()
    await page.page.locator(".toast", has_text="审核通过后").wait_for()
    await _shot(page, screenshots / "comment_waiting_zh.png")
    held = await services.db.comments.find_one({"text": text})
    assert held is not None and held["status"] == "pending_review"
    comment_id = str(held["_id"])

    await _quiet_comment_queue(services, held["_id"])
    mod = await phone()
    await mod.login(moderator.username)
    await mod.page.wait_for_function("document.body.dataset.view === '#/mod/queue'")
    await mod.page.locator(".queue-switch a[data-queue='comments']").click()
    await mod.page.wait_for_function("document.body.dataset.view === '#/mod/queue/comments'")
    assert await mod.page.locator("nav.tabs .tab.active").evaluate_all("els => els.map(e => e.dataset.tab)") == [
        "queue"]
    item = mod.page.locator(f".comment-item[data-comment-id='{comment_id}']")
    await item.wait_for()
    assert text in await item.inner_text() and "周末去哪儿喝咖啡" in await item.inner_text()
    await _shot(mod, screenshots / "held_comments.png")
    await mod.page.locator("button.lang-switch").click()  # the same screen in Chinese
    await mod.page.locator(".queue-switch a[data-queue='comments'].active", has_text="评论").wait_for()
    await item.wait_for()
    await _shot(mod, screenshots / "held_comments_zh.png")
    await item.locator("button.act-approve").click()  # no reason yet: asked for one
    await mod.page.locator(".toast.error", has_text="请填写理由").wait_for()
    await item.locator("input[name=reason]").fill("正常推荐")
    await item.locator("button.act-approve").click()
    await item.wait_for(state="detached")
    await mod.page.locator(".held-comments .empty", has_text="没有待审核的评论").wait_for()
    assert (await services.db.comments.find_one({"_id": held["_id"]}))["status"] == "published"

    other = await phone()
    await other.login(reader.username)
    await other.route(f"#/post/{post['id']}")
    shown = other.page.locator(f".comment[data-comment-id='{comment_id}']")
    await shown.wait_for()
    assert await shown.get_attribute("data-status") == "published"
    assert await shown.locator(".comment-status").count() == 0
    await page.page.reload()  # the author, on the same page
    await page.page.locator(f".comment[data-comment-id='{comment_id}'][data-status='published']").wait_for()
    for p in (page, mod, other):
        p.assert_clean(allow_socket_failures=True)
