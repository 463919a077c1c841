"""Regulars count the store's local days, like its insights and the loyalty ledger.

The check-ins go through the real check-in transaction (``check_in`` with a past ``now``), so
they carry exactly what production writes — including the UTC ``day`` the rule used to count.
A store in Asia/Shanghai (UTC+8): 23:30 and 00:30 local are two local days but one UTC day;
07:30 and 08:30 local are one local day straddling UTC midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from checkins.checkin import check_in
from checkins.localtime import local_day, local_day_expr, today
from geo.positions import set_position
from offers.arrival import deliver_on_arrival
from offers.audiences import Audience, members_among
from tests.checkins.helpers import principal
from tests.offers.helpers import create_offer, merchant_with_store
from tests.support import Account, delivered_to, mark_offline, mark_online, offset, register

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at_local(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=SHANGHAI).astimezone(UTC)


async def two_checkins(services: Any, user: Account, store: dict[str, Any], first: datetime, second: datetime) -> None:
    for at in (first, second):
        await check_in(services, principal(user), store["id"], store["lat"], store["lng"], now=at)


async def regulars_size(client: Any, merchant: Account, store: dict[str, Any]) -> int:
    resp = await client.get(f"/v1/stores/{store['id']}/audience", params={"audience": "regulars", "min_visits": 2},
                            headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["size"])


async def test_regulars_count_store_local_days_not_utc_days(client, services):
    merchant, store = await merchant_with_store(client)
    assert store["timezone"] == "Asia/Shanghai"
    d = today(store) - timedelta(days=3)
    across, straddler = await register(client), await register(client)
    # 23:30 and 00:30 local: one UTC day (15:30Z, 16:30Z), two Shanghai days
    late, early = at_local(d, 23, 30), at_local(d + timedelta(days=1), 0, 30)
    assert late.date() == early.date() and local_day(store, late) != local_day(store, early)
    await two_checkins(services, across, store, late, early)
    assert await regulars_size(client, merchant, store) == 1  # the preview: two local days
    # 07:30 and 08:30 local: two UTC days (23:30Z, 00:30Z), one Shanghai day
    morning, later = at_local(d, 7, 30), at_local(d, 8, 30)
    assert morning.date() != later.date() and local_day(store, morning) == local_day(store, later)
    await two_checkins(services, straddler, store, morning, later)
    stored = {c["day"] async for c in services.db.checkins.find({"user_id": ObjectId(straddler.id)})}
    assert len(stored) == 2  # the check-ins' own ``day`` is still the UTC day: the rule must not read it

    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    ids = [across.id, straddler.id]
    assert await members_among(services, doc, Audience("regulars", min_visits=2), ids) == {across.id}
    assert await members_among(services, doc, Audience("visitors", days=90), ids) == set(ids)

    assert await regulars_size(client, merchant, store) == 1  # the straddler is not one more

    # and so do the push at creation and the arrival path
    for i, user in enumerate((across, straddler)):
        await set_position(services.redis, user.id, *offset(store["lat"], store["lng"], north_m=20 + 10 * i))
    await mark_online(services, *ids)
    try:
        pushed = await create_offer(client, merchant, store["id"], audience="regulars", min_visits=2)
        assert await delivered_to(services, pushed["id"]) == {across.id}
    finally:
        await mark_offline(services, *ids)
    arriving = await create_offer(client, merchant, store["id"], audience="regulars", min_visits=2, radius_m=100)
    lat, lng = offset(store["lat"], store["lng"], north_m=30)
    for user in (across, straddler):
        await deliver_on_arrival(services, user.id, lat, lng)
    assert await delivered_to(services, arriving["id"]) == {across.id}


async def test_local_day_expression_agrees_with_local_day_across_offset_changes(services):
    """mongod computes the same local day as Python for every hour and half hour around the 2026
    offset changes of zones with DST (a half-hour one among them) and a zone without."""
    coll = services.db[f"localday_{ObjectId()}"]
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    changes = [datetime(2026, m, d, tzinfo=UTC) for m, d in ((3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1))]
    instants = [c + timedelta(minutes=30 * k) for c in changes for k in range(-72, 73)]
    await coll.insert_many([{"at": at} for at in instants])
    try:
        for zone in ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Shanghai"):
            store = {"timezone": zone}
            day = local_day_expr(store, "at", start, end)
            rows = await (await coll.aggregate([{"$project": {"at": 1, "day": day}}])).to_list(None)
            got = {r["at"].replace(tzinfo=UTC): r["day"] for r in rows}
            assert got == {at: local_day(store, at) for at in instants}, zone
    finally:
        await coll.drop()
