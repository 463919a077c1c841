"""OWASP API3:2023 Broken Object Property Level Authorization.

Mass assignment: every JSON body is a StrictBody (unknown fields refused with 422), so a client
cannot set a server-owned property — ``role``, ``status``, ``owner_id``, ``author_id``,
``like_count``, ``followers_count`` … — on any route. The test walks the OpenAPI document, so a new
route with a body is covered without editing this file, and checks that refused requests changed
nothing. Excessive data exposure: every answer in this package passes through the leak scanner
(see ``conftest.py``).
"""

from __future__ import annotations

from bson import ObjectId

from tests.security.conftest import LeakScanner, World, account, error_code, fill_path, openapi, operations
from tests.security.valid_bodies import valid_body

SERVER_OWNED = {
    "role": "moderator", "status": "published", "owner_id": "0" * 24, "author_id": "0" * 24, "user_id": "0" * 24,
    "like_count": 10**6, "comment_count": 10**6, "followers_count": 10**6, "following_count": 10**6,
    "checkins_count": 10**6, "claimed": 0, "mayor_id": "0" * 24, "password_hash": "x", "_id": "0" * 24,
    "id": "0" * 24, "created_at": "2000-01-01T00:00:00Z", "fanout": "done",
}


async def test_no_body_accepts_server_owned_fields(api, world: World, services):
    doc = await openapi(api)
    bodies = [(m, p, op) for m, p, op in operations(doc) if op.get("requestBody")]
    assert len(bodies) >= 14
    checked = 0
    for method, path, op in bodies:
        if "application/json" not in op["requestBody"]["content"]:
            continue  # an upload (multipart/form-data): a file, no fields to assign
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1]
        declared = set(doc["components"]["schemas"][name].get("properties", {}))
        base = valid_body(method, path, world)
        for field, value in SERVER_OWNED.items():
            if field in declared:
                continue  # the route takes it on purpose (e.g. register's user|merchant role)
            resp = await api.request(method, fill_path(path, world), json={**base, field: value},
                                     headers=_caller(path, world).headers)
            assert resp.status_code == 422 and error_code(resp) == "invalid", (method, path, field, resp.text)
            assert field in str(resp.json()["error"].get("details")), resp.text
            checked += 1
    assert checked > 100


def _caller(path: str, world: World):
    if path.startswith("/v1/moderation"):
        return world.moderator
    if path.startswith("/v1/stores"):
        return world.merchant
    return world.alice


async def test_register_cannot_choose_moderator_or_counts(api, services):
    for extra in ({"role": "moderator"}, {"role": "admin"}, {"status": "active", "role": "user"},
                  {"followers_count": 5}):
        name = f"m_{ObjectId()}"[:30]
        resp = await api.post("/v1/auth/register", json={"username": name, "password": "password123", **extra})
        assert resp.status_code == 422, (extra, resp.text)
        assert await services.db.users.find_one({"username_lower": name.lower()}) is None


async def test_refused_mass_assignment_changed_nothing(api, world: World, services, leak_scanner: LeakScanner):
    author = await account(services, leak_scanner)
    resp = await api.post("/v1/posts", json={"text": "sneaky", "author_id": world.bob.id, "like_count": 99},
                          headers=author.headers)
    assert resp.status_code == 422
    assert await services.db.posts.count_documents({"author_id": ObjectId(author.id)}) == 0
    assert await services.db.posts.count_documents({"text": "sneaky"}) == 0
    store_before = await services.db.stores.find_one({"_id": ObjectId(world.store["id"])})
    resp = await api.post("/v1/stores", headers=world.rival.headers, json={
        "name": "Takeover", "lat": 1, "lng": 1, "owner_id": world.merchant.id, "checkins_count": 5})
    assert resp.status_code == 422
    assert await services.db.stores.count_documents({"name": "Takeover", "lat": 1}) == 0
    assert await services.db.stores.find_one({"_id": ObjectId(world.store["id"])}) == store_before
    user_before = await services.db.users.find_one({"_id": ObjectId(author.id)})
    resp = await api.post(f"/v1/moderation/users/{author.id}", headers=world.moderator.headers,
                          json={"action": "unsuspend", "reason": "x", "role": "moderator"})
    assert resp.status_code == 422
    assert await services.db.users.find_one({"_id": ObjectId(author.id)}) == user_before


async def test_answers_show_only_public_properties(api, world: World):
    me = (await api.get("/v1/me", headers=world.alice.headers)).json()
    assert set(me) == {"id", "username", "display_name", "role", "bio", "avatar_url", "followers_count",
                       "following_count", "created_at", "offers_from_unfollowed"}
    other = (await api.get(f"/v1/users/{world.alice.id}", headers=world.bob.headers)).json()
    assert set(other) == set(me) - {"offers_from_unfollowed"}  # a setting only its owner sees
    post = (await api.get(f"/v1/posts/{world.post['id']}", headers=world.bob.headers)).json()
    assert not {"author_id", "flags", "fanout", "mention_ids", "topic_keys", "created_ms"} & set(post)
    assert set(post["author"]) == {"id", "username", "display_name"}


def test_the_leak_scanner_catches_leaks():
    """The scanner itself can fail: a hash, a raw document, a token where it does not belong."""
    scanner = LeakScanner(tokens={"tok-123"})
    scanner.scan("GET", "/v1/me", b'{"id": "1", "nested": [{"password_hash": "x"}]}')
    scanner.scan("GET", "/v1/users/1", b'{"_id": "1"}')
    scanner.scan("GET", "/v1/feed/home", b'{"items": ["tok-123"]}')
    from solomo.accounts import hash_token

    scanner.scan("GET", "/v1/feed/home", f'{{"h": "{hash_token("tok-123")}"}}'.encode())
    assert len(scanner.violations) == 4, scanner.violations
    scanner.scan("POST", "/v1/auth/login", b'{"user": {"id": "1"}, "token": "tok-456"}')
    assert len(scanner.violations) == 4 and "tok-456" in scanner.tokens
