"""A merchant opens a store's insights from the console (issue 17): the numbers, the daily line,
the hour bars, the offer funnel and the top topics are drawn on the page, in Chinese and English."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bson import ObjectId

from checkins.bulkvisits import load_visits
from tests.offers.helpers import create_offer
from tests.support import random_point, register

SHOTS = Path("/work/notes/shots")


async def _seeded_store(client, services):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    resp = await client.post("/v1/stores", json={"name": "晨光咖啡 Dawn Coffee", "lat": lat, "lng": lng,
                                                 "category": "cafe"}, headers=merchant.headers)
    store = resp.json()
    users = [ObjectId((await register(client)).id) for _ in range(8)]
    rng = random.Random(17)
    now = datetime.now(UTC)
    visits = []
    for day in range(1, 60):
        for user in users:
            if rng.random() < (0.5 if users.index(user) < 3 else 0.15):
                at = (now - timedelta(days=day)).replace(hour=rng.choice([1, 4, 5, 10, 11, 12]),
                                                         minute=rng.randint(0, 59), microsecond=0)
                visits.append((user, at, ["coffee"] if rng.random() < 0.3 else []))
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    await load_visits(services, doc, visits)
    offer = await create_offer(client, merchant, store["id"], title="第二杯半价")
    oid = ObjectId(offer["id"])
    await services.db.offers.update_one({"_id": oid}, {"$set": {"pushed": 40}})
    await services.db.vouchers.insert_many([
        {"offer_id": oid, "user_id": ObjectId(), "code": f"W{oid}{i}", "status": "redeemed" if i < 6 else "claimed"}
        for i in range(15)])
    await services.db.points_ledger.insert_many([
        {"user_id": users[0], "store_id": doc["_id"], "kind": "checkin", "points": 10,
         "created_at": now - timedelta(days=2), "day": "x"},
        {"user_id": users[0], "store_id": doc["_id"], "kind": "spend", "points": -30,
         "created_at": now - timedelta(days=1), "day": "x"}])
    return merchant, store, len(visits)


async def _open(page, merchant, store) -> None:
    await page.login(merchant.username)
    await page.route("#/merchant")
    await page.page.locator(f'li.store[data-store-id="{store["id"]}"] a.insights-link').click()
    await page.page.wait_for_selector(".page.insights[data-ready='30']")


async def test_insights_page_draws_the_charts(phone, client, services):
    merchant, store, visits = await _seeded_store(client, services)
    api = (await client.get(f"/v1/stores/{store['id']}/insights", headers=merchant.headers)).json()
    page = await phone(locale="zh-CN")
    await _open(page, merchant, store)
    p = page.page
    line = p.locator("svg.line-chart")
    assert await line.get_attribute("data-points") == "30"
    assert await line.locator("path.line").count() == 1
    assert await p.locator("svg.hour-bars rect[data-hour]").count() == 24
    bars = {int(await r.get_attribute("data-hour")): int(await r.get_attribute("data-value"))
            for r in await p.locator("svg.hour-bars rect[data-hour]").all()}
    assert [bars[h] for h in range(24)] == api["hours"] and sum(api["hours"]) > 0
    funnel = {await r.get_attribute("data-step"): await r.get_attribute("data-value")
              for r in await p.locator("section.offers svg.funnel rect").all()}
    assert funnel == {"pushed": "40", "claimed": "15", "redeemed": "6"}
    total = sum(d["checkins"] for d in api["days"])
    assert await p.locator(".tile.checkins .tile-value").inner_text() == str(total)
    assert await p.locator(".tile.points .tile-value").inner_text() == "10 / 30"
    assert await p.locator(".tile.repeat .tile-value").inner_text() == f"{round(api['repeat_rate'] * 1000) / 10:g}%"
    assert await p.locator("ol.top-topics li").first.inner_text() == f"#coffee {api['top_topics'][0]['post_count']}"
    await p.get_by_text("经营数据", exact=False).first.wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a local folder, once)
    await page.screenshot(SHOTS / "insights-zh.png")
    await p.evaluate("document.querySelector('section.hours').scrollIntoView({block: 'start'})")
    await page.screenshot(SHOTS / "insights-zh-funnel.png")
    # another period redraws the line with one point per day
    await p.locator('.period button[data-days="7"]').click()
    await p.wait_for_selector(".page.insights[data-ready='7']")
    assert await line.count() == 0 or await p.locator("svg.line-chart").get_attribute("data-points") == "7"
    assert await p.locator("svg.line-chart circle").count() == 7
    page.assert_clean(allow_socket_failures=True)
    assert visits > 50

    # the owner moves the store's calendar on the edit screen; the insights say so
    await page.route(f"#/store/{store['id']}/edit")
    form = p.locator("form.store-edit")
    await form.locator("input[name=timezone]").fill("Europe/London")
    await form.locator("button[type=submit]").click()
    await p.locator(".toast", has_text="已保存").wait_for()
    assert (await services.db.stores.find_one({"_id": ObjectId(store["id"])}))["timezone"] == "Europe/London"
    await page.route(f"#/store/{store['id']}/insights")
    await p.wait_for_selector(".page.insights[data-ready='30']")
    assert "Europe/London" in await p.locator("p.tz").inner_text()
    page.assert_clean(allow_socket_failures=True)

    english = await phone()
    await _open(english, merchant, store)
    await english.page.get_by_text("Repeat rate").first.wait_for()
    await english.screenshot(SHOTS / "insights-en.png")
    english.assert_clean(allow_socket_failures=True)
