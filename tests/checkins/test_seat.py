"""The mayor decided from the store's ``seat`` (checkins/mayor.py) is exactly the recount's.

The oracle is the 60-day recount over the check-ins (:func:`checkins.mayor.recompute_mayor`, the
aggregation every check-in ran before the seat existed), replayed after every step with the seat it
gave the step before: ties keep the seat, so the mayor depends on the order of events.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from bson import ObjectId

from checkins.checkin import check_in
from checkins.mayor import WINDOW, days_in_window, recompute_mayor, refresh_mayor
from tests.checkins.helpers import checkin, day_start_ago, days_ago, new_store, principal
from tests.support import random_point, register

GAPS_H = [1, 2, 5, 20, 24, 30, 72, 240, 600, 24 * 59, 24 * 61]
"""Hours between events: same day, next day, long absences, and days leaving the 60-day window."""


async def _store_doc(services, sid: ObjectId) -> dict:
    return await services.db.stores.find_one({"_id": sid})


async def _assert_seat_exact(services, sid: ObjectId, expected: ObjectId | None) -> None:
    doc = await _store_doc(services, sid)
    assert doc["mayor_id"] == expected
    seat = doc["seat"]
    # the seat's count is the mayor's days at its time (0 without a mayor): invariant I's anchor
    assert seat["count"] == days_in_window(seat["days"], seat["as_of"]) == (len(seat["days"]) if expected else 0)


async def test_seat_equals_the_recount_on_random_histories(client, services):
    merchant = await register(client, "merchant")
    users = [await register(client) for _ in range(3)]
    who = [principal(u) for u in users]
    rng = random.Random(14)
    spot = random_point()  # every store at one spot: histories that go back in time pass the travel rule
    for _ in range(12):
        store = await new_store(client, merchant, *spot)
        sid, lat, lng = ObjectId(store["id"]), store["lat"], store["lng"]
        at = days_ago(300)
        oracle: ObjectId | None = None
        for _ in range(rng.randint(4, 14)):
            at += timedelta(hours=rng.choice(GAPS_H), minutes=rng.randint(0, 59))
            if rng.random() < 0.15:
                got = await refresh_mayor(services, sid, at)  # the hourly beat, with nobody checking in
            else:
                # several users: ties, takeovers, and mayors whose days age out while others stay
                user = who[min(2, int(rng.random() * rng.choice([1, 2, 3])))]
                await check_in(services, user, sid, lat, lng, now=at)
                got = (await _store_doc(services, sid))["mayor_id"]
            oracle = await recompute_mayor(services, sid, oracle, at)
            assert got == oracle
            await _assert_seat_exact(services, sid, oracle)
        # and any later recount agrees with the seat the history left
        assert await recompute_mayor(services, sid, oracle, at) == oracle


async def test_mayor_aging_out_hands_the_seat_to_the_leader(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    sid, lat, lng = ObjectId(store["id"]), store["lat"], store["lng"]
    old, steady, newcomer = [principal(await register(client)) for _ in range(3)]
    start = days_ago(120)
    for day in range(4):  # old: 4 days, long ago
        await check_in(services, old, sid, lat, lng, now=start + timedelta(days=day))
    for day in (40, 50, 55):  # steady: 3 days, later
        await check_in(services, steady, sid, lat, lng, now=start + timedelta(days=day, hours=3))
    assert (await _store_doc(services, sid))["mayor_id"] == old.id
    # 62 days after old's last visit only steady's 3 days are in the window; the newcomer's first
    # visit must seat steady (the leader), not the newcomer and not the aged-out mayor
    at = start + timedelta(days=3) + WINDOW + timedelta(days=2)
    await check_in(services, newcomer, sid, lat, lng, now=at)
    assert (await _store_doc(services, sid))["mayor_id"] == steady.id
    await _assert_seat_exact(services, sid, steady.id)


async def test_store_without_seat_recounts_then_keeps_one(client, services):
    """Stores from before the seat (the demo seed's, bulk-inserted ones) are recounted once."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    sid, lat, lng = ObjectId(store["id"]), store["lat"], store["lng"]
    a, b = principal(await register(client)), principal(await register(client))
    await check_in(services, a, sid, lat, lng, now=days_ago(5))
    await check_in(services, a, sid, lat, lng, now=days_ago(4))
    await services.db.stores.update_one({"_id": sid}, {"$unset": {"seat": ""}})
    await check_in(services, b, sid, lat, lng, now=days_ago(3))
    await _assert_seat_exact(services, sid, a.id)
    await check_in(services, b, sid, lat, lng, now=days_ago(2))
    await check_in(services, b, sid, lat, lng, now=days_ago(1))
    assert (await _store_doc(services, sid))["mayor_id"] == b.id  # 3 days beat 2
    await _assert_seat_exact(services, sid, b.id)


async def test_two_challengers_race_for_the_seat(client, services):
    """Mayor m and challengers a, b each have 2 days; a and b check in at once for a third: the
    first to commit takes the seat, the second ties and leaves it there — a serial outcome."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    sid, lat, lng = ObjectId(store["id"]), store["lat"], store["lng"]
    m, a, b = [await register(client) for _ in range(3)]
    for account, hours in ((m, 0), (a, 1), (b, 2)):
        for day in (9, 8):
            await check_in(services, principal(account), sid, lat, lng, now=day_start_ago(day) + timedelta(hours=hours))
    assert (await _store_doc(services, sid))["mayor_id"] == ObjectId(m.id)
    responses = await asyncio.gather(checkin(client, a, store), checkin(client, b, store))
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    doc = await _store_doc(services, sid)
    assert doc["mayor_id"] in (ObjectId(a.id), ObjectId(b.id))
    assert doc["seat"]["count"] == 3 and doc["checkins_count"] == 8
    # whoever won, the recount from that seat keeps it (a tie of 3 : 3 keeps the sitting mayor)
    assert await recompute_mayor(services, sid, doc["mayor_id"], doc["seat"]["as_of"]) == doc["mayor_id"]
    await _assert_seat_exact(services, sid, doc["mayor_id"])
