"""Moderation status changes are in the fan-out outbox: a lost retract/restore task is repaired
by the sweep (``feed.fanout.sweep_pending``), which re-sends ``fanout.post`` for pending posts."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from feed.fanout import fanout_post, sweep_pending
from feed.home import rebuild_home
from solomo.core import tasknames
from solomo.core.keys import home_key
from tests.moderation.helpers import establish
from tests.support import Account, random_point, register


class LostTasks:
    """Stands in for ``services.tasks.send``: every task is recorded and never reaches the broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    async def send(self, name: str, *args: Any, countdown: float | None = None) -> None:
        self.sent.append((name, args))

    def ids(self, name: str) -> set[str]:
        return {str(args[0]) for n, args in self.sent if n == name}


async def _published_post_in_readers_feed(client, services) -> tuple[Account, Account, str]:
    author, reader = await register(client), await register(client)
    assert (await client.post(f"/v1/users/{author.id}/follow", headers=reader.headers)).status_code == 204
    await rebuild_home(services, ObjectId(reader.id))  # the reader's home feed is READY in Redis
    lat, lng = random_point()
    resp = await client.post("/v1/posts", json={"text": "outbox", "lat": lat, "lng": lng}, headers=author.headers)
    assert resp.status_code == 201, resp.text
    post_id = resp.json()["id"]
    await fanout_post(services, ObjectId(post_id))
    assert await services.redis.zscore(home_key(reader.id), post_id) is not None
    return author, reader, post_id


async def _sweep_and_run(services, monkeypatch, post_id: str) -> None:
    """One sweep; then run the ``fanout.post`` it sent for ``post_id`` as the worker would."""
    tasks = LostTasks()
    monkeypatch.setattr(services.tasks, "send", tasks.send)
    # a cutoff a second ahead: the status change stamped fanout_swept_at = now, maybe in this very
    # millisecond (MongoDB dates are milliseconds), and "older than now" would miss it
    await sweep_pending(services, older_than_s=-1, limit=100_000)
    assert post_id in tasks.ids(tasknames.FANOUT_POST), "the sweep did not re-send the post"
    await fanout_post(services, ObjectId(post_id))


async def _home_ids(client, reader: Account) -> list[str]:
    resp = await client.get("/v1/feed/home", headers=reader.headers)
    assert resp.status_code == 200, resp.text
    return [p["id"] for p in resp.json()["items"]]


async def test_lost_restore_is_repaired_by_the_sweep(client, services, moderator, monkeypatch):
    _, reader, post_id = await _published_post_in_readers_feed(client, services)
    url = f"/v1/moderation/posts/{post_id}"
    lost = LostTasks()
    with monkeypatch.context() as m:
        m.setattr(services.tasks, "send", lost.send)
        resp = await client.post(url, headers=moderator.headers, json={"action": "hide", "reason": "t"})
        assert resp.status_code == 200, resp.text
    assert post_id in lost.ids(tasknames.FANOUT_RETRACT)  # the fast path is still sent
    await _sweep_and_run(services, monkeypatch, post_id)  # the lost retract, repaired
    assert await services.redis.zscore(home_key(reader.id), post_id) is None
    assert post_id not in await _home_ids(client, reader)
    monkeypatch.undo()

    with monkeypatch.context() as m:
        m.setattr(services.tasks, "send", lost.send)
        resp = await client.post(url, headers=moderator.headers, json={"action": "restore", "reason": "t"})
        assert resp.status_code == 200 and resp.json()["status"] == "published"
    assert post_id in lost.ids(tasknames.FANOUT_RESTORE)
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert doc["fanout"] == "pending" and "fanout_progress" not in doc
    await _sweep_and_run(services, monkeypatch, post_id)
    assert post_id in await _home_ids(client, reader)
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert doc["fanout"] == "done"


@pytest.mark.parametrize("action", ["hide", "remove"])
async def test_every_status_change_enters_the_outbox(client, services, moderator, action, monkeypatch):
    _, _, post_id = await _published_post_in_readers_feed(client, services)
    await services.db.posts.update_one({"_id": ObjectId(post_id)}, {"$set": {"fanout_progress": {"user": "done"}}})
    lost = LostTasks()  # a worker must not finish the follow-up before the document is read
    with monkeypatch.context() as m:
        m.setattr(services.tasks, "send", lost.send)
        resp = await client.post(f"/v1/moderation/posts/{post_id}", headers=moderator.headers,
                                 json={"action": action, "reason": "t"})
    assert resp.status_code == 200, resp.text
    assert lost.ids(tasknames.FANOUT_RETRACT) == {post_id}  # sent after the commit
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert doc["fanout"] == "pending" and "fanout_progress" not in doc and doc["fanout_swept_at"]


async def test_auto_hide_enters_the_outbox(client, services, monkeypatch):
    monkeypatch.setattr(services.settings, "report_threshold", 2)
    _, reader, post_id = await _published_post_in_readers_feed(client, services)
    reporters = [await establish(services, await register(client)) for _ in range(2)]
    lost = LostTasks()
    with monkeypatch.context() as m:
        m.setattr(services.tasks, "send", lost.send)
        for reporter in reporters:
            resp = await client.post(f"/v1/posts/{post_id}/reports", headers=reporter.headers, json={"reason": "spam"})
            assert resp.status_code == 201, resp.text
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert doc["status"] == "hidden" and doc["fanout"] == "pending"
    assert post_id in lost.ids(tasknames.FANOUT_RETRACT)
    await _sweep_and_run(services, monkeypatch, post_id)
    assert await services.redis.zscore(home_key(reader.id), post_id) is None
