"""Reports: one per user and post, reasons, visibility, and the automatic hide at the threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from tests.moderation.helpers import establish, make_post
from tests.support import register


async def test_report_once_per_user(client, services):
    author, reader = await register(client), await register(client)
    post = await make_post(services, author)
    url = f"/v1/posts/{post['_id']}/reports"
    resp = await client.post(url, headers=reader.headers, json={"reason": "spam", "note": "ads"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["post_id"] == str(post["_id"]) and body["reason"] == "spam" and body["note"] == "ads"
    assert body["reporter_id"] == reader.id and body["created_at"].endswith("Z")
    again = await client.post(url, headers=reader.headers, json={"reason": "abuse"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reported"
    assert await services.db.reports.count_documents({"post_id": post["_id"]}) == 1
    doc = await services.db.posts.find_one({"_id": post["_id"]})
    assert doc["report_count"] == 1 and doc["status"] == "published" and "queued_ms" in doc


@pytest.mark.parametrize("body", [
    {"reason": "boring"}, {}, {"reason": "spam", "note": "x" * 501}, {"reason": "spam", "extra": 1},
    {"reason": ["spam"]}, {"reason": None},
])
async def test_report_bad_input(client, services, body):
    author, reader = await register(client), await register(client)
    post = await make_post(services, author)
    resp = await client.post(f"/v1/posts/{post['_id']}/reports", headers=reader.headers, json=body)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid"
    assert await services.db.reports.count_documents({"post_id": post["_id"]}) == 0


async def test_report_missing_own_and_invisible_posts(client, services):
    author, reader = await register(client), await register(client)
    for bad in ["nope", str(ObjectId())]:
        resp = await client.post(f"/v1/posts/{bad}/reports", headers=reader.headers, json={"reason": "spam"})
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    post = await make_post(services, author)
    resp = await client.post(f"/v1/posts/{post['_id']}/reports", headers=author.headers, json={"reason": "spam"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "cannot_report_own_post"
    for status in ("hidden", "removed", "pending_review", "deleted"):
        await services.db.posts.update_one({"_id": post["_id"]}, {"$set": {"status": status}})
        resp = await client.post(f"/v1/posts/{post['_id']}/reports", headers=reader.headers, json={"reason": "spam"})
        assert resp.status_code == 404, status
    resp = await client.post(f"/v1/posts/{post['_id']}/reports", json={"reason": "spam"})
    assert resp.status_code == 401


async def test_threshold_hides_post_and_enqueues_retract(client, services, settings, moderator):
    author = await register(client)
    post = await make_post(services, author)
    pid = post["_id"]
    threshold = settings.report_threshold
    reporters = [await establish(services, await register(client)) for _ in range(threshold + 1)]
    for i, r in enumerate(reporters[:threshold]):
        resp = await client.post(f"/v1/posts/{pid}/reports", headers=r.headers, json={"reason": "abuse"})
        assert resp.status_code == 201
        doc = await services.db.posts.find_one({"_id": pid})
        assert doc["status"] == ("hidden" if i == threshold - 1 else "published")
    doc = await services.db.posts.find_one({"_id": pid})
    flag = doc["flags"][-1]
    assert flag["source"] == "reports" and flag["count"] == threshold and flag["reasons"] == {"abuse": threshold}
    # others can no longer see (so no longer report) it
    late = await client.post(f"/v1/posts/{pid}/reports", headers=reporters[-1].headers, json={"reason": "spam"})
    assert late.status_code == 404
    audit = (await client.get(f"/v1/moderation/audit?target_id={pid}", headers=moderator.headers)).json()["items"]
    assert [(a["action"], a["moderator_id"], a["before"], a["after"]) for a in audit] == [
        ("auto_hide", None, {"status": "published"}, {"status": "hidden"})]
    # it waits in the queue with its reports and flag
    item = await find_in_queue(client, moderator, str(pid))
    assert item["post"]["status"] == "hidden" and len(item["reports"]) == threshold
    assert item["report_count"] == threshold and item["flags"][-1]["source"] == "reports"


async def test_concurrent_reports_hide_exactly_once(client, services, settings, moderator):
    import asyncio

    author = await register(client)
    post = await make_post(services, author)
    reporters = [await establish(services, await register(client)) for _ in range(settings.report_threshold + 2)]
    resps = await asyncio.gather(*[
        client.post(f"/v1/posts/{post['_id']}/reports", headers=r.headers, json={"reason": "spam"})
        for r in reporters])
    codes = sorted(r.status_code for r in resps)
    assert codes.count(201) >= settings.report_threshold and set(codes) <= {201, 404}
    doc = await services.db.posts.find_one({"_id": post["_id"]})
    assert doc["status"] == "hidden" and doc["report_count"] == codes.count(201)
    assert await services.db.reports.count_documents({"post_id": post["_id"]}) == codes.count(201)
    assert await services.db.audit.count_documents({"target_id": str(post["_id"]), "action": "auto_hide"}) == 1


async def test_fresh_or_idle_accounts_queue_but_do_not_hide(client, services, settings, moderator):
    """Throwaway accounts (new, or old but never active) put a post in the queue but cannot hide it."""
    author = await register(client)
    post = await make_post(services, author)
    pid = post["_id"]
    fresh = [await register(client) for _ in range(settings.report_threshold)]
    idle = await register(client)  # old enough, but no post or check-in
    age = timedelta(hours=settings.report_min_account_age_h + 1)
    await services.db.users.update_one({"_id": ObjectId(idle.id)}, {"$set": {"created_at": datetime.now(UTC) - age}})
    for r in [*fresh, idle]:
        resp = await client.post(f"/v1/posts/{pid}/reports", headers=r.headers, json={"reason": "spam"})
        assert resp.status_code == 201, resp.text
    doc = await services.db.posts.find_one({"_id": pid})
    assert doc["status"] == "published" and doc["open_reports"] == len(fresh) + 1 and not doc.get("hide_votes")
    item = await find_in_queue(client, moderator, str(pid))
    assert item["post"]["status"] == "published" and len(item["reports"]) == len(fresh) + 1
    # established reporters do hide it, at the threshold of their own reports
    established = [await establish(services, await register(client)) for _ in range(settings.report_threshold)]
    for i, r in enumerate(established):
        resp = await client.post(f"/v1/posts/{pid}/reports", headers=r.headers, json={"reason": "abuse"})
        assert resp.status_code == 201, resp.text
        doc = await services.db.posts.find_one({"_id": pid})
        assert doc["status"] == ("hidden" if i == settings.report_threshold - 1 else "published"), i
    assert doc["flags"][-1]["weighing"] == settings.report_threshold


async def test_a_decision_resets_the_weighing_reports(client, services, settings, moderator):
    author = await register(client)
    post = await make_post(services, author)
    reporters = [await establish(services, await register(client)) for _ in range(settings.report_threshold)]
    for r in reporters[:-1]:
        await client.post(f"/v1/posts/{post['_id']}/reports", headers=r.headers, json={"reason": "spam"})
    resp = await client.post(f"/v1/moderation/posts/{post['_id']}", headers=moderator.headers,
                             json={"action": "approve", "reason": "fine"})
    assert resp.status_code == 200, resp.text
    await client.post(f"/v1/posts/{post['_id']}/reports", headers=reporters[-1].headers, json={"reason": "spam"})
    doc = await services.db.posts.find_one({"_id": post["_id"]})
    assert doc["status"] == "published" and doc["hide_votes"] == 1


async def find_in_queue(client, moderator, post_id: str) -> dict:
    cursor = None
    for _ in range(200):
        url = "/v1/moderation/queue?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=moderator.headers)).json()
        for item in page["items"]:
            if "post" in item and item["post"]["id"] == post_id:  # offers held for review share the queue
                return item
        cursor = page["next_cursor"]
        if not cursor:
            break
    raise AssertionError(f"{post_id} not in the queue")
