"""Mention notifications of a post: sent before the post is marked ``mentions_notified`` (a crash
in between re-sends instead of losing them) and deduplicated per post and user (a re-run sends
no second one): the inbox entry is written first and announced until its event is out."""

from __future__ import annotations

import contextlib
from typing import Any

from bson import ObjectId

import feed.fanout
from feed.fanout import fanout_post
from solomo.core import tasknames
from tests.feed.helpers import events
from tests.support import Account, random_point, register


class Crash(Exception):
    """A worker dying at this point."""


def crash(*_: Any, **__: Any) -> Any:
    raise Crash


async def _mentioning_post(client, hold_tasks) -> tuple[list[Account], str]:
    held = hold_tasks()
    author = await register(client)
    mentioned = [await register(client) for _ in range(2)]
    lat, lng = random_point()
    text = "hi " + " ".join(f"@{m.username}" for m in mentioned)
    resp = await client.post("/v1/posts", json={"text": text, "lat": lat, "lng": lng}, headers=author.headers)
    assert resp.status_code == 201, resp.text
    post_id = resp.json()["id"]
    assert await held.take(tasknames.FANOUT_POST) == post_id  # held: the test runs the fan-out itself
    return mentioned, post_id


async def _mentions(services, account: Account, post_id: str) -> int:
    return sum(1 for e in await events(services, account, "notification")
               if e["data"]["kind"] == "mention" and e["data"]["post"]["id"] == post_id)


async def test_crash_before_sending_sends_them_on_the_rerun(client, services, monkeypatch, hold_tasks):
    mentioned, post_id = await _mentioning_post(client, hold_tasks)
    with monkeypatch.context() as m:  # the event store fails: nothing is sent
        m.setattr(services.events, "publish", crash)
        m.setattr(services.events, "publish_each", crash)
        with contextlib.suppress(Crash):
            await fanout_post(services, ObjectId(post_id))
    assert [await _mentions(services, a, post_id) for a in mentioned] == [0, 0]
    await fanout_post(services, ObjectId(post_id))  # the retry (or the sweep)
    assert [await _mentions(services, a, post_id) for a in mentioned] == [1, 1]
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert doc["mentions_notified"] is True and doc["fanout"] == "done"


async def test_crash_after_sending_sends_no_duplicate(client, services, monkeypatch, hold_tasks):
    mentioned, post_id = await _mentioning_post(client, hold_tasks)
    with monkeypatch.context() as m:  # sent, then the worker dies before the post is marked
        m.setattr(feed.fanout, "_mark_mentions_notified", crash)
        with contextlib.suppress(Crash):
            await fanout_post(services, ObjectId(post_id))
    assert [await _mentions(services, a, post_id) for a in mentioned] == [1, 1]
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert not doc.get("mentions_notified") and doc["fanout"] == "pending"
    for _ in range(2):  # the retry, then a redelivery of the finished task
        await fanout_post(services, ObjectId(post_id))
    assert [await _mentions(services, a, post_id) for a in mentioned] == [1, 1]
    doc = await services.db.posts.find_one({"_id": ObjectId(post_id)})
    assert doc["mentions_notified"] is True and doc["fanout"] == "done"
