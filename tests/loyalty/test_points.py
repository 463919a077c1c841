"""Loyalty points (issue 17): settings, earning in the check-in's and the redemption's transaction,
spend codes charged at the counter, history, settlement ledger, and every bad input of the issue —
each a clear error and nothing changed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from checkins.checkin import check_in
from solomo.accounts import Principal
from tests.loyalty.helpers import PROGRAMME, balance, charge, grant, ledger_sum, partner_store, spend_code
from tests.offers.helpers import create_offer, merchant_with_store
from tests.support import Account, make_account, offset, register


def _principal(acct: Account) -> Principal:
    return Principal(ObjectId(acct.id), acct.username, acct.username, acct.role)


async def _settings(client: Any, merchant: Account, store_id: str) -> Any:
    return await client.get(f"/v1/stores/{store_id}/loyalty", headers=merchant.headers)


async def test_settings_owner_only_and_bad_values_change_nothing(client):
    merchant, store = await merchant_with_store(client)
    url = f"/v1/stores/{store['id']}/loyalty"
    assert (await _settings(client, merchant, store["id"])).json() == {
        "enabled": False, "checkin_points": 0, "redemption_points": 0}
    resp = await client.put(url, json=PROGRAMME, headers=merchant.headers)
    assert resp.status_code == 200 and resp.json() == PROGRAMME
    other, _ = await merchant_with_store(client)
    user = await register(client)
    for acct in (other, user):
        for resp in (await client.put(url, json={**PROGRAMME, "checkin_points": 999}, headers=acct.headers),
                     await client.get(url, headers=acct.headers)):
            assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", resp.text
    bad = [{"checkin_points": -1}, {"checkin_points": 1001}, {"redemption_points": 2.5}, {"checkin_points": True},
           {"checkin_points": "5"}, {"enabled": "yes"}, {"enabled": None}, {"extra": 1}]
    for change in bad:
        resp = await client.put(url, json={**PROGRAMME, **change}, headers=merchant.headers)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid", (change, resp.text)
    missing = await client.put(url, json={"enabled": True}, headers=merchant.headers)
    assert missing.status_code == 422
    assert (await _settings(client, merchant, store["id"])).json() == PROGRAMME
    assert (await client.get(f"/v1/stores/{ObjectId()}/loyalty", headers=merchant.headers)).status_code == 404


async def test_first_checkin_of_the_store_local_day_earns_once(client, services):
    _, store = await partner_store(client)
    user = await register(client)
    who, here = _principal(user), offset(store["lat"], store["lng"], north_m=20)
    # Shanghai (the default zone) is UTC+8: 14:00 and 15:30 UTC are 22:00 and 23:30 of one local
    # day; 17:00 UTC is 01:00 of the next local day, though still the same UTC day
    day = datetime(2026, 1, 10, tzinfo=UTC)
    for at in (day + timedelta(hours=14), day + timedelta(hours=15, minutes=30), day + timedelta(hours=17)):
        await check_in(services, who, store["id"], *here, now=at)
    entries = (await client.get("/v1/me/points/history", headers=user.headers)).json()["items"]
    assert [(e["kind"], e["points"], e["balance_after"]) for e in entries] == [("checkin", 10, 20), ("checkin", 10, 10)]
    assert entries[0]["store"]["id"] == store["id"]
    assert await balance(client, user) == {"balance": 20, "earned": 20, "spent": 0}
    days = await services.db.points_ledger.distinct("day", {"user_id": ObjectId(user.id)})
    assert sorted(days) == ["2026-01-10", "2026-01-11"]


async def test_concurrent_checkins_earn_once_in_the_checkins_transaction(client):
    """Five check-ins at once: they conflict on the user's guard, MongoDB re-runs the losers' whole
    transactions (points included), which then meet the cooldown and write nothing. One check-in,
    one entry: a re-run transaction neither earns twice nor loses the points."""
    _, store = await partner_store(client)
    user = await register(client)
    lat, lng = offset(store["lat"], store["lng"], north_m=20)
    answers = await asyncio.gather(*(client.post("/v1/checkins", json={"store_id": store["id"], "lat": lat, "lng": lng},
                                                 headers=user.headers) for _ in range(5)))
    assert [a.status_code for a in answers].count(201) == 1, [a.text for a in answers]
    assert await balance(client, user) == {"balance": 10, "earned": 10, "spent": 0}
    history = (await client.get("/v1/me/points/history", headers=user.headers)).json()["items"]
    assert len(history) == 1


async def test_a_crowd_of_checkins_at_partner_stores_earns_once_each_with_its_balance_after(client, services):
    """Twelve users check in at once (the group commit writes them together, points included): each
    earns once, and each entry's ``balance_after`` is the user's balance before plus its points —
    whatever the user had (some earned elsewhere first), and beside a store outside the programme."""
    crowd = []
    for i in range(12):
        if i == 11:
            _, store = await merchant_with_store(client)  # not in the programme: no points, no entry
        else:
            _, store = await partner_store(client)
        user = await register(client)
        if i % 3 == 0:
            await grant(services, user.id, store["id"], 7 * (i + 1))
        crowd.append((user, store))
    await asyncio.gather(*(check_in(services, _principal(user), store["id"],
                                    *offset(store["lat"], store["lng"], north_m=20)) for user, store in crowd))
    for i, (user, _) in enumerate(crowd):
        before = 7 * (i + 1) if i % 3 == 0 else 0
        earned = 0 if i == 11 else 10
        assert await balance(client, user) == {"balance": before + earned, "earned": before + earned, "spent": 0}
        newest = (await client.get("/v1/me/points/history", headers=user.headers)).json()["items"]
        if earned:
            assert (newest[0]["kind"], newest[0]["points"], newest[0]["balance_after"]) == ("checkin", 10, before + 10)
        assert await ledger_sum(services, user.id) == before + earned


async def test_credit_many_earns_each_once_key_once_and_takes_one_credit_a_user(client, services):
    from loyalty.ledger import Credit, credit_many
    from solomo.core.txn import Txn, run_transaction_again_on_duplicate

    _, store_view = await partner_store(client)
    store = await services.db.stores.find_one({"_id": ObjectId(store_view["id"])})
    users = [ObjectId(), ObjectId(), ObjectId()]
    now = datetime.now(UTC)
    taken = f"test:{ObjectId()}"
    await grant(services, str(users[1]), store_view["id"], 5)
    await services.db.points_ledger.update_one({"user_id": users[1]}, {"$set": {"once": taken}})

    def credits(points: int) -> list[Credit]:
        return [Credit(users[0], store, "checkin", points, ObjectId(), f"test:{ObjectId()}", now),
                Credit(users[1], store, "checkin", points, ObjectId(), taken, now),  # already earned
                Credit(users[2], store, "checkin", points, ObjectId(), f"test:{ObjectId()}", now)]

    async def body(txn: Txn) -> list[dict[str, Any] | None]:
        return await credit_many(services, txn, credits(3))

    first, second, third = await run_transaction_again_on_duplicate(services, body)
    assert second is None and first is not None and third is not None
    assert (first["balance_after"], third["balance_after"]) == (3, 3)
    assert await ledger_sum(services, str(users[1])) == 5
    balances = {b["_id"]: b["balance"] async for b in services.db.points_balances.find({"_id": {"$in": users}})}
    assert balances == {users[0]: 3, users[1]: 5, users[2]: 3}

    async def twice(txn: Txn) -> list[dict[str, Any] | None]:
        one = credits(1)[0]
        return await credit_many(services, txn, [one, one])

    try:
        await run_transaction_again_on_duplicate(services, twice)
    except ValueError:
        pass
    else:
        raise AssertionError("two credits of one user in one call were taken")


async def test_no_points_at_a_store_outside_the_programme_or_far_away(client):
    _, plain = await merchant_with_store(client)
    _, partner = await partner_store(client, checkin_points=0)
    for store in (plain, partner):
        user = await register(client)
        lat, lng = offset(store["lat"], store["lng"], north_m=20)
        resp = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": lat, "lng": lng},
                                 headers=user.headers)
        assert resp.status_code == 201, resp.text
        assert await balance(client, user) == {"balance": 0, "earned": 0, "spent": 0}
    _, partner2 = await partner_store(client)
    user = await register(client)
    far = offset(partner2["lat"], partner2["lng"], north_m=5000)
    refused = await client.post("/v1/checkins", json={"store_id": partner2["id"], "lat": far[0], "lng": far[1]},
                                headers=user.headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "too_far"
    assert await balance(client, user) == {"balance": 0, "earned": 0, "spent": 0}


async def test_redeeming_a_voucher_earns_in_the_same_transaction(client, services):
    merchant, store = await partner_store(client)
    user = await register(client)
    offer = await create_offer(client, merchant, store["id"])
    voucher = (await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)).json()
    url = f"/v1/stores/{store['id']}/redemptions"
    done = await client.post(url, json={"code": voucher["code"]}, headers=merchant.headers)
    assert done.status_code == 200 and done.json()["voucher"]["status"] == "redeemed"
    again = await client.post(url, json={"code": voucher["code"]}, headers=merchant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_redeemed"
    assert await balance(client, user) == {"balance": 5, "earned": 5, "spent": 0}
    [entry] = (await client.get("/v1/me/points/history", headers=user.headers)).json()["items"]
    assert entry["kind"] == "redemption" and entry["points"] == 5
    # an expired voucher: 410 as before, and no points
    offer2 = await create_offer(client, merchant, store["id"])
    v2 = (await client.post(f"/v1/offers/{offer2['id']}/claim", headers=user.headers)).json()
    await services.db.vouchers.update_one({"_id": ObjectId(v2["id"])},
                                          {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    gone = await client.post(url, json={"code": v2["code"]}, headers=merchant.headers)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "voucher_expired"
    assert (await balance(client, user))["balance"] == 5


async def test_charge_rules_and_bad_input_change_nothing(client, services):
    merchant, store = await partner_store(client)
    user = await register(client)
    await grant(services, user.id, store["id"], 50)
    code = await spend_code(client, user)
    before = await balance(client, user)

    async def refused(resp: Any, status: int, error: str) -> None:
        assert resp.status_code == status and resp.json()["error"]["code"] == error, resp.text
        assert await balance(client, user) == before  # nothing taken

    await refused(await charge(client, merchant, store["id"], code, 51), 409, "insufficient_points")
    for points in (0, -5, 1.5, True, "10", None, 100_001):
        await refused(await charge(client, merchant, store["id"], code, points), 422, "invalid")
    other, other_store = await partner_store(client)
    await refused(await charge(client, other, store["id"], code, 10), 403, "forbidden")  # not the owner
    plain_owner, plain = await merchant_with_store(client)
    await refused(await charge(client, plain_owner, plain["id"], code, 10), 403, "not_in_programme")
    await refused(await charge(client, merchant, store["id"], "ABCDE-FGHJK", 10), 404, "unknown_code")
    await refused(await charge(client, merchant, store["id"], "not a code", 10), 404, "unknown_code")

    # the code is still good after all that: it charges once, at any partner store, QR payload too
    ok = await charge(client, other, other_store["id"], "solomo:points:" + code.lower(), 20)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["points"] == 20 and body["balance_after"] == 30 and ObjectId(body["transaction_id"])
    before = await balance(client, user)
    assert before == {"balance": 30, "earned": 50, "spent": 20}
    await refused(await charge(client, merchant, store["id"], code, 1), 409, "code_used")

    expired = await spend_code(client, user)
    await services.db.points_spend_codes.update_many(
        {"user_id": ObjectId(user.id), "status": "open"},
        {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    await refused(await charge(client, merchant, store["id"], expired, 1), 410, "code_expired")

    # a suspended user cannot get a code, and a code they already hold cannot be charged
    held = await spend_code(client, user)
    moderator = await make_account(services, "moderator")
    suspend = await client.post(f"/v1/moderation/users/{user.id}", json={"action": "suspend", "reason": "fraud"},
                                headers=moderator.headers)
    assert suspend.status_code == 200, suspend.text
    assert (await client.post("/v1/me/points/spend-codes", headers=user.headers)).status_code == 401
    resp = await charge(client, merchant, store["id"], held, 1)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "account_suspended"
    assert await ledger_sum(services, user.id) == 30
    doc = await services.db.points_balances.find_one({"_id": ObjectId(user.id)})
    assert doc["balance"] == 30
    stored = await services.db.points_spend_codes.find_one({"user_id": ObjectId(user.id)})
    assert code.replace("-", "") not in str(stored)  # only the keyed hash is stored


async def test_idempotency_key_replays_the_charge(client, services):
    merchant, store = await partner_store(client)
    user = await register(client)
    await grant(services, user.id, store["id"], 100)
    code = await spend_code(client, user)
    key = {"Idempotency-Key": f"charge-{ObjectId()}"}
    first = await charge(client, merchant, store["id"], code, 40, headers=key)
    second = await charge(client, merchant, store["id"], code, 40, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second.headers.get("Idempotent-Replayed") == "true"
    assert (await balance(client, user))["balance"] == 60
    reused = await charge(client, merchant, store["id"], code, 41, headers=key)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


async def test_failed_charges_are_rate_limited_per_store(client):
    merchant, store = await partner_store(client)
    statuses = [(await charge(client, merchant, store["id"], f"AAAAA-{n:05d}", 1)).status_code for n in range(11)]
    assert statuses == [404] * 10 + [429]
    resp = await charge(client, merchant, store["id"], "AAAAA-BBBBB", 1)
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    other, other_store = await partner_store(client)  # another store's counter is not slowed down
    assert (await charge(client, other, other_store["id"], "AAAAA-BBBBB", 1)).status_code == 404


async def test_charges_are_limited_per_caller_and_a_refusal_stores_no_key(client, services, monkeypatch):
    """A charge at someone else's store is a 403 kept a day as its Idempotency-Key's answer: the
    per-caller limit bounds how many one account can make (a refused request keeps no key)."""
    monkeypatch.setitem(services.settings.rate_limits, "points_charge", "3/minute")
    merchant, store = await partner_store(client)
    stranger, _ = await partner_store(client)
    for n in range(6):
        resp = await charge(client, stranger, store["id"], "AAAAA-BBBBB", 1,
                            headers={"Idempotency-Key": f"k{n}-{ObjectId()}"})
        if n < 3:
            assert resp.status_code == 403, resp.text
        else:
            assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited", resp.text
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert (await charge(client, stranger, store["id"], "AAAAA-BBBBB", 1)).status_code == 429  # without a key too
    assert await services.db.idempotency.count_documents({"user_id": ObjectId(stranger.id)}) == 3
    assert (await charge(client, merchant, store["id"], "AAAAA-BBBBB", 1)).status_code == 404  # the owner's own budget


async def test_history_pages_newest_first(client, services):
    _, store = await partner_store(client)
    user = await register(client)
    for points in (1, 2, 3):
        await grant(services, user.id, store["id"], points)
    seen, cursor = [], None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/me/points/history", params=params, headers=user.headers)).json()
        seen += [e["points"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [3, 2, 1]
    bad = await client.get("/v1/me/points/history", params={"cursor": "garbage"}, headers=user.headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_store_ledger_settles_per_local_day(client, services):
    merchant, store = await partner_store(client)
    user = await register(client)
    await grant(services, user.id, store["id"], 70)
    code = await spend_code(client, user)
    assert (await charge(client, merchant, store["id"], code, 25)).status_code == 200
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    url = f"/v1/stores/{store['id']}/points/ledger"
    resp = await client.get(url, params={"from": str(today - timedelta(days=2)), "to": str(today)},
                            headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["issued"], body["spent"], body["net"]) == (70, 25, 45)
    assert body["days"][-1] == {"date": str(today), "issued": 70, "spent": 25}
    assert [d["issued"] for d in body["days"][:2]] == [0, 0] and len(body["days"]) == 3
    from loyalty.settlement import points_totals
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert await points_totals(services, doc, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)) == (70, 25)
    for params in ({"from": str(today), "to": str(today - timedelta(days=1))},
                   {"from": str(today - timedelta(days=366)), "to": str(today)},
                   {"from": "2026-02-30", "to": str(today)}, {"from": str(today)}, {"to": str(today)},
                   {"from": "yesterday", "to": str(today)}):
        bad = await client.get(url, params=params, headers=merchant.headers)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid", (params, bad.text)
    other, _ = await merchant_with_store(client)
    denied = await client.get(url, params={"from": str(today), "to": str(today)}, headers=other.headers)
    assert denied.status_code == 403


async def test_store_ledger_days_at_the_ends_of_the_calendar_are_422_not_500(client):
    from tests.checkins.helpers import new_store

    merchant, shanghai = await partner_store(client)  # UTC+8: its first day began before year 1 in UTC
    new_york = await new_store(client, merchant, timezone="America/New_York")  # behind UTC: it did not

    async def ledger(store: dict[str, Any], first: str, last: str) -> Any:
        return await client.get(f"/v1/stores/{store['id']}/points/ledger", params={"from": first, "to": last},
                                headers=merchant.headers)

    for store, first, last in [(shanghai, "9999-12-31", "9999-12-31"), (new_york, "9999-12-31", "9999-12-31"),
                               (shanghai, "9999-12-30", "9999-12-31"), (shanghai, "0001-01-01", "0001-01-01"),
                               (shanghai, "0001-01-01", "0001-01-05")]:
        bad = await ledger(store, first, last)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid", (first, last, bad.text)
    # the days next to them have UTC bounds at that store, and are answered
    for store, first, last in [(shanghai, "9999-12-30", "9999-12-30"), (shanghai, "0001-01-02", "0001-01-02"),
                               (new_york, "0001-01-01", "0001-01-01")]:
        ok = await ledger(store, first, last)
        assert ok.status_code == 200, (first, last, ok.text)
        assert ok.json()["days"] == [{"date": first, "issued": 0, "spent": 0}]


async def test_points_event_reaches_the_users_open_socket_after_commit(client, services, live_server, celery_worker):
    from tests.realtime.wsclient import open_ws, recv_type

    merchant, store = await partner_store(client)
    user = await register(client)
    ws = await open_ws(live_server, user.token)
    try:
        lat, lng = offset(store["lat"], store["lng"], north_m=20)
        resp = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": lat, "lng": lng},
                                 headers=user.headers)
        assert resp.status_code == 201, resp.text
        earned = (await recv_type(ws, "points", timeout=15))["data"]
        assert (earned["balance"], earned["entry"]["kind"], earned["entry"]["points"]) == (10, "checkin", 10)
        assert earned["entry"]["store"]["id"] == store["id"]
        code = await spend_code(client, user)
        refused = await charge(client, merchant, store["id"], code, 11)  # aborted: nothing to announce
        assert refused.status_code == 409
        assert (await charge(client, merchant, store["id"], code, 4)).status_code == 200
        spent = (await recv_type(ws, "points", timeout=15))["data"]
        assert (spent["balance"], spent["spent"], spent["entry"]["points"]) == (6, 4, -4)
    finally:
        await ws.close()
