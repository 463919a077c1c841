"""Comments held for review: moderators see them, find them in their queue and decide on them;
moderators open non-public posts by id."""

from __future__ import annotations

import orjson
import pytest
from bson import ObjectId

from moderation.comments import TRANSITIONS, count_delta, next_status
from notifications import outbox, recorder
from solomo.core.errors import Conflict
from solomo.core.keys import event_history as history_key
from tests.moderation.helpers import make_post, token
from tests.support import register


async def comment_ids(client, acct, post_id) -> dict[str, str]:
    resp = await client.get(f"/v1/posts/{post_id}/comments", headers=acct.headers)
    assert resp.status_code == 200, resp.text
    return {c["id"]: c["status"] for c in resp.json()["items"]}


async def find_in_comment_queue(client, moderator, comment_id: str) -> dict | None:
    cursor = None
    for _ in range(200):  # bounded: the queue holds every test's held comments
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v1/moderation/comments", headers=moderator.headers, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        for item in body["items"]:
            if item["comment"]["id"] == comment_id:
                return item
        cursor = body["next_cursor"]
        if cursor is None:
            return None
    raise AssertionError("the comment queue did not end")


async def post_count(services, post_id) -> int:
    return int((await services.db.posts.find_one({"_id": post_id}))["comment_count"])


async def held_comment(client, services, extra_words):
    word = token("rv")
    await extra_words(review=[word])
    author, commenter, reader = await register(client), await register(client), await register(client)
    post = await make_post(services, author)
    resp = await client.post(f"/v1/posts/{post['_id']}/comments", headers=commenter.headers,
                             json={"text": f"look @{reader.username} {word}"})
    assert resp.status_code == 201 and resp.json()["status"] == "pending_review", resp.text
    return author, commenter, reader, post, resp.json()["id"]


async def decide(client, moderator, comment_id, action, reason="because"):
    return await client.post(f"/v1/moderation/comments/{comment_id}", headers=moderator.headers,
                             json={"action": action, "reason": reason})


async def test_held_comment_is_seen_queued_and_approved(client, services, moderator, extra_words):
    author, commenter, reader, post, cid = await held_comment(client, services, extra_words)
    assert cid not in await comment_ids(client, reader, post["_id"])
    assert (await comment_ids(client, commenter, post["_id"]))[cid] == "pending_review"
    assert (await comment_ids(client, moderator, post["_id"]))[cid] == "pending_review"
    assert await post_count(services, post["_id"]) == 0

    item = await find_in_comment_queue(client, moderator, cid)
    assert item is not None, "the held comment is not in the moderators' queue"
    assert item["post"]["id"] == str(post["_id"]) and item["comment"]["author"]["id"] == commenter.id
    assert item["flags"] and item["flags"][0]["source"] == "words" and item["queued_at"].endswith("Z")

    resp = await decide(client, moderator, cid, "approve")
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == cid and resp.json()["status"] == "published"
    assert (await comment_ids(client, reader, post["_id"]))[cid] == "published"
    assert await post_count(services, post["_id"]) == 1
    assert await find_in_comment_queue(client, moderator, cid) is None
    entry = await services.db.audit.find_one({"target_id": cid})
    assert entry["target_type"] == "comment" and entry["action"] == "approve"
    assert entry["before"] == {"status": "pending_review"} and entry["moderator_id"] == ObjectId(moderator.id)
    resp = await client.get("/v1/moderation/audit", headers=moderator.headers,
                            params={"target_type": "comment", "target_id": cid})
    assert resp.status_code == 200 and [e["action"] for e in resp.json()["items"]] == ["approve"]

    # the notifications skipped while it was held go out now
    for who, kind in ((author, "comment"), (reader, "mention")):
        events = await services.redis.xrange(history_key(who.id))
        data = [orjson.loads(f["data"]) for _, f in events if f.get("type") == "notification"]
        assert any(d["kind"] == kind and d["comment"]["id"] == cid for d in data), (who, kind)

    again = await decide(client, moderator, cid, "approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    assert await post_count(services, post["_id"]) == 1


async def test_an_approval_whose_notifications_failed_is_told_by_the_sweep_once(client, services, moderator,
                                                                                extra_words, monkeypatch):
    author, _, reader, _, cid = await held_comment(client, services, extra_words)

    async def inbox_down(*_: object, **__: object) -> bool:
        raise RuntimeError("the inbox is unreachable")

    with monkeypatch.context() as m:  # the approval's answer goes out, its recording fails
        m.setattr(recorder, "record", inbox_down)
        resp = await decide(client, moderator, cid, "approve")
        assert resp.status_code == 200, resp.text
    assert outbox.FIELD in await services.db.comments.find_one({"_id": ObjectId(cid)})

    for _ in range(2):  # the sweep's run, and a later one
        await outbox.sweep_pending(services, older_than_s=0)
    for who, kind in ((author, "comment"), (reader, "mention")):
        events = await services.redis.xrange(history_key(who.id))
        data = [orjson.loads(f["data"]) for _, f in events if f.get("type") == "notification"]
        assert [d["comment"]["id"] for d in data if d["kind"] == kind] == [cid], (who, kind)
    assert outbox.FIELD not in await services.db.comments.find_one({"_id": ObjectId(cid)})


async def test_remove_held_and_published_comments(client, services, moderator, extra_words):
    _, commenter, reader, post, cid = await held_comment(client, services, extra_words)
    resp = await decide(client, moderator, cid, "remove")
    assert resp.status_code == 200 and resp.json()["status"] == "removed"
    assert await post_count(services, post["_id"]) == 0
    assert cid not in await comment_ids(client, commenter, post["_id"])
    assert (await comment_ids(client, moderator, post["_id"]))[cid] == "removed"
    assert await find_in_comment_queue(client, moderator, cid) is None

    resp = await client.post(f"/v1/posts/{post['_id']}/comments", headers=reader.headers, json={"text": "fine"})
    assert resp.status_code == 201 and resp.json()["status"] == "published"
    ok = resp.json()["id"]
    assert await post_count(services, post["_id"]) == 1
    resp = await decide(client, moderator, ok, "remove")
    assert resp.status_code == 200 and resp.json()["status"] == "removed"
    assert await post_count(services, post["_id"]) == 0
    assert ok not in await comment_ids(client, reader, post["_id"])
    for action in ("approve", "remove"):
        resp = await decide(client, moderator, ok, action)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "invalid_transition"
    assert await post_count(services, post["_id"]) == 0
    assert await services.db.audit.count_documents({"target_id": ok}) == 1


async def test_comment_decisions_on_missing_and_bad_input(client, services, moderator):
    author = await register(client)
    post = await make_post(services, author)
    resp = await client.post(f"/v1/posts/{post['_id']}/comments", headers=author.headers, json={"text": "x"})
    cid = resp.json()["id"]
    for bad in ("nope", str(ObjectId())):
        resp = await decide(client, moderator, bad, "remove")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    for body in ({"action": "hide", "reason": "x"}, {"action": "remove"}, {"action": "remove", "reason": " "},
                 {"action": "remove", "reason": "x", "more": 1}):
        resp = await client.post(f"/v1/moderation/comments/{cid}", headers=moderator.headers, json=body)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid", body
    assert (await client.delete(f"/v1/comments/{cid}", headers=author.headers)).status_code == 204
    resp = await decide(client, moderator, cid, "remove")
    assert resp.status_code == 404
    resp = await client.get("/v1/moderation/comments", headers=moderator.headers, params={"cursor": "garbage"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_cursor"


def test_comment_transitions():
    assert next_status("approve", "pending_review") == "published"
    assert next_status("remove", "published") == "removed"
    for action, start in (("approve", "published"), ("approve", "removed"), ("remove", "removed")):
        with pytest.raises(Conflict):
            next_status(action, start)
    assert set(TRANSITIONS) == {"approve", "remove"}
    assert count_delta("pending_review", "published") == 1
    assert count_delta("published", "removed") == -1
    assert count_delta("pending_review", "removed") == 0


@pytest.mark.parametrize("status", ["pending_review", "hidden", "removed"])
async def test_moderators_open_non_public_posts(client, services, moderator, status):
    author, reader = await register(client), await register(client)
    post = await make_post(services, author)
    await services.db.posts.update_one({"_id": post["_id"]}, {"$set": {"status": status}})
    resp = await client.get(f"/v1/posts/{post['_id']}", headers=moderator.headers)
    assert resp.status_code == 200 and resp.json()["status"] == status, resp.text
    assert (await client.get(f"/v1/posts/{post['_id']}/comments", headers=moderator.headers)).status_code == 200
    assert (await client.get(f"/v1/posts/{post['_id']}", headers=reader.headers)).status_code == 404
    own = await client.get(f"/v1/posts/{post['_id']}", headers=author.headers)
    assert own.status_code == (404 if status == "removed" else 200)


async def test_moderators_do_not_open_deleted_posts(client, services, moderator):
    author = await register(client)
    post = await make_post(services, author)
    assert (await client.delete(f"/v1/posts/{post['_id']}", headers=author.headers)).status_code == 204
    resp = await client.get(f"/v1/posts/{post['_id']}", headers=moderator.headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = await client.get(f"/v1/posts/{post['_id']}/comments", headers=moderator.headers)
    assert resp.status_code == 404


async def test_openapi_documents_comment_moderation(client):
    doc = (await client.get("/openapi.json")).json()
    assert "post" in doc["paths"]["/v1/moderation/comments/{comment_id}"]
    op = doc["paths"]["/v1/moderation/comments"]["get"]
    assert "pending_review" in op["description"]
    assert "/v1/moderation/comments" in doc["paths"]["/v1/moderation/queue"]["get"]["description"]
