"""The mayor (days, ties, the 60-day window) and the rules under concurrent check-ins."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bson import ObjectId

from checkins.checkin import check_in
from checkins.mayor import refresh_mayor
from solomo.core import tasknames
from solomo.core.errors import ApiError
from tests.checkins.helpers import (
    backdate_checkins,
    checkin,
    counts,
    day_start_ago,
    days_ago,
    new_store,
    point_at,
    principal,
)
from tests.support import register


async def _mayor(services, store) -> ObjectId | None:
    return (await services.db.stores.find_one({"_id": ObjectId(store["id"])}))["mayor_id"]


async def test_mayor_most_days_and_ties_keep_the_seat(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    a, b = await register(client), await register(client)
    pa, pb = principal(a), principal(b)
    sid, lat, lng = store["id"], store["lat"], store["lng"]
    base = day_start_ago(10)
    await check_in(services, pa, sid, lat, lng, now=base)
    assert await _mayor(services, store) == pa.id
    await check_in(services, pb, sid, lat, lng, now=base + timedelta(hours=1))
    assert await _mayor(services, store) == pa.id  # 1 day each: the sitting mayor stays
    await check_in(services, pb, sid, lat, lng, now=base + timedelta(days=1))
    assert await _mayor(services, store) == pb.id  # 2 days beat 1
    await check_in(services, pa, sid, lat, lng, now=base + timedelta(days=1, hours=2))
    assert await _mayor(services, store) == pb.id  # 2 : 2, b keeps the seat
    # many check-ins on one day are still one day
    for hours in (3, 5, 7):
        await check_in(services, pa, sid, lat, lng, now=base + timedelta(days=1, hours=hours))
    assert await _mayor(services, store) == pb.id
    await check_in(services, pa, sid, lat, lng, now=base + timedelta(days=2))
    assert await _mayor(services, store) == pa.id  # 3 : 2
    got = (await client.get(f"/v1/stores/{sid}", headers=b.headers)).json()
    assert got["mayor"]["id"] == a.id and got["mayor"]["username"] == a.username


async def test_mayor_window_is_60_days(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    old, new = await register(client), await register(client)
    sid, lat, lng = store["id"], store["lat"], store["lng"]
    for day in (70, 69, 68, 59):
        await check_in(services, principal(old), sid, lat, lng, now=days_ago(day))
    assert await _mayor(services, store) == ObjectId(old.id)
    await check_in(services, principal(new), sid, lat, lng, now=days_ago(1))
    assert await _mayor(services, store) == ObjectId(old.id)  # one day in the window each: tie keeps
    await check_in(services, principal(new), sid, lat, lng, now=days_ago(0.001))
    assert await _mayor(services, store) == ObjectId(new.id)  # 2 days beat the 1 left in the window
    assert await refresh_mayor(services, ObjectId(sid), days_ago(-70)) is None  # everything aged out
    assert await _mayor(services, store) is None


async def test_challengers_tied_oldest_regular_wins(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    a, b, c = [await register(client) for _ in range(3)]
    sid, lat, lng = store["id"], store["lat"], store["lng"]
    await check_in(services, principal(a), sid, lat, lng, now=days_ago(5))
    await check_in(services, principal(b), sid, lat, lng, now=days_ago(4))
    await check_in(services, principal(c), sid, lat, lng, now=days_ago(3))
    await services.db.stores.update_one({"_id": ObjectId(sid)}, {"$set": {"mayor_id": None}})
    assert await refresh_mayor(services, ObjectId(sid), days_ago(0)) == ObjectId(a.id)


async def test_concurrent_checkins_same_user_same_store(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    user = await register(client)
    responses = await asyncio.gather(*(checkin(client, user, store) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 429, 429, 429, 429, 429], [r.text for r in responses]
    assert await counts(services, user, store["id"]) == {
        "checkins": 1, "posts": 1, "store": (1, 1, ObjectId(user.id)), "visitors": 1}


async def test_concurrent_checkins_same_user_far_apart(client, services):
    merchant = await register(client, "merchant")
    a = await new_store(client, merchant)
    b = await new_store(client, merchant, *point_at(a["lat"], a["lng"], 5000, 90))
    user = await register(client)
    pu = principal(user)
    results = await asyncio.gather(check_in(services, pu, a["id"], a["lat"], a["lng"]),
                                   check_in(services, pu, b["id"], b["lat"], b["lng"]), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ApiError) and errors[0].code == "impossible_travel"
    assert (await counts(services, user))["checkins"] == 1


async def test_concurrent_checkins_many_users_one_store(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    users = [await register(client) for _ in range(8)]
    responses = await asyncio.gather(*(checkin(client, u, store) for u in users))
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert (doc["checkins_count"], doc["unique_visitors"]) == (8, 8)
    assert doc["mayor_id"] in {ObjectId(u.id) for u in users}


async def test_beat_task_unseats_a_mayor_whose_days_aged_out(client, services, celery_worker):
    from tests.support import make_account, wait_until

    merchant, user = await make_account(services, "merchant"), await make_account(services, "user")
    store = await new_store(client, merchant)
    assert (await checkin(client, user, store)).status_code == 201
    assert await _mayor(services, store) == ObjectId(user.id)
    await backdate_checkins(services, user, timedelta(days=61))
    assert await _mayor(services, store) == ObjectId(user.id)  # nobody checked in since: still seated
    await services.tasks.send(tasknames.REFRESH_MAYORS)

    async def unseated() -> bool:
        return await _mayor(services, store) is None

    assert await wait_until(unseated, timeout=20)
    got = await client.get(f"/v1/stores/{store['id']}", headers=user.headers)
    assert got.json()["mayor"] is None
