"""Store insights against a small hand-built history: each figure, time zones, bad input, authorization."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from checkins.checkin import check_in
from checkins.localtime import local_day, today
from checkins.visitdays import backfill_visit_days, rebuild_store
from search.topics import sync_post
from solomo.core.errors import ApiError
from tests.checkins.helpers import checkin, new_store, principal
from tests.offers.helpers import create_offer
from tests.support import Account, register, wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: date, hh: int, mm: int, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=zone).astimezone(UTC)


async def insights(client: Any, owner: Account, store: dict[str, Any], days: int | None = None) -> dict[str, Any]:
    query = "" if days is None else f"?days={days}"
    resp = await client.get(f"/v1/stores/{store['id']}/insights{query}", headers=owner.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def rollups(services: Any, store_id: str) -> tuple[list[Any], list[Any]]:
    sid = ObjectId(store_id)
    days = await services.db.store_days.find({"store_id": sid}, {"_id": 0}).sort("day", 1).to_list(None)
    for d in days:  # a tally moved down to 0 and one never written are the same
        d["hours"] = {h: n for h, n in d["hours"].items() if n}
        d["last_of"], d["prev_of"] = d.get("last_of", 0), d.get("prev_of", 0)
    visitors = await services.db.store_visitors.find({"store_id": sid}, {"_id": 0, "first_at": 0}).sort(
        "user_id", 1).to_list(None)
    return days, visitors


async def _history(client: Any, services: Any) -> tuple[Account, dict[str, Any], date, list[Account]]:
    """a: D 23:20 and D+1 00:30 Shanghai (two local days, one UTC day), D+2 09:00; b: D+1 10:00 and
    12:00 (one day); today is D+3."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    assert store["timezone"] == "Asia/Shanghai"
    a, b = await register(client), await register(client)
    d = today({"timezone": "Asia/Shanghai"}) - timedelta(days=3)
    lat, lng = store["lat"], store["lng"]
    for who, when in ((a, at(d, 23, 20)), (a, at(d + timedelta(days=1), 0, 30)),
                      (b, at(d + timedelta(days=1), 10, 0)), (b, at(d + timedelta(days=1), 12, 0)),
                      (a, at(d + timedelta(days=2), 9, 0))):
        await check_in(services, principal(who), store["id"], lat, lng, now=when)
    return merchant, store, d, [a, b]


def row(day: date, checkins: int, unique: int, new: int) -> dict[str, Any]:
    return {"date": day.isoformat(), "checkins": checkins, "unique_visitors": unique, "new_visitors": new,
            "returning_visitors": unique - new}


async def test_days_hours_and_visitors_follow_the_store_local_calendar(client, services):
    merchant, store, d, _ = await _history(client, services)
    week = await insights(client, merchant, store, 7)
    assert [r["date"] for r in week["days"]] == [(d + timedelta(days=i - 3)).isoformat() for i in range(7)]
    assert week["days"][3:] == [row(d, 1, 1, 1), row(d + timedelta(days=1), 3, 2, 1),
                                row(d + timedelta(days=2), 1, 1, 0), row(d + timedelta(days=3), 0, 0, 0)]
    assert week["days"][:3] == [row(d + timedelta(days=i - 3), 0, 0, 0) for i in range(3)]
    expected_hours = [0] * 24
    for hour in (23, 0, 10, 12, 9):
        expected_hours[hour] += 1
    assert week["hours"] == expected_hours
    assert week["repeat_rate"] == 0.5  # a came on 3 days, b on one
    # the window moves the figures: D+1..D+3 still has a on two days; D+2..D+3 only one day of a
    assert (await insights(client, merchant, store, 3))["repeat_rate"] == 0.5
    two = await insights(client, merchant, store, 2)
    assert two["repeat_rate"] == 0.0 and two["days"][0] == row(d + timedelta(days=2), 1, 1, 0)
    assert two["hours"][9] == 1 and sum(two["hours"]) == 1
    default = await insights(client, merchant, store)
    assert len(default["days"]) == 30 and default["days"][-1]["date"] == (d + timedelta(days=3)).isoformat()
    assert sum(r["checkins"] for r in default["days"]) == 5


async def test_another_time_zone_and_changing_it_rebuilds_the_rollups(client, services):
    merchant, store, late = await _night_in_new_york(client, services)
    assert store["timezone"] == "America/New_York"
    ny = ZoneInfo("America/New_York")
    d = late.astimezone(ny).date()
    early = at(d + timedelta(days=1), 0, 45, ny)
    got = await insights(client, merchant, store, 3)
    assert got["days"][:2] == [row(d, 1, 1, 1), row(d + timedelta(days=1), 1, 1, 0)]
    assert got["hours"][23] == 1 and got["hours"][0] == 1 and got["repeat_rate"] == 1.0
    # in Shanghai (12 or 13 hours ahead) both instants fall on one local afternoon
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"timezone": "Asia/Shanghai"},
                              headers=merchant.headers)
    assert resp.status_code == 200 and resp.json()["timezone"] == "Asia/Shanghai"
    moved = await insights(client, merchant, store, 5)
    sh_day = late.astimezone(SHANGHAI).date()
    assert sh_day == early.astimezone(SHANGHAI).date()
    assert [r for r in moved["days"] if r["checkins"]] == [row(sh_day, 2, 1, 1)]
    assert moved["hours"][late.astimezone(SHANGHAI).hour] == 1 and moved["repeat_rate"] == 0.0


async def test_concurrent_time_zone_changes_leave_whole_rollups_of_the_saved_zone(client, services):
    """Each time zone change rebuilds the store's rollups from its check-ins; two at once (or more)
    must neither fail on the one-row-per-day index nor leave days of one zone mixed with another's:
    the rollups end as a rebuild in the zone the store kept."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    visitors = [await register(client) for _ in range(6)]
    start = today({"timezone": "Asia/Shanghai"}) - timedelta(days=60)
    for n in range(60):  # a visit every day at a different hour: most days differ between the zones
        who = visitors[n % len(visitors)]
        await check_in(services, principal(who), store["id"], store["lat"], store["lng"],
                       now=at(start + timedelta(days=n), n % 24, 10))
    url = f"/v1/stores/{store['id']}"
    for zones in (("America/New_York", "Asia/Kolkata"), ("Europe/London", "Pacific/Auckland", "Asia/Shanghai")):
        answers = await asyncio.gather(*(client.patch(url, json={"timezone": z}, headers=merchant.headers)
                                         for z in zones))
        assert [r.status_code for r in answers] == [200] * len(zones), [r.text for r in answers]
        doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
        assert doc["timezone"] in zones
        written = await rollups(services, store["id"])
        await rebuild_store(services, doc)
        assert written == await rollups(services, store["id"]), doc["timezone"]


async def _night_in_new_york(client: Any, services: Any) -> tuple[Account, dict[str, Any], datetime]:
    """A New York store where one visitor came at 23:30 and at 00:45 the next night: two days in
    New York, one afternoon in Shanghai. Returns the merchant, the store and the first visit."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant, timezone="America/New_York")
    ny = ZoneInfo("America/New_York")
    c = await register(client)
    d = today({"timezone": "America/New_York"}) - timedelta(days=2)
    late, early = at(d, 23, 30, ny), at(d + timedelta(days=1), 0, 45, ny)
    for when in (late, early):
        await check_in(services, principal(c), store["id"], store["lat"], store["lng"], now=when)
    return merchant, store, late


def _rebuild_fails_once(monkeypatch: Any) -> None:
    """The time zone change's rebuild fails once, after the zone was saved (its transaction ran
    past the time limit, say); later ones run."""
    from pymongo.errors import ExecutionTimeout

    from checkins import storeedit

    calls: list[int] = []
    real = storeedit.rebuild_store

    async def fails_first(services_: Any, store: dict[str, Any]) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise ExecutionTimeout("operation exceeded time limit", 50)
        return await real(services_, store)

    monkeypatch.setattr(storeedit, "rebuild_store", fails_first)


async def _in_shanghai(client: Any, merchant: Account, store: dict[str, Any], late: datetime) -> bool:
    """Whether the store's insights show the night as one Shanghai afternoon (the rollups were
    rebuilt in Shanghai's calendar)."""
    got = await insights(client, merchant, store, 5)
    return [r for r in got["days"] if r["checkins"]] == [row(late.astimezone(SHANGHAI).date(), 2, 1, 1)]


async def test_a_time_zone_change_whose_rebuild_failed_is_rebuilt_when_saved_again(client, services, monkeypatch):
    """The zone is saved first and the rollups rebuilt last: a retry of the same edit sees the zone
    already saved, and must still rebuild them (they stayed in the old calendar for good)."""
    merchant, store, late = await _night_in_new_york(client, services)
    _rebuild_fails_once(monkeypatch)
    url, body = f"/v1/stores/{store['id']}", {"timezone": "Asia/Shanghai"}
    failed = await client.patch(url, json=body, headers=merchant.headers)
    assert failed.status_code == 503, failed.text
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["timezone"] == "Asia/Shanghai" and not await _in_shanghai(client, merchant, store, late)
    again = await client.patch(url, json=body, headers=merchant.headers)
    assert again.status_code == 200, again.text
    assert await _in_shanghai(client, merchant, store, late)
    written = await rollups(services, store["id"])
    await rebuild_store(services, await services.db.stores.find_one({"_id": ObjectId(store["id"])}))
    assert await rollups(services, store["id"]) == written


async def test_the_sweep_rebuilds_rollups_a_time_zone_change_left_in_the_old_zone(client, services, monkeypatch,
                                                                                 celery_worker):
    """The edit's rebuild failed and nobody saved the store again: the maintenance sweep (through
    the real worker) rebuilds the rollups in the store's zone."""
    from checkins.visitdays import PENDING
    from solomo.core import tasknames
    from workers.app import app as celery_app

    assert tasknames.ROLLUPS_SWEEP in {e["task"] for e in celery_app.conf.beat_schedule.values()}
    merchant, store, late = await _night_in_new_york(client, services)
    _rebuild_fails_once(monkeypatch)
    failed = await client.patch(f"/v1/stores/{store['id']}", json={"timezone": "Asia/Shanghai"},
                                headers=merchant.headers)
    assert failed.status_code == 503, failed.text
    sid = ObjectId(store["id"])
    # the sweep leaves a change alone while its request may still be rebuilding: this one is older
    await services.db.stores.update_one({"_id": sid}, {"$set": {PENDING: datetime.now(UTC) - timedelta(minutes=5)}})
    assert not await _in_shanghai(client, merchant, store, late)
    await services.tasks.send(tasknames.ROLLUPS_SWEEP)

    async def rebuilt() -> bool:
        return PENDING not in await services.db.stores.find_one({"_id": sid})

    await wait_until(rebuilt, timeout=30)
    assert await _in_shanghai(client, merchant, store, late)


def _check_ins_after_the_read(monkeypatch: Any, store: dict[str, Any],
                              visits: list[tuple[Account, datetime | None]]) -> set[str]:
    """The rebuild's read of the history is followed, before its transaction, by these check-ins
    (each committed); returns their store-local days, once they are made."""
    from checkins import visitdays

    real = visitdays._tally_visits
    days: set[str] = set()

    async def read_then_check_ins(services_: Any, store_: dict[str, Any]) -> Any:
        read = await real(services_, store_)
        for who, when in visits:
            done = await check_in(services_, principal(who), store["id"], store["lat"], store["lng"], now=when)
            days.add(local_day(store_, done.checkin["created_at"]))
        return read

    monkeypatch.setattr(visitdays, "_tally_visits", read_then_check_ins)
    return days


async def test_a_check_in_committed_while_a_rebuild_reads_the_history_is_counted(client, services, monkeypatch):
    """The rebuild reads the check-ins outside its transaction: those committed after that read
    and before the transaction must not be dropped from the rollups, nor their visitors' newest
    day — not even one dated before the newest check-in read (check-ins at a store commit one
    after the other, not always in the order of their times)."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    regular, passer, newcomer = await register(client), await register(client), await register(client)
    now = datetime.now(UTC)
    await check_in(services, principal(regular), store["id"], store["lat"], store["lng"], now=now - timedelta(days=2))
    await check_in(services, principal(passer), store["id"], store["lat"], store["lng"], now=now)
    # the regular comes back; the newcomer's first visit was dated a moment before the passer's
    late_days = _check_ins_after_the_read(monkeypatch, store,
                                          [(regular, None), (newcomer, now - timedelta(seconds=30))])
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert await rebuild_store(services, doc)
    days, visitors = await rollups(services, store["id"])
    assert sum(r["checkins"] for r in days) == 4 and sum(r["new"] for r in days) == 3
    last = {v["user_id"]: v["last_day"] for v in visitors}
    assert {last[ObjectId(regular.id)], last[ObjectId(newcomer.id)]} == late_days
    monkeypatch.undo()
    await rebuild_store(services, doc)  # nothing raced this one
    assert await rollups(services, store["id"]) == (days, visitors)


async def test_a_rebuild_gives_up_when_older_check_ins_appear_under_its_read(client, services, monkeypatch):
    """A check-in dated long before the read that commits after it (a tool's past visit) is not
    among those the transaction reads again: the rebuild writes nothing and marks the store for
    the sweep, and the check-in keeps the rollups its own transaction wrote."""
    from checkins.visitdays import PENDING

    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    u = await register(client)
    await check_in(services, principal(u), store["id"], store["lat"], store["lng"])
    sid = ObjectId(store["id"])
    _check_ins_after_the_read(monkeypatch, store, [(await register(client), datetime.now(UTC) - timedelta(days=3))])
    assert not await rebuild_store(services, await services.db.stores.find_one({"_id": sid}))
    written = await rollups(services, store["id"])
    assert sum(r["checkins"] for r in written[0]) == 2
    assert PENDING in await services.db.stores.find_one({"_id": sid})
    monkeypatch.undo()
    assert await rebuild_store(services, await services.db.stores.find_one({"_id": sid}))  # the sweep's, later
    assert await rollups(services, store["id"]) == written
    assert PENDING not in await services.db.stores.find_one({"_id": sid})


async def test_rollups_written_by_check_ins_equal_a_rebuild_from_the_check_ins(client, services):
    _, store, _, _ = await _history(client, services)
    incremental = await rollups(services, store["id"])
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    await rebuild_store(services, doc)
    assert await rollups(services, store["id"]) == incremental
    # the start-up backfill (forced: the marker is set) rebuilds the same
    await services.db.store_days.delete_many({"store_id": doc["_id"]})
    assert await backfill_visit_days(services) == 0  # already done once: skipped
    assert await backfill_visit_days(services, force=True) >= 1
    assert await rollups(services, store["id"]) == incremental


async def test_concurrent_check_ins_and_retried_transactions_count_exactly(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    users = [await register(client) for _ in range(16)]
    # one store document: concurrent check-ins conflict on it and are retried by the transaction loop
    answers = await asyncio.gather(*(checkin(client, u, store) for u in users))
    assert [r.status_code for r in answers] == [201] * 16
    again = await asyncio.gather(*(checkin(client, u, store) for u in users))  # refused: the one-hour rule
    assert {r.status_code for r in again} == {429} and {r.json()["error"]["code"] for r in again} == {
        "checkin_too_soon"}
    later = datetime.now(UTC) + timedelta(hours=1, minutes=5)
    sid = store["id"]

    async def one(u: Account) -> None:
        await check_in(services, principal(u), sid, store["lat"], store["lng"], now=later)

    await asyncio.gather(*(one(u) for u in users[:8]))
    days, visitors = await rollups(services, sid)
    assert sum(d["checkins"] for d in days) == 24
    assert sum(d["new"] for d in days) == 16
    local_days = {d["day"] for d in days}
    assert sum(d["unique"] for d in days) == (16 if len(local_days) == 1 else 24)
    assert len(visitors) == 16 and all(v["last_day"] for v in visitors)
    doc = await services.db.stores.find_one({"_id": ObjectId(sid)})
    assert doc["checkins_count"] == 24
    await rebuild_store(services, doc)
    assert await rollups(services, sid) == (days, visitors)


async def test_a_refused_check_in_leaves_the_rollups_alone(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    u = await register(client)
    assert (await checkin(client, u, store)).status_code == 201
    before = await rollups(services, store["id"])
    try:
        await check_in(services, principal(u), store["id"], store["lat"], store["lng"])
    except ApiError as exc:
        assert exc.code == "checkin_too_soon"
    else:
        raise AssertionError("a second check-in within the hour was accepted")
    assert await rollups(services, store["id"]) == before


async def test_top_topics_count_published_posts_of_the_window(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    d = today({"timezone": "Asia/Shanghai"}) - timedelta(days=1)
    texts = ["#coffee #cake", "#Coffee again", "#cake", "#tea", "#coffee"]
    users = [await register(client) for _ in texts]
    posts = []
    for i, (u, text) in enumerate(zip(users, texts, strict=True)):
        result = await check_in(services, principal(u), store["id"], store["lat"], store["lng"], text=text,
                                now=at(d, 8 + i, 0))
        posts.append(result.post["_id"])
    old = await register(client)  # a post long before the window
    await check_in(services, principal(old), store["id"], store["lat"], store["lng"], text="#tea #old",
                   now=at(d - timedelta(days=40), 12, 0))
    old_post = (await services.db.posts.find_one({"author_id": ObjectId(old.id)}))["_id"]
    for post_id in [*posts, old_post]:  # what each post's fan-out does (feed.fanout): its topics are counted
        await sync_post(services, post_id)  # (a no-op if a worker's fan-out got there first)
    await services.db.posts.update_one({"_id": posts[3]}, {"$set": {"status": "removed"}})  # #tea removed
    await sync_post(services, posts[3])  # ... and the retraction's fan-out uncounts it
    got = await insights(client, merchant, store, 7)
    assert got["top_topics"] == [{"topic": "coffee", "post_count": 3}, {"topic": "cake", "post_count": 2}]
    year = await insights(client, merchant, store, 60)
    assert {"topic": "tea", "post_count": 1} in year["top_topics"] and {"topic": "old", "post_count": 1} in \
        year["top_topics"]


async def test_offer_funnels_of_the_window(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    live = await create_offer(client, merchant, store["id"], title="Half-price tea")
    old = await create_offer(client, merchant, store["id"], title="Long gone")
    long_ago = datetime.now(UTC) - timedelta(days=100)
    await services.db.offers.update_one({"_id": ObjectId(old["id"])}, {"$set": {
        "created_at": long_ago, "expires_at": long_ago + timedelta(days=1)}})
    oid = ObjectId(live["id"])
    await services.db.offers.update_one({"_id": oid}, {"$set": {"pushed": 7}})
    for i, status in enumerate(["claimed", "claimed", "redeemed", "expired"]):
        await services.db.vouchers.insert_one({"offer_id": oid, "user_id": ObjectId(), "code": f"T{oid}{i}",
                                               "status": status, "store_id": ObjectId(store["id"])})
    got = await insights(client, merchant, store)
    assert got["offers"] == [{"offer_id": live["id"], "title": "Half-price tea", "audience": live["audience"],
                              "pushed": 7, "claimed": 3, "redeemed": 1}]
    assert [o["offer_id"] for o in (await insights(client, merchant, store, 365))["offers"]] == [old["id"], live["id"]]
    stats = (await client.get(f"/v1/stores/{store['id']}/stats", headers=merchant.headers)).json()
    funnel = {o["offer_id"]: o for o in stats["offers"]}[live["id"]]
    assert (funnel["pushed"], funnel["claimed"], funnel["redeemed"]) == (7, 3, 1)  # one counting, both routes


async def test_points_issued_and_spent_in_the_window(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    sid = ObjectId(store["id"])
    now = datetime.now(UTC)
    ledger = [(sid, 10, now - timedelta(hours=1)), (sid, 5, now - timedelta(days=2)),
              (sid, -8, now - timedelta(days=3)),
              (sid, -2, now - timedelta(minutes=5)), (sid, 100, now - timedelta(days=45)),
              (ObjectId(), 50, now - timedelta(hours=2))]
    await services.db.points_ledger.insert_many([
        {"user_id": ObjectId(), "store_id": s, "kind": "checkin" if p > 0 else "spend", "points": p,
         "created_at": when, "day": when.astimezone(SHANGHAI).date().isoformat()} for s, p, when in ledger])
    assert (await insights(client, merchant, store))["points"] == {"issued": 15, "spent": 10}
    assert (await insights(client, merchant, store, 365))["points"] == {"issued": 115, "spent": 10}


async def test_an_empty_window(client):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    got = await insights(client, merchant, store, 1)
    assert got == {"days": [row(today({"timezone": "Asia/Shanghai"}), 0, 0, 0)], "hours": [0] * 24,
                   "repeat_rate": 0.0, "top_topics": [], "offers": [], "points": {"issued": 0, "spent": 0}}


async def test_bad_input_and_authorization(client):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    url = f"/v1/stores/{store['id']}/insights"
    for days in ("0", "10000", "-1", "abc", "1.5"):
        resp = await client.get(f"{url}?days={days}", headers=merchant.headers)
        assert resp.status_code == 422 and "error" in resp.json(), (days, resp.text)
    other = await register(client, "merchant")
    resp = await client.get(url, headers=other.headers)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    user = await register(client)
    assert (await client.get(url, headers=user.headers)).status_code == 403
    assert (await client.get(url)).status_code == 401
    for unknown in (str(ObjectId()), "nope"):
        resp = await client.get(f"/v1/stores/{unknown}/insights", headers=merchant.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


async def test_store_time_zone_is_validated(client, services):
    merchant = await register(client, "merchant")
    body = {"name": "Cafe", "lat": 31.2, "lng": 121.4}
    for bad in ("Mars/Olympus", "", 8, None):
        resp = await client.post("/v1/stores", json={**body, "timezone": bad}, headers=merchant.headers)
        assert resp.status_code == 422, (bad, resp.text)
    store = await new_store(client, merchant, timezone="Europe/London")
    for bad in ("Mars/Olympus", None, "UTC+8"):
        resp = await client.patch(f"/v1/stores/{store['id']}", json={"timezone": bad}, headers=merchant.headers)
        assert resp.status_code == 422, (bad, resp.text)
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["timezone"] == "Europe/London"
    got = (await client.get(f"/v1/stores/{store['id']}", headers=merchant.headers)).json()
    assert got["timezone"] == "Europe/London"


async def test_a_retried_transaction_counts_once(client, services, monkeypatch):
    """The rollup writes of an attempt that fails after making them (a transient error, as a write
    conflict would raise) are rolled back with it: the retry counts the visit exactly once."""
    from pymongo.errors import OperationFailure

    import checkins.groupcommit as groupcommit_module
    from checkins.visitdays import count_visit_days

    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    u = await register(client)
    attempts = []

    async def fail_first_attempt(services_, txn, visits, rows=None) -> list[bool]:
        firsts = await count_visit_days(services_, txn, visits, rows)  # the real writes, then a transient failure
        attempts.append(visits)
        if len(attempts) == 1:
            raise OperationFailure("injected write conflict", 112, {"errorLabels": ["TransientTransactionError"]})
        return firsts

    monkeypatch.setattr(groupcommit_module, "count_visit_days", fail_first_attempt)
    await check_in(services, principal(u), store["id"], store["lat"], store["lng"])
    assert len(attempts) == 2  # retried once
    days, visitors = await rollups(services, store["id"])
    assert [(d["checkins"], d["unique"], d["new"], d["last_of"]) for d in days] == [(1, 1, 1, 1)]
    assert len(visitors) == 1 and visitors[0]["last_day"] == days[0]["day"]
