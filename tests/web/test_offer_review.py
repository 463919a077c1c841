"""An offer whose text holds a review word: the merchant's console says it is held, the
moderator finds it in the queue and approves it, and it goes live."""

from __future__ import annotations

import asyncio

from moderation.matcher import CHECK_INTERVAL_S
from tests.moderation.conftest import extra_words  # noqa: F401  (the fixture)
from tests.moderation.helpers import token
from tests.support import make_account, random_point, register, unique_name
from tests.web.browser import quiet_moderation_queue


async def test_a_held_offer_is_approved_from_the_moderation_queue(phone, client, services, screenshots,
                                                                   extra_words):  # noqa: F811
    review = token("zq")
    await extra_words(review=[review])
    # the live server's matcher notices a new word-list version within CHECK_INTERVAL_S: the offer
    # below must be judged with the new lists, however quickly the page gets there
    await asyncio.sleep(CHECK_INTERVAL_S + 0.5)
    merchant = await register(client, role="merchant")
    moderator = await make_account(services, "moderator")
    lat, lng = random_point()
    resp = await client.post("/v1/stores", headers=merchant.headers,
                             json={"name": unique_name("Held shop"), "lat": lat, "lng": lng})
    assert resp.status_code == 201, resp.text
    store_id = resp.json()["id"]

    shop = await phone(lat=lat, lng=lng)
    await shop.login(merchant.username)
    await shop.route(f"#/store/{store_id}")
    offer_form = shop.page.locator("form.offer-form")
    await offer_form.wait_for()
    title = f"Mystery deal {unique_name('o')}"
    await offer_form.locator("input[name=title]").fill(title)
    await offer_form.locator("input[name=description]").fill(f"a {review} bargain")
    await offer_form.locator("button[type=submit]").click()
    await shop.page.locator(".toast", has_text="held for a moderator").wait_for()
    held = await services.db.offers.find_one({"title": title})
    assert held is not None and held["status"] == "pending_review"
    offer_id = str(held["_id"])

    await quiet_moderation_queue(services, keep=held["_id"])
    mod = await phone()
    await mod.login(moderator.username)
    await mod.page.wait_for_function("document.body.dataset.view === '#/mod/queue'")
    item = mod.page.locator(f".queue-item.offer-item[data-offer-id='{offer_id}']")
    await mod.page_until(item)
    assert title in await item.inner_text()
    await mod.screenshot(screenshots / "moderator_held_offer.png")
    await item.locator("input[name=reason]").fill("checked with the shop")
    await item.locator("button.act-approve").click()
    await item.wait_for(state="detached")
    assert (await services.db.offers.find_one({"_id": held["_id"]}))["status"] == "live"
    shop.assert_clean()
    mod.assert_clean()
