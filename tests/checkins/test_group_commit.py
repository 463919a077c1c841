"""The group commit (``checkins.groupcommit``): check-ins that arrive together share one transaction
and get the answers, counters, rollups, histories and seats that one transaction each would give."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from checkins import groupcommit, mayor
from checkins.checkin import check_in
from checkins.localtime import local_day
from checkins.visitdays import count_visit_days
from solomo.core.errors import ApiError
from solomo.core.txn import DUPLICATE_ATTEMPTS, run_transaction
from tests.checkins.helpers import day_start_ago, days_ago, new_store, point_at, principal
from tests.media.helpers import uploaded
from tests.support import counted_services, register, wait_until


def record_groups(monkeypatch) -> list[list[groupcommit.Pending]]:
    """Every group the writer commits (the real commit runs)."""
    groups: list[list[groupcommit.Pending]] = []
    real = groupcommit.commit

    async def recorded(services, group):
        groups.append(list(group))
        return await real(services, group)

    monkeypatch.setattr(groupcommit, "commit", recorded)
    return groups


async def test_a_crowd_commits_in_groups_with_the_answers_of_one_at_a_time(client, services, monkeypatch):
    merchant = await register(client, "merchant")
    first = await new_store(client, merchant, name="Crowd 0")
    stores = [first] + [await new_store(client, merchant, *point_at(first["lat"], first["lng"], 40, i * 60),
                                        name=f"Crowd {i}") for i in range(1, 6)]
    far = await new_store(client, merchant, *point_at(first["lat"], first["lng"], 5000, 90), name="Crowd far")
    users = [await register(client) for _ in range(18)]
    # a history to meet: the first six checked in yesterday at "their" store (seats, visitor rows)
    for i, user in enumerate(users[:6]):
        s = stores[i]
        await check_in(services, principal(user), s["id"], s["lat"], s["lng"], now=days_ago(1))
    groups = record_groups(monkeypatch)

    twice, travels = users[16], users[17]
    calls = [(u, stores[i % len(stores)]) for i, u in enumerate(users[:16])]
    calls += [(twice, stores[0]), (twice, stores[0]), (travels, stores[1]), (travels, far)]
    results = await asyncio.gather(*(check_in(services, principal(u), s["id"], s["lat"], s["lng"]) for u, s in calls),
                                   return_exceptions=True)

    assert max(len(g) for g in groups) > 1, [len(g) for g in groups]  # it did group
    # each check-in went through one group: the refused ones did not send their groups one by one
    assert sum(len(g) for g in groups) == len(calls), [len(g) for g in groups]
    for group in groups:  # never one user or one store twice in a group
        assert len({p.user_id for p in group}) == len(group) == len({p.store_id for p in group})
    refused = [r.code for r in results if isinstance(r, ApiError)]
    assert sorted(refused) == ["checkin_too_soon", "impossible_travel"], results
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, ApiError)]
    accepted = [r for r in results if not isinstance(r, BaseException)]
    assert len(accepted) == 18

    now = datetime.now(UTC)
    for s in [*stores, far]:
        sid = ObjectId(s["id"])
        doc = await services.db.stores.find_one({"_id": sid})
        n = await services.db.checkins.count_documents({"store_id": sid})
        assert doc["checkins_count"] == n
        assert doc["unique_visitors"] == await services.db.store_visitors.count_documents({"store_id": sid})
        # each answer shows the store as its own check-in left it: one count each, the last the stored one
        answered = sorted(r.store["checkins_count"] for r in accepted if r.store["_id"] == sid)
        assert answered == list(range(n - len(answered) + 1, n + 1))
        # the seat is the recount's
        recount, seat = await mayor.full_decision(services, sid, doc["mayor_id"], None, now)
        assert doc["mayor_id"] == recount and doc["seat"]["count"] == seat["count"]
    for user in users:
        uid = ObjectId(user.id)
        written = await services.db.checkins.find({"user_id": uid}).sort([("created_at", -1), ("_id", -1)]).to_list(8)
        guard = await services.db.checkin_guards.find_one({"_id": uid})
        assert guard["n"] == len(written)
        assert [e["_id"] for e in guard["recent"]] == [c["_id"] for c in written]
        assert await services.db.posts.count_documents({"author_id": uid}) == len(written)


async def test_the_day_rollups_of_a_group_equal_one_at_a_time(client, services, monkeypatch):
    merchant = await register(client, "merchant")
    first = await new_store(client, merchant, name="Rollup 0")
    stores = [first] + [await new_store(client, merchant, *point_at(first["lat"], first["lng"], 300, 90 * i),
                                        name=f"Rollup {i}") for i in range(1, 4)]
    # at each store: a visitor from two days ago, one from three days ago, and a newcomer
    crowd = [[await register(client) for _ in range(3)] for _ in stores]
    for s, (two, three, _) in zip(stores, crowd, strict=True):
        await check_in(services, principal(two), s["id"], s["lat"], s["lng"], now=days_ago(2))
        await check_in(services, principal(three), s["id"], s["lat"], s["lng"], now=days_ago(3))
    groups = record_groups(monkeypatch)
    calls = [(u, s) for s, users in zip(stores, crowd, strict=True) for u in users]
    results = await asyncio.gather(*(check_in(services, principal(u), s["id"], s["lat"], s["lng"]) for u, s in calls),
                                   return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert max(len(g) for g in groups) > 1  # several stores' rollups in one write
    for s, users in zip(stores, crowd, strict=True):
        sid = ObjectId(s["id"])
        doc = await services.db.stores.find_one({"_id": sid})
        day = local_day(doc, datetime.now(UTC))
        row = await services.db.store_days.find_one({"store_id": sid, "day": day})
        assert (row["checkins"], row["unique"], row["new"], row["last_of"]) == (3, 3, 1, 3)
        # the days the two returning visitors came from gave their "newest day" tallies to today
        older = await services.db.store_days.find({"store_id": sid, "day": {"$ne": day}}).to_list(None)
        assert sum(r.get("last_of", 0) for r in older) == 0
        assert sum(r.get("prev_of", 0) for r in older) == 2
        for user in users:
            visitor = await services.db.store_visitors.find_one({"store_id": sid, "user_id": ObjectId(user.id)})
            assert visitor["last_day"] == day and visitor["first_at"] is not None
        assert (doc["checkins_count"], doc["unique_visitors"]) == (5, 3)


async def test_visits_at_one_store_in_one_call_add_up(client, services):
    """``count_visit_days`` merges the tallies of several visitors at one store and day (the check-in
    groups send one visitor a store, but the function takes any number)."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant, name="Merge")
    users = [await register(client) for _ in range(3)]
    sid = ObjectId(store["id"])
    doc = await services.db.stores.find_one({"_id": sid})
    await check_in(services, principal(users[0]), store["id"], store["lat"], store["lng"], now=days_ago(2))
    now = datetime.now(UTC)

    async def body(txn):
        return await count_visit_days(services, txn, [(doc, ObjectId(u.id), now) for u in users])

    assert await run_transaction(services, body) == [False, True, True]
    row = await services.db.store_days.find_one({"store_id": sid, "day": local_day(doc, now)})
    assert (row["checkins"], row["unique"], row["new"], row["last_of"]) == (3, 3, 2, 3)
    assert sum(row["hours"].values()) == 3
    older = await services.db.store_days.find_one({"store_id": sid, "day": {"$ne": local_day(doc, now)}})
    assert (older["last_of"], older["prev_of"]) == (0, 1)


async def test_a_photo_taken_meanwhile_fails_its_own_check_in_only(client, services, monkeypatch):
    merchant = await register(client, "merchant")
    a_store = await new_store(client, merchant, name="Photo A")
    b_store = await new_store(client, merchant, *point_at(a_store["lat"], a_store["lng"], 50, 0), name="Photo B")
    c_store = await new_store(client, merchant, *point_at(a_store["lat"], a_store["lng"], 50, 180), name="Photo C")
    alice, bob, carol = await register(client), await register(client), await register(client)
    alice_photo, bob_photo = await uploaded(client, alice), await uploaded(client, bob)
    real = groupcommit.commit
    groups: list[int] = []
    release = asyncio.Event()

    async def held_then_photo_taken(services_, group):
        groups.append(len(group))
        if len(groups) == 1:  # carol's check-in holds the writer while alice and bob queue behind it
            await release.wait()
        elif len(groups) == 2:  # bob's photo goes to another post between his request's check and the commit
            await services.db.media.update_one({"_id": ObjectId(bob_photo["id"])},
                                               {"$set": {"status": "attached", "post_id": ObjectId()}})
        return await real(services_, group)

    monkeypatch.setattr(groupcommit, "commit", held_then_photo_taken)
    carols = asyncio.create_task(check_in(services, principal(carol), c_store["id"], c_store["lat"], c_store["lng"]))
    await wait_until(lambda: _true(groups))
    both = asyncio.gather(
        check_in(services, principal(alice), a_store["id"], a_store["lat"], a_store["lng"],
                 media_ids=[alice_photo["id"]]),
        check_in(services, principal(bob), b_store["id"], b_store["lat"], b_store["lng"], media_ids=[bob_photo["id"]]),
        return_exceptions=True)
    await wait_until(lambda: _true(len(groupcommit.writer(services)._queue) == 2))
    release.set()
    results = await both
    await carols
    assert groups[:2] == [1, 2]  # alice and bob together first, then each alone
    assert not isinstance(results[0], BaseException), results[0]
    assert isinstance(results[1], ApiError) and results[1].code == "invalid_media"
    assert await services.db.checkins.count_documents({"user_id": ObjectId(bob.id)}) == 0
    assert await services.db.posts.count_documents({"author_id": ObjectId(bob.id)}) == 0
    stored = await services.db.media.find_one({"_id": ObjectId(alice_photo["id"])})
    assert stored["post_id"] == results[0].post["_id"]


async def _true(value: object) -> bool:
    return bool(value)


async def test_a_guard_made_meanwhile_by_another_process_runs_the_group_again(client, services, monkeypatch):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant, name="Race")
    near = await new_store(client, merchant, *point_at(store["lat"], store["lng"], 40, 180), name="Race 2")
    third = await new_store(client, merchant, *point_at(store["lat"], store["lng"], 40, 0), name="Race 3")
    newcomer, other = await register(client), await register(client)
    real = groupcommit._apply_history_rules
    raced: list[bool] = []

    async def another_process_first(services_, p, guard, session):
        if not raced and p.user_id == ObjectId(newcomer.id):
            # the newcomer's first check-in ever commits in another process after this snapshot
            raced.append(True)
            async with services.mongo.start_session() as other_session:
                await other_session.start_transaction()
                at = p.here.at
                await services.db.checkins.insert_one({**p.checkin, "_id": ObjectId(), "post_id": None,
                                                       "store_id": ObjectId(near["id"])}, session=other_session)
                await services.db.checkin_guards.insert_one(
                    {"_id": p.user_id, "n": 1, "at": at, "recent": [{
                        "_id": ObjectId(), "store_id": ObjectId(near["id"]), "location": p.checkin["location"],
                        "accuracy_m": 20.0, "created_at": at}]}, session=other_session)
                await other_session.commit_transaction()
        return await real(services_, p, guard, session)

    monkeypatch.setattr(groupcommit, "_apply_history_rules", another_process_first)
    results = await asyncio.gather(
        check_in(services, principal(newcomer), store["id"], store["lat"], store["lng"]),
        check_in(services, principal(other), third["id"], third["lat"], third["lng"]),
        return_exceptions=True)
    assert raced
    # run again, the newcomer's rules saw the other process's check-in (from where they stand), and
    # each check-in of the group is counted once
    assert not [r for r in results if isinstance(r, BaseException)], results
    guard = await services.db.checkin_guards.find_one({"_id": ObjectId(newcomer.id)})
    assert guard["n"] == 2 and len(guard["recent"]) == 2
    for s in (store, third):
        assert (await services.db.stores.find_one({"_id": ObjectId(s["id"])}))["checkins_count"] == 1


async def test_each_request_of_a_group_keeps_its_idempotency_key(client, services):
    merchant = await register(client, "merchant")
    first = await new_store(client, merchant, name="Keys")
    stores = [first] + [await new_store(client, merchant, *point_at(first["lat"], first["lng"], 40, 60 * i),
                                        name=f"Keys {i}") for i in range(1, 6)]
    users = [await register(client) for _ in range(6)]
    keys = [str(uuid.uuid4()) for _ in users]

    async def send(i: int):
        s = stores[i]
        return await client.post("/v1/checkins", json={"store_id": s["id"], "lat": s["lat"], "lng": s["lng"]},
                                 headers={**users[i].headers, "Idempotency-Key": keys[i]})

    answers = await asyncio.gather(*(send(i) for i in range(6)))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    # the group's transaction marked each request's reservation as written, with its check-in
    reservations = await services.db.idempotency.find({"key": {"$in": keys}}).to_list(None)
    assert len(reservations) == 6 and all(r.get("wrote") is True for r in reservations), reservations
    again = await asyncio.gather(*(send(i) for i in range(6)))
    assert [a.json() for a in again] == [a.json() for a in answers]
    assert Counter(a.headers.get("idempotent-replayed") for a in again) == Counter({"true": 6})
    for user in users:
        assert await services.db.checkins.count_documents({"user_id": ObjectId(user.id)}) == 1


async def test_a_check_in_that_keeps_meeting_duplicates_answers_503_and_writes_nothing(client, services,
                                                                                      monkeypatch):
    from pymongo.errors import DuplicateKeyError

    merchant, user = await register(client, "merchant"), await register(client)
    store = await new_store(client, merchant, name="Always raced")
    attempts: list[int] = []

    async def raced(services_, txn, visits, rows=None):
        attempts.append(len(visits))
        raise DuplicateKeyError("E11000 duplicate key error (another process's first visit)")

    monkeypatch.setattr(groupcommit, "count_visit_days", raced)
    resp = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]},
                             headers=user.headers)
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "unavailable" and resp.headers["retry-after"] == "1"
    assert len(attempts) == DUPLICATE_ATTEMPTS
    assert await services.db.checkins.count_documents({"user_id": ObjectId(user.id)}) == 0
    assert await services.db.posts.count_documents({"author_id": ObjectId(user.id)}) == 0
    assert await services.db.checkin_guards.find_one({"_id": ObjectId(user.id)}) is None


async def test_a_check_in_s_transaction_reads_in_one_round_trip(client, services):
    """The group's stores, guards, visitor rows and the visitors' days in the mayor's window come in
    one aggregation, the first command of the transaction; then only its writes and the commit. The
    check-in here needs all four: a returning visitor, a guard, and another user in the seat (so the
    seat's quick decision counts the visitor's days), and the visitor takes the seat."""
    merchant, mayor_user, visitor = await register(client, "merchant"), await register(client), await register(client)
    store = await new_store(client, merchant)
    here = (store["id"], store["lat"], store["lng"])
    for n in (4, 3):
        await check_in(services, principal(mayor_user), *here, now=days_ago(n))
    for n in (2, 1):  # one day, then two: the mayor keeps the seat (ties keep it)
        await check_in(services, principal(visitor), *here, now=days_ago(n))
    assert (await services.db.stores.find_one({"_id": ObjectId(store["id"])}))["mayor_id"] == ObjectId(mayor_user.id)
    async with counted_services(services) as (counted, log):
        await check_in(counted, principal(visitor), *here)
    in_transaction = [(name, body) for name, body in log.commands if "txnNumber" in body and "autocommit" in body]
    names = [(name, body.get(name)) for name, body in in_transaction]
    assert names[0] == ("aggregate", "stores"), names
    assert [n for n in names[1:] if n[0] in ("find", "aggregate", "count")] == [], names
    assert names[-1][0] == "commitTransaction"
    assert len(names) == 8, names  # the read, six writes (guard, check-in, post, visitor row, day, store), commit
    # the visitor's three days beat the sitting mayor's two: seated by the days the read brought
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["mayor_id"] == ObjectId(visitor.id) and doc["seat"]["count"] == 3


async def test_a_seat_that_changed_hands_since_the_store_s_read_is_still_decided_exactly(client, services, monkeypatch):
    """``challenger`` comes from the store as read before the group: stale, the seat's decision reads
    the days itself (not stale: test above, in the group's one read)."""
    merchant, mayor_user, visitor = await register(client, "merchant"), await register(client), await register(client)
    store = await new_store(client, merchant)
    here = (store["id"], store["lat"], store["lng"])
    for n in (4, 3):
        await check_in(services, principal(mayor_user), *here, now=days_ago(n))
    for n in (2, 1):
        await check_in(services, principal(visitor), *here, now=days_ago(n))
    real = groupcommit.Pending
    # as if the store had been read before the mayor took the seat: no days in the group's read
    monkeypatch.setattr(groupcommit, "Pending", lambda *fields: real(*fields[:4], False))
    async with counted_services(services) as (counted, log):
        await check_in(counted, principal(visitor), *here)
    reads = [(name, body.get(name)) for name, body in log.commands
             if "txnNumber" in body and name in ("find", "aggregate")]
    assert reads == [("aggregate", "stores"), ("aggregate", "checkins")], reads  # the days, read when needed
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["mayor_id"] == ObjectId(visitor.id) and doc["seat"]["count"] == 3


async def test_a_challenger_s_second_visit_of_a_day_counts_that_day_once(client, services):
    """The days read with the group are the user's before this check-in: a check-in on a day they
    already have there adds no day (two against the mayor's two keeps the seat; three would take it)."""
    merchant, mayor_user, visitor = await register(client, "merchant"), await register(client), await register(client)
    store = await new_store(client, merchant)
    here = (store["id"], store["lat"], store["lng"])
    for n in (4, 3):
        await check_in(services, principal(mayor_user), *here, now=days_ago(n))
    await check_in(services, principal(visitor), *here, now=days_ago(2))
    for hours in (2, 5):  # yesterday, twice: the second is past the one-hour rule
        await check_in(services, principal(visitor), *here, now=day_start_ago(1) + timedelta(hours=hours))
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["mayor_id"] == ObjectId(mayor_user.id) and doc["seat"]["count"] == 2
    recount, _ = await mayor.full_decision(services, doc["_id"], doc["mayor_id"], None, datetime.now(UTC))
    assert recount == ObjectId(mayor_user.id)
