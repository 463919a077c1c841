"""Suspending and unsuspending accounts."""

from __future__ import annotations

import pytest
from bson import ObjectId

from tests.moderation.helpers import has_route, make_post
from tests.support import make_account, register


async def act(client, moderator, user_id, action, reason="abuse"):
    return await client.post(f"/v1/moderation/users/{user_id}", headers=moderator.headers,
                             json={"action": action, "reason": reason})


async def test_suspend_blocks_tokens_at_once_and_unsuspend_restores(client, services, moderator):
    user = await register(client)
    assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
    resp = await act(client, moderator, user.id, "suspend", "spamming")
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == user.id and set(resp.json()) >= {"username", "role", "created_at"}
    report_path = f"/v1/posts/{ObjectId()}/reports"
    for method, path, body in [("GET", "/v1/me", None), ("POST", report_path, {"reason": "spam"})]:
        resp = await client.request(method, path, headers=user.headers, json=body)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "account_suspended"
    login = await client.post("/v1/auth/login", json={"username": user.username, "password": "password123"})
    assert login.status_code == 401 and login.json()["error"]["code"] == "account_suspended"
    again = await act(client, moderator, user.id, "suspend")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    resp = await act(client, moderator, user.id, "unsuspend", "appeal accepted")
    assert resp.status_code == 200
    assert (await client.get("/v1/me", headers=user.headers)).status_code == 200
    again = await act(client, moderator, user.id, "unsuspend")
    assert again.status_code == 409
    audit = (await client.get(f"/v1/moderation/audit?target_type=user&target_id={user.id}",
                              headers=moderator.headers)).json()["items"]
    assert [(a["action"], a["reason"], a["after"]["status"]) for a in audit] == [
        ("unsuspend", "appeal accepted", "active"), ("suspend", "spamming", "suspended")]


WRITE_ROUTES = [
    ("/v1/posts", {"text": "hello"}),
    ("/v1/posts/{post}/comments", {"text": "hello"}),
    ("/v1/posts/{post}/like", None),
    ("/v1/checkins", {"store_id": "0" * 24, "lat": 1.0, "lng": 1.0}),
    ("/v1/offers/{offer}/claim", None),
]


@pytest.mark.parametrize(("template", "body"), WRITE_ROUTES)
async def test_suspended_user_cannot_write(app, client, services, moderator, template, body):
    user, other = await register(client), await register(client)
    post = await make_post(services, other)
    path = template.format(post=post["_id"], offer=ObjectId())
    assert has_route(app, path, "POST"), f"{template} is not served"
    await act(client, moderator, user.id, "suspend")
    before = await services.db.posts.count_documents({"author_id": ObjectId(user.id)})
    resp = await client.post(path, headers=user.headers, json=body)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "account_suspended"
    assert await services.db.posts.count_documents({"author_id": ObjectId(user.id)}) == before


async def test_moderators_cannot_be_suspended(client, services, moderator):
    other = await make_account(services, "moderator")
    resp = await act(client, moderator, other.id, "suspend")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    resp = await act(client, moderator, moderator.id, "suspend")
    assert resp.status_code == 403
    assert (await client.get("/v1/me", headers=other.headers)).status_code == 200
    assert await services.db.audit.count_documents({"target_id": {"$in": [other.id, moderator.id]}}) == 0


async def test_merchants_can_be_suspended(client, moderator):
    merchant = await register(client, role="merchant")
    assert (await act(client, moderator, merchant.id, "suspend")).status_code == 200
    assert (await client.get("/v1/me", headers=merchant.headers)).status_code == 401


@pytest.mark.parametrize("body", [
    {"action": "ban", "reason": "x"}, {"action": "suspend"}, {"action": "suspend", "reason": " "}, {},
])
async def test_bad_user_actions(client, moderator, body):
    user = await register(client)
    resp = await client.post(f"/v1/moderation/users/{user.id}", headers=moderator.headers, json=body)
    assert resp.status_code == 422
    assert (await client.get("/v1/me", headers=user.headers)).status_code == 200


async def test_missing_users(client, services, moderator):
    for bad in ["nope", str(ObjectId())]:
        resp = await act(client, moderator, bad, "suspend")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    gone = await register(client)
    await services.accounts.delete_user(ObjectId(gone.id))
    assert (await act(client, moderator, gone.id, "suspend")).status_code == 404
