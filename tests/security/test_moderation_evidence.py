"""Moderation decisions are recorded whatever route they take, and an author cannot destroy the
evidence: a post under review, hidden or reported that its author deletes leaves every public
listing but stays in the moderators' queue and ``GET /v1/posts/{id}`` until a moderator decides."""

from __future__ import annotations

from typing import Any

import httpx2
from bson import ObjectId

from tests.security.conftest import LeakScanner, account
from tests.support import Account


async def _audit(api: httpx2.AsyncClient, moderator: Account, target_type: str, target_id: str) -> list[dict[str, Any]]:
    resp = await api.get("/v1/moderation/audit", params={"target_type": target_type, "target_id": target_id},
                         headers=moderator.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


async def _queue_ids(api: httpx2.AsyncClient, moderator: Account) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(500):
        resp = await api.get("/v1/moderation/queue", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                             headers=moderator.headers)
        assert resp.status_code == 200, resp.text
        # posts only: the queue also holds offers and comments other tests (in this process) left
        out += [item["post"]["id"] for item in resp.json()["items"] if "post" in item]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("the queue did not end")


async def _post(api: httpx2.AsyncClient, author: Account, text: str = "evidence") -> str:
    resp = await api.post("/v1/posts", json={"text": text}, headers=author.headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _visible_to(api: httpx2.AsyncClient, post_id: str, *viewers: Account) -> list[int]:
    return [(await api.get(f"/v1/posts/{post_id}", headers=v.headers)).status_code for v in viewers]


async def test_a_moderator_deleting_a_comment_is_audited(api, services, leak_scanner: LeakScanner):
    author, commenter = await account(services, leak_scanner), await account(services, leak_scanner)
    moderator = await account(services, leak_scanner, "moderator")
    post_id = await _post(api, author)
    comment_ids = []
    for text in ("rude words", "my own words"):
        resp = await api.post(f"/v1/posts/{post_id}/comments", json={"text": text}, headers=commenter.headers)
        assert resp.status_code == 201, resp.text
        comment_ids.append(resp.json()["id"])
    reply = await api.post(f"/v1/posts/{post_id}/comments", json={"text": "a reply", "reply_to": comment_ids[0]},
                           headers=author.headers)
    assert reply.status_code == 201, reply.text

    assert (await api.delete(f"/v1/comments/{comment_ids[0]}", headers=moderator.headers)).status_code == 204
    entries = await _audit(api, moderator, "comment", comment_ids[0])
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["action"] == "delete" and entry["moderator_id"] == moderator.id and entry["reason"]
    assert entry["before"]["status"] == "published" and entry["after"]["status"] == "deleted"
    assert entry["after"]["post_id"] == post_id and entry["after"]["replies_deleted"] == 1

    # the commenter deleting their own comment is no moderator action
    assert (await api.delete(f"/v1/comments/{comment_ids[1]}", headers=commenter.headers)).status_code == 204
    assert await _audit(api, moderator, "comment", comment_ids[1]) == []


async def test_author_deleting_a_reported_post_keeps_it_for_moderators(api, services, leak_scanner: LeakScanner):
    author, reporter, reader = [await account(services, leak_scanner) for _ in range(3)]
    moderator = await account(services, leak_scanner, "moderator")
    post_id = await _post(api, author, "buy followers here")
    resp = await api.post(f"/v1/posts/{post_id}/reports", json={"reason": "spam"}, headers=reporter.headers)
    assert resp.status_code == 201, resp.text
    assert post_id in await _queue_ids(api, moderator)

    assert (await api.delete(f"/v1/posts/{post_id}", headers=author.headers)).status_code == 204
    assert await _visible_to(api, post_id, author, reporter, reader) == [404, 404, 404]
    resp = await api.get(f"/v1/posts/{post_id}", headers=moderator.headers)
    assert resp.status_code == 200 and resp.json()["status"] == "deleted", resp.text
    assert post_id in await _queue_ids(api, moderator)  # the evidence waits for a decision
    resp = await api.get(f"/v1/users/{author.id}/posts", headers=reader.headers)
    assert resp.status_code == 200 and post_id not in [p["id"] for p in resp.json()["items"]]

    # a deleted post cannot be put back, but the reports can be decided
    resp = await api.post(f"/v1/moderation/posts/{post_id}", json={"action": "restore", "reason": "no"},
                          headers=moderator.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "invalid_transition"
    resp = await api.post(f"/v1/moderation/posts/{post_id}", json={"action": "remove", "reason": "spam ring"},
                          headers=moderator.headers)
    assert resp.status_code == 200 and resp.json()["status"] == "removed", resp.text
    assert post_id not in await _queue_ids(api, moderator)
    assert [e["action"] for e in await _audit(api, moderator, "post", post_id)] == ["remove"]
    assert await _visible_to(api, post_id, author, reporter, moderator) == [404, 404, 200]


async def test_author_deleting_a_hidden_or_held_post_keeps_it_for_moderators(api, services,
                                                                            leak_scanner: LeakScanner):
    author, reader = await account(services, leak_scanner), await account(services, leak_scanner)
    moderator = await account(services, leak_scanner, "moderator")
    hidden = await _post(api, author, "hidden by a moderator")
    resp = await api.post(f"/v1/moderation/posts/{hidden}", json={"action": "hide", "reason": "abuse"},
                          headers=moderator.headers)
    assert resp.status_code == 200, resp.text
    held = await _post(api, author, "held for review")
    await services.db.posts.update_one({"_id": ObjectId(held)}, {"$set": {"status": "pending_review"}})
    assert held in await _queue_ids(api, moderator)

    for post_id in (hidden, held):
        assert (await api.delete(f"/v1/posts/{post_id}", headers=author.headers)).status_code == 204
        assert await _visible_to(api, post_id, author, reader, moderator) == [404, 404, 200]
    queue = await _queue_ids(api, moderator)
    assert held in queue and hidden not in queue  # the hidden post was already decided
    resp = await api.post(f"/v1/moderation/posts/{held}", json={"action": "approve", "reason": "fine after all"},
                          headers=moderator.headers)
    assert resp.status_code == 200 and resp.json()["status"] == "deleted", resp.text  # approved, still deleted
    assert held not in await _queue_ids(api, moderator)
    assert await _visible_to(api, held, author, reader) == [404, 404]


async def test_an_ordinary_deletion_stays_private(api, services, leak_scanner: LeakScanner):
    author = await account(services, leak_scanner)
    moderator = await account(services, leak_scanner, "moderator")
    post_id = await _post(api, author, "nothing to see")
    assert (await api.delete(f"/v1/posts/{post_id}", headers=author.headers)).status_code == 204
    assert await _visible_to(api, post_id, author, moderator) == [404, 404]
    resp = await api.post(f"/v1/moderation/posts/{post_id}", json={"action": "remove", "reason": "x"},
                          headers=moderator.headers)
    assert resp.status_code == 404
