"""Accounts: register, login, tokens, roles, and the bad input around them."""

from __future__ import annotations

import uuid

import pytest

from tests.support import make_account, register, unique_name


async def test_register_login_me(client):
    name = unique_name()
    resp = await client.post("/v1/auth/register", json={"username": name, "password": "password123",
                                                         "display_name": "Li Lei"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["user"]["username"] == name and body["user"]["role"] == "user"
    assert body["user"]["display_name"] == "Li Lei"
    assert set(body["user"]) == {"id", "username", "display_name", "role", "bio", "avatar_url", "followers_count",
                                 "following_count", "created_at"}
    assert body["user"]["created_at"].endswith("Z")
    login = await client.post("/v1/auth/login", json={"username": name.upper(), "password": "password123"})
    assert login.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]
    other = await client.get(f"/v1/users/{body['user']['id']}", headers={"Authorization": f"Bearer {body['token']}"})
    assert other.json()["username"] == name


async def test_username_unique_case_insensitively(client):
    name = unique_name()
    await register(client, username=name)
    resp = await client.post("/v1/auth/register", json={"username": name.upper(), "password": "password123"})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "username_taken"


async def test_wrong_password(client):
    acct = await register(client)
    resp = await client.post("/v1/auth/login", json={"username": acct.username, "password": "nope-nope-nope"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_credentials"
    resp = await client.post("/v1/auth/login", json={"username": "ghost_" + acct.username, "password": "x" * 9})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize("body", [
    {"username": "ab", "password": "password123"},
    {"username": "has space", "password": "password123"},
    {"username": "x" * 33, "password": "password123"},
    {"username": "okname1", "password": "short"},
    {"username": "okname2", "password": "password123", "role": "moderator"},
    {"username": "okname3", "password": "password123", "is_admin": True},
    {"username": {"$gt": ""}, "password": "password123"},
    {"username": "okname4", "password": 12345678},
    {"username": "okname5", "password": "password123", "display_name": "名" * 33},  # PATCH /v1/me's bound
])
async def test_register_rejects_bad_input(client, services, body):
    users_before = await services.db.users.count_documents({})
    resp = await client.post("/v1/auth/register", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"
    # refused before MongoDB: no account document was written, under that name or any other
    assert await services.db.users.count_documents({}) == users_before
    if isinstance(body.get("username"), str):
        assert await services.db.users.count_documents({"username": body["username"]}) == 0


async def test_a_display_name_at_the_bound_is_taken_and_can_be_sent_back(client):
    name = "名" * 32
    resp = await client.post("/v1/auth/register", json={"username": f"u{uuid.uuid4().hex[:12]}",
                                                        "password": "password123", "display_name": name})
    assert resp.status_code == 201, resp.text
    headers = {"Authorization": f"Bearer {resp.json()['token']}"}
    again = await client.patch("/v1/me", json={"display_name": resp.json()["user"]["display_name"]}, headers=headers)
    assert again.status_code == 200 and again.json()["display_name"] == name


async def test_operator_in_login_never_reaches_mongo(client):
    resp = await client.post("/v1/auth/login", json={"username": {"$ne": None}, "password": {"$ne": None}})
    assert resp.status_code == 422


async def test_body_errors(client):
    resp = await client.post("/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"
    resp = await client.post("/v1/auth/register", content=b"username=a", headers={"content-type": "text/plain"})
    assert resp.status_code == 415
    resp = await client.post("/v1/auth/register", content=b"", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    big = b'{"username": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    resp = await client.post("/v1/auth/register", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    resp = await client.post("/v1/auth/register", content=b"[1,2]", headers={"content-type": "application/json"})
    assert resp.status_code == 422


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer " + "x" * 1000])
async def test_bad_tokens(client, header):
    headers = {"Authorization": header} if header else {}
    resp = await client.get("/v1/me", headers=headers)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"


async def test_revoked_and_deleted_accounts(client, services):
    acct = await register(client)
    resp = await client.post("/v1/auth/logout", headers=acct.headers)
    assert resp.status_code == 204
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 401
    other = await register(client)
    from bson import ObjectId

    await services.accounts.delete_user(ObjectId(other.id))
    assert (await client.get("/v1/me", headers=other.headers)).status_code == 401


async def test_malformed_ids_are_404(client):
    acct = await register(client)
    for bad in ["nope", "0" * 23, "z" * 24, "%24where"]:
        resp = await client.get(f"/v1/users/{bad}", headers=acct.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


async def test_moderators_only_from_cli_helper(services, client):
    mod = await make_account(services, "moderator")
    me = await client.get("/v1/me", headers=mod.headers)
    assert me.json()["role"] == "moderator"


async def test_unknown_route_and_method(client):
    resp = await client.get("/v1/nope")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = await client.delete("/v1/auth/login")
    assert resp.status_code == 405
