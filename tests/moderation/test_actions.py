"""Moderator decisions on posts: transitions, queue order and paging, bulk, the audit log."""

from __future__ import annotations

import pytest
from bson import ObjectId

from moderation.actions import TRANSITIONS, follow_up_tasks
from solomo.core import tasknames
from tests.moderation.helpers import make_post
from tests.moderation.test_reports import find_in_queue
from tests.support import register


async def act(client, moderator, post_id, action, reason="because"):
    return await client.post(f"/v1/moderation/posts/{post_id}", headers=moderator.headers,
                              json={"action": action, "reason": reason})


async def set_status(services, post_id, status):
    await services.db.posts.update_one({"_id": post_id}, {"$set": {"status": status}})


ALL = ("published", "pending_review", "hidden", "removed")


@pytest.mark.parametrize("action", ["approve", "hide", "remove", "restore"])
@pytest.mark.parametrize("start", ALL)
async def test_transition_table(client, services, moderator, action, start):
    author = await register(client)
    post = await make_post(services, author)
    await set_status(services, post["_id"], start)
    resp = await act(client, moderator, post["_id"], action)
    allowed = TRANSITIONS[action].get(start)
    if action == "approve" and start == "published":
        allowed = None  # nothing queued to approve
    doc = await services.db.posts.find_one({"_id": post["_id"]})
    entries = await services.db.audit.count_documents({"target_id": str(post["_id"])})
    if allowed is None:
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "invalid_transition", resp.text
        assert doc["status"] == start and entries == 0
    else:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["id"] == str(post["_id"]) and body["status"] == allowed == doc["status"]
        assert body["author"]["id"] == author.id
        assert entries == 1


def test_follow_up_tasks():
    assert follow_up_tasks("published", "hidden") == [tasknames.FANOUT_RETRACT]
    assert follow_up_tasks("hidden", "removed") == [tasknames.FANOUT_RETRACT]
    assert follow_up_tasks("pending_review", "published") == [tasknames.FANOUT_POST]
    assert follow_up_tasks("removed", "published") == [tasknames.FANOUT_RESTORE]
    assert follow_up_tasks("published", "published") == []


async def test_approve_pending_marks_fanout_pending(client, services, moderator):
    author = await register(client)
    post = await make_post(services, author)
    await services.db.posts.update_one({"_id": post["_id"]}, {"$set": {"status": "pending_review", "fanout": "done"}})
    resp = await act(client, moderator, post["_id"], "approve", "fine")
    assert resp.status_code == 200 and resp.json()["status"] == "published"
    doc = await services.db.posts.find_one({"_id": post["_id"]})
    assert doc["fanout"] == "pending" and doc["moderation"]["action"] == "approve"


@pytest.mark.parametrize("body", [
    {"action": "delete", "reason": "x"}, {"action": "hide"}, {"action": "hide", "reason": ""},
    {"action": "hide", "reason": "   "}, {"action": "hide", "reason": "x" * 501}, {"reason": "x"},
    {"action": "hide", "reason": "x", "extra": True}, {"action": ["hide"], "reason": "x"},
])
async def test_bad_action_bodies(client, services, moderator, body):
    author = await register(client)
    post = await make_post(services, author)
    resp = await client.post(f"/v1/moderation/posts/{post['_id']}", headers=moderator.headers, json=body)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid"
    assert (await services.db.posts.find_one({"_id": post["_id"]}))["status"] == "published"


async def test_actions_on_missing_posts(client, services, moderator):
    for bad in ["nope", str(ObjectId())]:
        resp = await act(client, moderator, bad, "hide")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    author = await register(client)
    post = await make_post(services, author)
    await set_status(services, post["_id"], "deleted")
    assert (await act(client, moderator, post["_id"], "restore")).status_code == 404


async def test_queue_oldest_first_paged_and_decisions_leave_it(client, services, moderator):
    author = await register(client)
    reporters = [await register(client) for _ in range(2)]
    pending = await make_post(services, author)
    await set_status(services, pending["_id"], "pending_review")
    reported = await make_post(services, author)
    second = await make_post(services, author)
    for r in reporters:
        await client.post(f"/v1/posts/{reported['_id']}/reports", headers=r.headers, json={"reason": "spam"})
    await client.post(f"/v1/posts/{second['_id']}/reports", headers=reporters[0].headers, json={"reason": "other"})
    mine = {str(pending["_id"]), str(reported["_id"]), str(second["_id"])}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/moderation/queue?limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=moderator.headers)
        assert resp.status_code == 200
        page = resp.json()
        assert len(page["items"]) <= 2
        seen += [i["post"]["id"] for i in page["items"] if "post" in i]  # offers held for review share the queue
        pages += 1
        cursor = page["next_cursor"]
        if not cursor or pages > 500:
            break
    assert len(seen) == len(set(seen))
    order = [s for s in seen if s in mine]
    assert order == [str(pending["_id"]), str(reported["_id"]), str(second["_id"])]
    item = await find_in_queue(client, moderator, str(reported["_id"]))
    assert [r["reporter_id"] for r in item["reports"]] == [r.id for r in reporters]
    # a decision takes it out; a new report after the decision brings it back
    assert (await act(client, moderator, reported["_id"], "approve", "fine")).status_code == 200
    with pytest.raises(AssertionError):
        await find_in_queue(client, moderator, str(reported["_id"]))
    third = await register(client)
    await client.post(f"/v1/posts/{reported['_id']}/reports", headers=third.headers, json={"reason": "spam"})
    item = await find_in_queue(client, moderator, str(reported["_id"]))
    assert [r["reporter_id"] for r in item["reports"]] == [third.id] and item["report_count"] == 1


async def test_queue_bad_cursor_and_limit(client, moderator):
    for q in ["cursor=abc", "limit=0", "limit=101", "limit=x", "foo=1"]:
        resp = await client.get(f"/v1/moderation/queue?{q}", headers=moderator.headers)
        assert resp.status_code in (400, 422) and "error" in resp.json(), q


async def test_bulk(client, services, moderator):
    author = await register(client)
    posts = [await make_post(services, author) for _ in range(3)]
    await set_status(services, posts[2]["_id"], "removed")
    ids = [str(p["_id"]) for p in posts] + [str(ObjectId()), "bad"]
    resp = await client.post("/v1/moderation/posts/bulk", headers=moderator.headers,
                             json={"ids": ids, "action": "hide", "reason": "spam wave"})
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [i["id"] for i in items] == ids
    assert [i["ok"] for i in items] == [True, True, False, False, False]
    assert items[0]["post"]["status"] == "hidden"
    assert [i["error"]["code"] for i in items[2:]] == ["invalid_transition", "not_found", "not_found"]
    for p in posts[:2]:
        assert (await services.db.posts.find_one({"_id": p["_id"]}))["status"] == "hidden"
        assert await services.db.audit.count_documents({"target_id": str(p["_id"]), "reason": "spam wave"}) == 1


@pytest.mark.parametrize("body", [
    {"ids": [], "action": "hide", "reason": "x"},
    {"ids": [str(ObjectId()) for _ in range(101)], "action": "hide", "reason": "x"},
    {"ids": ["a", "a"], "action": "hide", "reason": "x"},
    {"ids": ["a"], "action": "nuke", "reason": "x"},
    {"ids": ["a"], "action": "hide", "reason": ""},
    {"ids": "a", "action": "hide", "reason": "x"},
])
async def test_bulk_bad_input(client, moderator, body):
    resp = await client.post("/v1/moderation/posts/bulk", headers=moderator.headers, json=body)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid"


async def test_audit_log_records_every_action_newest_first(client, services, moderator):
    author = await register(client)
    post = await make_post(services, author)
    pid = str(post["_id"])
    for action in ("hide", "remove", "restore"):
        assert (await act(client, moderator, pid, action, f"r-{action}")).status_code == 200
    resp = await client.get(f"/v1/moderation/audit?target_id={pid}&limit=2", headers=moderator.headers)
    first = resp.json()
    assert [a["action"] for a in first["items"]] == ["restore", "remove"]
    second = (await client.get(f"/v1/moderation/audit?target_id={pid}&limit=2&cursor={first['next_cursor']}",
                                headers=moderator.headers)).json()
    assert [a["action"] for a in second["items"]] == ["hide"] and second["next_cursor"] is None
    hide = second["items"][0]
    assert hide == {**hide, "moderator_id": moderator.id, "target_type": "post", "target_id": pid,
                    "reason": "r-hide", "before": {"status": "published"}, "after": {"status": "hidden"}}
    assert hide["created_at"].endswith("Z")
    # the newest entries overall come first
    top = (await client.get("/v1/moderation/audit?limit=1", headers=moderator.headers)).json()["items"][0]
    assert top["action"] == "restore" and top["target_id"] == pid


async def test_audit_has_no_write_routes(client, moderator):
    for method in ("post", "put", "delete", "patch"):
        resp = await client.request(method.upper(), "/v1/moderation/audit", headers=moderator.headers)
        assert resp.status_code == 405
