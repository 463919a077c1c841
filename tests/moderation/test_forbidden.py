"""Every moderation route answers 403 to users and merchants (and 401 without a token)."""

from __future__ import annotations

import pytest
from bson import ObjectId

from tests.support import register

ROUTES = [
    ("GET", "/v1/moderation/queue", None),
    ("POST", "/v1/moderation/posts/{id}", {"action": "hide", "reason": "x"}),
    ("POST", "/v1/moderation/posts/bulk", {"ids": ["{id}"], "action": "hide", "reason": "x"}),
    ("POST", "/v1/moderation/users/{id}", {"action": "suspend", "reason": "x"}),
    ("GET", "/v1/moderation/comments", None),
    ("POST", "/v1/moderation/comments/{id}", {"action": "remove", "reason": "x"}),
    ("GET", "/v1/moderation/audit", None),
    ("GET", "/v1/moderation/words", None),
    ("PUT", "/v1/moderation/words", {"block": [], "review": []}),
]


@pytest.mark.parametrize("role", ["user", "merchant"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_non_moderators_are_forbidden(client, services, role, method, path, body):
    acct = await register(client, role=role)
    target = await register(client)
    path = path.replace("{id}", target.id)
    if body and "ids" in body:
        body = {**body, "ids": [str(ObjectId())]}
    before = await services.db.audit.count_documents({})
    words = await services.db.words.find_one({"_id": "lists"})
    resp = await client.request(method, path, headers=acct.headers, json=body)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", resp.text
    resp = await client.request(method, path, json=body)
    assert resp.status_code == 401
    assert await services.db.audit.count_documents({}) == before
    assert await services.db.words.find_one({"_id": "lists"}) == words
    assert (await client.get("/v1/me", headers=target.headers)).status_code == 200
