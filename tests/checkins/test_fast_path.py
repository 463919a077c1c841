"""The check-in's fast paths give the same answers as the general ones: the one history read
(and its fall-back beyond the scan), and the 201's post shaped from the documents in hand. The
group commit's own tests are in ``test_group_commit.py``."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from checkins.checkin import check_in
from checkins.groupcommit import HISTORY_SCAN
from feed.hydrate import hydrate_post
from solomo.core.errors import ApiError
from tests.checkins.helpers import checkin, days_ago, new_store, point_at, principal
from tests.support import register


async def _stores_around(client, merchant, n: int) -> list[dict]:
    first = await new_store(client, merchant, name="S0")
    out = [first]
    for i in range(1, n):
        lat, lng = point_at(first["lat"], first["lng"], 30, i * 360 / n)
        out.append(await new_store(client, merchant, lat, lng, name=f"S{i}"))
    return out


async def test_cooldown_found_beyond_the_history_scan(client, services):
    merchant, user = await register(client, "merchant"), await register(client)
    stores = await _stores_around(client, merchant, HISTORY_SCAN + 2)
    who = principal(user)
    start = days_ago(0.5)
    # the first check-in of the hour is at stores[0]; HISTORY_SCAN + 1 others follow within it
    for i, store in enumerate(stores[:HISTORY_SCAN + 2]):
        await check_in(services, who, store["id"], store["lat"], store["lng"], now=start + timedelta(minutes=i))
    again = start + timedelta(minutes=HISTORY_SCAN + 3)
    try:
        await check_in(services, who, stores[0]["id"], stores[0]["lat"], stores[0]["lng"], now=again)
        raise AssertionError("a second check-in within the hour was accepted")
    except ApiError as exc:
        assert exc.code == "checkin_too_soon"
        assert exc.status == 429
    # an hour after that first one it is allowed again, whatever came in between
    later = start + timedelta(minutes=60, seconds=1)
    result = await check_in(services, who, stores[0]["id"], stores[0]["lat"], stores[0]["lng"], now=later)
    assert result.checkin["store_id"] == ObjectId(stores[0]["id"])


async def test_the_guard_keeps_the_newest_check_ins_and_a_guard_without_them_reads_the_history(client, services):
    merchant, user = await register(client, "merchant"), await register(client)
    stores = await _stores_around(client, merchant, HISTORY_SCAN + 3)
    who = principal(user)
    start = days_ago(0.5)
    # written out of time order (as a retried transaction may commit): the list stays newest first
    order = [*range(HISTORY_SCAN - 2), HISTORY_SCAN - 1, HISTORY_SCAN - 2]
    for i in order:
        store = stores[i]
        await check_in(services, who, store["id"], store["lat"], store["lng"], now=start + timedelta(minutes=i))
    newest = await services.db.checkins.find({"user_id": who.id}).sort([("created_at", -1), ("_id", -1)]
                                                                        ).to_list(HISTORY_SCAN)
    guard = await services.db.checkin_guards.find_one({"_id": who.id})
    assert guard["n"] == len(order)
    assert [e["_id"] for e in guard["recent"]] == [c["_id"] for c in newest]
    # a guard from before the list: the rules read the check-ins, and the list is written from them
    await services.db.checkin_guards.update_one({"_id": who.id}, {"$unset": {"recent": ""}})
    last = stores[HISTORY_SCAN - 1]
    try:
        await check_in(services, who, last["id"], last["lat"], last["lng"],
                       now=start + timedelta(minutes=HISTORY_SCAN + 5))
        raise AssertionError("a second check-in within the hour was accepted")
    except ApiError as exc:
        assert exc.code == "checkin_too_soon"
    assert "recent" not in await services.db.checkin_guards.find_one({"_id": who.id})  # refused: nothing written
    fresh = stores[HISTORY_SCAN + 2]
    done = await check_in(services, who, fresh["id"], fresh["lat"], fresh["lng"],
                          now=start + timedelta(minutes=HISTORY_SCAN + 6))
    guard = await services.db.checkin_guards.find_one({"_id": who.id})
    assert [e["_id"] for e in guard["recent"]] == [done.checkin["_id"], *(c["_id"] for c in newest[:HISTORY_SCAN - 1])]


async def test_cooldown_within_the_scan_and_travel_from_the_newest(client, services):
    merchant, user = await register(client, "merchant"), await register(client)
    a, b = await _stores_around(client, merchant, 2)
    who = principal(user)
    start = days_ago(0.2)
    await check_in(services, who, a["id"], a["lat"], a["lng"], now=start)
    await check_in(services, who, b["id"], b["lat"], b["lng"], now=start + timedelta(minutes=5))
    try:
        await check_in(services, who, a["id"], a["lat"], a["lng"], now=start + timedelta(minutes=30))
        raise AssertionError("accepted within the cooldown")
    except ApiError as exc:
        assert exc.code == "checkin_too_soon" and exc.retry_after == 30 * 60
    far = await new_store(client, merchant, a["lat"], a["lng"] + 1.0, name="Far")  # ~100 km east
    try:
        await check_in(services, who, far["id"], far["lat"], far["lng"], now=start + timedelta(minutes=6))
        raise AssertionError("impossible travel accepted")
    except ApiError as exc:
        assert exc.code == "impossible_travel"


async def test_created_post_matches_the_hydrated_one(client, services):
    merchant, user = await register(client, "merchant"), await register(client)
    store = await new_store(client, merchant, name="Tea #house @corner")
    resp = await checkin(client, user, store, text="hello #tea")
    assert resp.status_code == 201, resp.text
    post = resp.json()["post"]
    doc = await services.db.posts.find_one({"_id": ObjectId(post["id"])})
    assert post == await hydrate_post(services, doc, ObjectId(user.id))
    got = await client.get(f"/v1/posts/{post['id']}", headers=user.headers)
    assert got.json() == post
