"""Offers in the inbox (:mod:`notifications.offerinbox`): a delivery is one document, whatever its
size; a recipient's entries are made from it when they next read their inbox — in delivery order,
counted unread before the first page, once however often or concurrently they read, and a
delivery written late (stamped before the newest one pulled) is still pulled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from notifications import offerinbox, recorder
from solomo.core.timeutil import ms_of
from tests.notifications.test_inbox import inbox, mark_read, unread
from tests.support import register


def _offer() -> dict[str, object]:
    return {"_id": ObjectId(), "owner_id": ObjectId()}


async def _entries(services, user_id: str) -> list[dict]:
    return await services.db.notifications.find({"recipient_id": ObjectId(user_id), "kind": "offer"}).to_list(None)


async def test_a_delivery_is_one_document_and_its_entries_come_with_the_first_read(client, services):
    users = [await register(client) for _ in range(3)]
    offer = _offer()
    assert await offerinbox.record_offers(services, offer, [u.id for u in users]) == 3
    assert await services.db.offer_deliveries.count_documents({"offer_id": offer["_id"]}) == 1
    assert await services.db.notifications.count_documents({"subject": f"offer:{offer['_id']}"}) == 0
    # the unread count, read before any page, already holds it — once, though the offer was
    # delivered twice (a chunk redone) — and writes nothing: the web client asks for it on every
    # offer event, so a count that wrote would write every recipient's entry at push time after all
    await offerinbox.record_offers(services, offer, [users[0].id])
    assert (await unread(client, users[0]))["by_kind"]["offer"] == 1
    assert await _entries(services, users[0].id) == []
    assert await services.db.offer_inbox_marks.find_one({"_id": ObjectId(users[0].id)}) is None
    assert [n["kind"] for n in await inbox(client, users[0])] == ["offer"]
    assert [n["kind"] for n in await inbox(client, users[0])] == ["offer"]  # read again: still one
    assert (await unread(client, users[0]))["by_kind"]["offer"] == 1  # pulled: counted once, not twice
    await mark_read(client, users[1])  # marking read pulls first, so the offer is marked too
    [entry] = await _entries(services, users[1].id)
    assert entry["read"] is True
    await inbox(client, users[1])  # read (so no longer guarded by the open-entry index) and pulled again
    assert len(await _entries(services, users[1].id)) == 1
    assert await _entries(services, users[2].id) == []  # never read: never written


async def test_entries_keep_the_delivery_order_and_time(client, services):
    user = await register(client)
    first, second = _offer(), _offer()
    await offerinbox.record_offers(services, first, [user.id])
    await offerinbox.record_offers(services, second, [user.id])
    deliveries = {d["offer_id"]: d async for d in services.db.offer_deliveries.find({})}
    await offerinbox.pull(services, ObjectId(user.id))
    entries = await services.db.notifications.find({"recipient_id": ObjectId(user.id)}).sort(
        [("updated_ms", -1), ("_id", -1)]).to_list(None)
    assert [e["offer_id"] for e in entries] == [second["_id"], first["_id"]]
    assert [e["updated_ms"] for e in entries] == [deliveries[o]["created_ms"] for o in (second["_id"], first["_id"])]


async def test_a_delivery_written_after_a_newer_one_was_pulled_is_still_pulled(client, services):
    user = await register(client)
    uid = ObjectId(user.id)
    await offerinbox.record_offers(services, _offer(), [user.id])
    assert await offerinbox.pull(services, uid) == 1
    # stamped 30 s before the mark (its chunk was slow to write), inserted only now
    late = _offer()
    mark = (await services.db.offer_inbox_marks.find_one({"_id": uid}))["pulled_ms"]
    at = datetime.fromtimestamp((mark - 30_000) / 1000, UTC)
    await services.db.offer_deliveries.insert_one({
        "_id": ObjectId(), "offer_id": late["_id"], "subject": f"offer:{late['_id']}", "recipients": [uid],
        "created_at": at, "created_ms": ms_of(at), "expires_at": at + timedelta(days=1)})
    assert await offerinbox.pull(services, uid) == 1
    assert await offerinbox.pull(services, uid) == 0
    assert len(await _entries(services, user.id)) == 2


async def test_concurrent_reads_make_one_entry(client, services):
    user = await register(client)
    await offerinbox.record_offers(services, _offer(), [user.id])
    added = await asyncio.gather(*(offerinbox.pull(services, ObjectId(user.id)) for _ in range(5)))
    assert sum(added) == 1
    assert len(await _entries(services, user.id)) == 1


async def test_the_owner_is_not_told_and_an_erased_user_leaves_every_delivery(client, services):
    owner, fan, gone = await register(client), await register(client), await register(client)
    offer = {"_id": ObjectId(), "owner_id": ObjectId(owner.id)}
    assert await offerinbox.record_offers(services, offer, [owner.id, fan.id, gone.id]) == 2
    await offerinbox.pull(services, ObjectId(gone.id))
    await recorder.erase_user(services, ObjectId(gone.id))
    [delivery] = await services.db.offer_deliveries.find({"offer_id": offer["_id"]}).to_list(None)
    assert delivery["recipients"] == [ObjectId(fan.id)]
    assert await services.db.offer_inbox_marks.find_one({"_id": ObjectId(gone.id)}) is None
    assert await _entries(services, gone.id) == []


async def test_the_unread_count_reads_the_mark_with_the_entries(client, services):
    """The count's one aggregation brings the recipient's mark too: a delivery behind it (less the
    overlap) whose entry has left the inbox (trimmed, expired) is not counted again."""
    user = await register(client)
    uid = ObjectId(user.id)
    old = _offer()
    await offerinbox.record_offers(services, old, [user.id])
    # delivered two minutes ago, pulled since, then its entry left the inbox
    at = datetime.now(UTC) - timedelta(minutes=2)
    await services.db.offer_deliveries.update_one({"offer_id": old["_id"]},
                                                  {"$set": {"created_at": at, "created_ms": ms_of(at)}})
    assert await offerinbox.pull(services, uid) == 1
    await services.db.offer_inbox_marks.update_one({"_id": uid}, {"$set": {"pulled_ms": ms_of(datetime.now(UTC))}})
    await services.db.notifications.delete_many({"recipient_id": uid, "kind": "offer"})
    assert (await unread(client, user))["by_kind"]["offer"] == 0
    await offerinbox.record_offers(services, _offer(), [user.id])  # a new one still counts
    assert (await unread(client, user))["by_kind"]["offer"] == 1
