"""The notifications' outbox (notifications/outbox.py), against the real servers: a like, comment,
follow or repost whose recording failed after its answer is recorded by the sweep, and its
recipient told once; an action undone before the sweep tells nobody; a healthy run leaves nothing
owed; the beat's task runs the sweep on a real worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from notifications import outbox, recorder
from solomo.core import tasknames
from tests.feed.helpers import events, follow, post
from tests.support import Account, register, wait_until


class InboxDown(Exception):
    """MongoDB or Redis failing while a notification is recorded."""


async def _inbox_down(*_: Any, **__: Any) -> bool:
    raise InboxDown("the inbox is unreachable")


async def _told(services: Any, account: Account, kind: str) -> tuple[int, int]:
    """(inbox entries, ``notification`` events) of ``kind`` the account has."""
    entries = await services.db.notifications.count_documents({"recipient_id": ObjectId(account.id), "kind": kind})
    sent = sum(1 for e in await events(services, account, "notification") if e["data"]["kind"] == kind)
    return entries, sent


async def _owed(services: Any, collection: str, query: dict[str, Any]) -> bool:
    """Whether the action's document still carries notifications owed."""
    doc = await services.db[collection].find_one(query, {outbox.FIELD: 1})
    return doc is not None and outbox.FIELD in doc


async def _comment(client: Any, account: Account, post_id: str, text: str) -> dict[str, Any]:
    resp = await client.post(f"/v1/posts/{post_id}/comments", json={"text": text}, headers=account.headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def _like(client: Any, account: Account, post_id: str, on: bool = True) -> None:
    resp = await (client.post if on else client.delete)(f"/v1/posts/{post_id}/like", headers=account.headers)
    assert resp.status_code == 200, resp.text


async def _unfollow(client: Any, follower: Account, target: Account) -> None:
    resp = await client.delete(f"/v1/users/{target.id}/follow", headers=follower.headers)
    assert resp.status_code == 204, resp.text


async def test_a_comment_whose_recording_failed_is_recorded_by_the_sweep_once(client, services, monkeypatch):
    author, commenter, mentioned = [await register(client) for _ in range(3)]
    p = await post(client, author, "comment on me")
    with monkeypatch.context() as m:
        m.setattr(recorder, "record", _inbox_down)
        c = await _comment(client, commenter, p["id"], f"hello @{mentioned.username}")
    assert [await _told(services, author, "comment"), await _told(services, mentioned, "mention")] == [(0, 0)] * 2
    owed = {"_id": ObjectId(c["id"])}
    assert await _owed(services, "comments", owed)

    await outbox.sweep_pending(services)  # within the grace period: the fast path's, not the sweep's
    assert await _owed(services, "comments", owed)
    assert await _told(services, author, "comment") == (0, 0)

    await outbox.sweep_pending(services, older_than_s=0)  # the beat's run, later
    assert [await _told(services, author, "comment"), await _told(services, mentioned, "mention")] == [(1, 1)] * 2
    assert not await _owed(services, "comments", owed)
    await outbox.sweep_pending(services, older_than_s=0)
    assert [await _told(services, author, "comment"), await _told(services, mentioned, "mention")] == [(1, 1)] * 2


async def test_a_follow_whose_recording_failed_is_recorded_by_the_sweep_once(client, services, monkeypatch):
    star, fan = await register(client), await register(client)
    with monkeypatch.context() as m:
        m.setattr(recorder, "record", _inbox_down)
        await follow(client, fan, star)
    owed = {"follower_id": ObjectId(fan.id), "target_id": ObjectId(star.id)}
    assert await _owed(services, "follows", owed)
    await follow(client, fan, star)  # the client's retry: the follow exists, the sweep tells of it
    assert await _told(services, star, "follow") == (0, 0)
    assert await _owed(services, "follows", owed)

    await outbox.sweep_pending(services, older_than_s=0)
    assert await _told(services, star, "follow") == (1, 1)
    assert not await _owed(services, "follows", owed)
    await outbox.sweep_pending(services, older_than_s=0)
    assert await _told(services, star, "follow") == (1, 1)


async def test_a_like_whose_event_failed_is_announced_by_the_sweep_once(client, services, monkeypatch):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "like me")
    with monkeypatch.context() as m:  # the entry is written, its event is not sent (Redis down)
        m.setattr(services.events, "publish_each", _inbox_down)
        await _like(client, fan, p["id"])
    owed = {"post_id": ObjectId(p["id"]), "user_id": ObjectId(fan.id)}
    assert await _owed(services, "likes", owed)
    assert await _told(services, author, "like") == (1, 0)

    await outbox.sweep_pending(services, older_than_s=0)
    assert await _told(services, author, "like") == (1, 1)
    assert not await _owed(services, "likes", owed)
    await outbox.sweep_pending(services, older_than_s=0)
    assert await _told(services, author, "like") == (1, 1)


async def test_a_repost_whose_recording_failed_is_recorded_by_the_sweep_once(client, services, monkeypatch):
    author, reposter = await register(client), await register(client)
    p = await post(client, author, "repost me")
    with monkeypatch.context() as m:
        m.setattr(recorder, "record", _inbox_down)
        resp = await client.post(f"/v1/posts/{p['id']}/repost", json={"text": ""}, headers=reposter.headers)
        assert resp.status_code == 201, resp.text
    owed = {"_id": ObjectId(resp.json()["id"])}
    assert await _owed(services, "posts", owed)

    await outbox.sweep_pending(services, older_than_s=0)
    await outbox.sweep_pending(services, older_than_s=0)
    assert await _told(services, author, "repost") == (1, 1)
    assert not await _owed(services, "posts", owed)


async def test_an_action_undone_before_the_sweep_tells_nobody(client, services, monkeypatch):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "changed my mind")
    with monkeypatch.context() as m:
        m.setattr(recorder, "record", _inbox_down)
        await _like(client, fan, p["id"])
        c = await _comment(client, fan, p["id"], "on second thoughts")
        await follow(client, fan, author)
    await _like(client, fan, p["id"], on=False)
    resp = await client.delete(f"/v1/comments/{c['id']}", headers=fan.headers)
    assert resp.status_code == 204, resp.text
    await _unfollow(client, fan, author)
    assert await _owed(services, "comments", {"_id": ObjectId(c["id"])})  # deleted, its field left

    await outbox.sweep_pending(services, older_than_s=0)
    assert [await _told(services, author, kind) for kind in ("like", "comment", "follow")] == [(0, 0)] * 3
    assert not await _owed(services, "comments", {"_id": ObjectId(c["id"])})


async def test_a_healthy_run_records_at_once_and_leaves_nothing_owed(client, services):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "all good")
    await _like(client, fan, p["id"])
    c = await _comment(client, fan, p["id"], "nice")
    await follow(client, fan, author)
    resp = await client.post(f"/v1/posts/{p['id']}/repost", json={"text": ""}, headers=fan.headers)
    assert resp.status_code == 201, resp.text
    assert [await _told(services, author, kind) for kind in ("like", "comment", "follow", "repost")] == [(1, 1)] * 4
    fan_id = ObjectId(fan.id)
    for collection, query in (("likes", {"post_id": ObjectId(p["id"]), "user_id": fan_id}),
                              ("comments", {"_id": ObjectId(c["id"])}),
                              ("follows", {"follower_id": fan_id, "target_id": ObjectId(author.id)}),
                              ("posts", {"_id": ObjectId(resp.json()["id"])})):
        doc = await services.db[collection].find_one(query)
        assert doc is not None and outbox.FIELD not in doc, collection
    own = await post(client, fan, "my own")  # nobody is told of their own like: nothing is owed at all
    await _like(client, fan, own["id"])
    doc = await services.db.likes.find_one({"post_id": ObjectId(own["id"]), "user_id": fan_id})
    assert doc is not None and outbox.FIELD not in doc


async def test_the_beats_task_runs_the_sweep(client, services, celery_worker, monkeypatch):
    star, fan = await register(client), await register(client)
    with monkeypatch.context() as m:
        m.setattr(recorder, "record", _inbox_down)
        await follow(client, fan, star)
    owed = {"follower_id": ObjectId(fan.id), "target_id": ObjectId(star.id)}
    # owed longer than the grace period, as the beat would find it
    since = datetime.now(UTC) - outbox.SWEEP_AFTER - timedelta(seconds=1)
    await services.db.follows.update_one(owed, {"$set": {f"{outbox.FIELD}.since": since}})
    await services.tasks.send(tasknames.SWEEP_NOTIFICATIONS)

    async def told() -> bool:
        return await _told(services, star, "follow") == (1, 1)

    await wait_until(told)
    assert not await _owed(services, "follows", owed)


async def test_an_erased_recipient_is_told_nothing_by_the_sweep(client, services, monkeypatch):
    """A like's notice is still owed when its recipient erases their account: the sweep writes no
    inbox entry and no event for them (the erasure emptied both), and clears the notice."""
    author, fan = await register(client), await register(client)
    p = await post(client, author, "gone soon")
    with monkeypatch.context() as m:
        m.setattr(recorder, "record", _inbox_down)
        await _like(client, fan, p["id"])
    owed = {"post_id": ObjectId(p["id"]), "user_id": ObjectId(fan.id)}
    assert await _owed(services, "likes", owed)
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=author.headers)
    assert resp.status_code == 204, resp.text

    await outbox.sweep_pending(services, older_than_s=0)
    assert await services.db.notifications.count_documents({"recipient_id": ObjectId(author.id)}) == 0
    assert await events(services, author, "notification") == []
    assert not await _owed(services, "likes", owed)
