"""Work deferred until the answer is sent (solomo/core/afterwards.py), against the real app."""

from __future__ import annotations

import logging
from typing import Any

from bson import ObjectId

from feed import likes
from solomo.core import afterwards
from tests.feed.helpers import post, principal
from tests.support import register


async def _likes_told(services: Any, author_id: str) -> int:
    return await services.db.notifications.count_documents({"recipient_id": ObjectId(author_id), "kind": "like"})


async def test_the_liker_is_answered_before_the_author_is_told(app, client, services):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "like me")
    at_answer: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            at_answer["told"] = await _likes_told(services, author.id)

    path = f"/v1/posts/{p['id']}/like"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"solomo.test"), (b"authorization", fan.headers["Authorization"].encode())],
             "client": ("127.0.0.1", 50000), "server": ("solomo.test", 80)}
    await app(scope, receive, send)
    assert messages[0]["status"] == 200
    assert at_answer == {"told": 0}  # the answer went out first
    assert await _likes_told(services, author.id) == 1  # then, in the same request's background, the inbox


async def test_outside_a_request_the_work_runs_at_once(client, services):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "like me too")
    await likes.like(services, principal(fan), ObjectId(p["id"]))  # the domain, called outside a request
    assert await _likes_told(services, author.id) == 1


async def test_a_failing_job_is_logged_and_the_next_still_runs(caplog):
    ran: list[str] = []

    async def fails() -> None:
        raise RuntimeError("inbox unreachable")

    async def works() -> None:
        ran.append("second")

    with caplog.at_level(logging.WARNING, logger="solomo.afterwards"):
        with afterwards.collecting() as jobs:
            await afterwards.after_response(fails, "a like notification")
            await afterwards.after_response(works, "a follow notification")
            assert ran == []  # collected, not run
        await afterwards.run_all(jobs)
    assert ran == ["second"]
    assert "a like notification failed after the answer: inbox unreachable" in caplog.text
