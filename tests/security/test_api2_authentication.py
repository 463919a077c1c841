"""OWASP API2:2023 Broken Authentication.

Every ``/v1`` route but register and login needs a live bearer token, checked on each request:
missing, malformed, unknown, revoked (logout), expired or deleted-account tokens are 401, a
suspended account's token is 401 ``account_suspended`` at once. A token is accepted only in the
``Authorization`` header on HTTP routes; the WebSocket takes it only from the query string (browsers
cannot set headers there) and refuses or closes with 4401/4403. Login does not tell an unknown
username from a wrong password, and tokens are long random strings stored only as hashes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from websockets.exceptions import InvalidStatus

from solomo.accounts import hash_token
from tests.realtime.wsclient import close_code, open_ws, ws_url
from tests.security.conftest import account, error_code, openapi, operations
from tests.support import register

BAD_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNzd29yZDEyMw=="},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Bearer " + "A" * 300},
    {"Authorization": "Bearer {\"$ne\": null}"},
    {"Authorization": "Token abc"},
]


async def _me(api, token: str):
    return await api.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_every_protected_route_refuses_bad_tokens(api):
    """Walks the OpenAPI document: every operation that declares bearerAuth is 401 without a good token."""
    doc = await openapi(api)
    protected = [(m, p) for m, p, op in operations(doc) if op.get("security")]
    assert len(protected) >= 40
    fake_id = "0" * 24
    for method, path in protected:
        url = path
        for name in ("user_id", "store_id", "post_id", "comment_id", "offer_id"):
            url = url.replace("{" + name + "}", fake_id)
        url = url.replace("{topic}", "x")
        for headers in BAD_HEADERS:
            resp = await api.request(method, url, headers=headers, json={} if method in ("POST", "PUT") else None)
            assert resp.status_code == 401 and error_code(resp) == "unauthorized", (method, url, headers, resp.text)


async def test_public_routes_are_only_register_and_login(api):
    doc = await openapi(api)
    public = sorted((m, p) for m, p, op in operations(doc) if p.startswith("/v1/") and not op.get("security"))
    assert public == [("POST", "/v1/auth/login"), ("POST", "/v1/auth/register")]


async def test_token_only_in_the_header_on_http_routes(api, services, leak_scanner):
    acct = await account(services, leak_scanner)
    for query in (f"token={acct.token}", f"access_token={acct.token}"):
        resp = await api.get(f"/v1/me?{query}")
        assert resp.status_code == 401, resp.text
    resp = await api.get("/v1/me", headers={"Cookie": f"token={acct.token}"})
    assert resp.status_code == 401
    assert (await _me(api, acct.token)).status_code == 200


async def test_revoked_token_stops_working_at_once(api, services, leak_scanner):
    acct = await account(services, leak_scanner)
    other = await services.accounts.issue_token(ObjectId(acct.id))
    leak_scanner.tokens.add(other)
    assert (await api.post("/v1/auth/logout", headers=acct.headers)).status_code == 204
    resp = await _me(api, acct.token)
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"
    assert (await api.post("/v1/auth/logout", headers=acct.headers)).status_code == 401
    assert (await _me(api, other)).status_code == 200  # the account's other session is untouched


async def test_expired_token_is_refused(api, services, leak_scanner):
    acct = await account(services, leak_scanner)
    await services.db.tokens.update_one({"_id": hash_token(acct.token)},
                                        {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    resp = await _me(api, acct.token)
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


async def test_deleted_account_token_is_refused(api, services, leak_scanner):
    acct = await account(services, leak_scanner)
    await services.db.users.update_one({"_id": ObjectId(acct.id)}, {"$set": {"status": "deleted"}})
    assert (await _me(api, acct.token)).status_code == 401
    resp = await api.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    assert resp.status_code == 401 and error_code(resp) == "invalid_credentials"


async def test_suspended_account_is_locked_out_at_once(api, services, leak_scanner):
    acct = await account(services, leak_scanner)
    mod = await account(services, leak_scanner, "moderator")
    resp = await api.post(f"/v1/moderation/users/{acct.id}", json={"action": "suspend", "reason": "test"},
                          headers=mod.headers)
    assert resp.status_code == 200, resp.text
    resp = await _me(api, acct.token)
    assert resp.status_code == 401 and error_code(resp) == "account_suspended"
    resp = await api.post("/v1/posts", json={"text": "still here?"}, headers=acct.headers)
    assert resp.status_code == 401
    resp = await api.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    assert resp.status_code == 401 and error_code(resp) == "account_suspended"


async def test_login_does_not_reveal_which_usernames_exist(api, services, leak_scanner):
    acct = await account(services, leak_scanner)
    wrong = await api.post("/v1/auth/login", json={"username": acct.username, "password": "wrong-password"})
    unknown = await api.post("/v1/auth/login", json={"username": acct.username + "x", "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_tokens_are_random_and_stored_hashed(api, services):
    acct = await register(api)
    again = await api.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    token2 = again.json()["token"]
    assert token2 != acct.token and len(acct.token) >= 40 and len(token2) >= 40
    assert await services.db.tokens.find_one({"_id": acct.token}) is None
    assert await services.db.tokens.find_one({"_id": hash_token(acct.token)}) is not None
    user = await services.db.users.find_one({"username": acct.username})
    assert user["password_hash"].startswith("$argon2id$") and "password123" not in user["password_hash"]



async def test_failed_logins_elsewhere_do_not_lock_the_owner_out(app, services, leak_scanner):
    """20 wrong passwords for one username from address A: A is limited, the owner at B signs in."""
    from tests.moderation.test_ratelimit import client_at, random_ip

    acct = await account(services, leak_scanner)
    attacker, owner = random_ip(), random_ip()
    async with client_at(app, attacker) as c:
        codes = [(await c.post("/v1/auth/login", json={"username": acct.username, "password": "wrong-password"}))
                 .status_code for _ in range(20)]
        assert set(codes) == {401, 429} and codes[0] == 401 and codes[-1] == 429
        resp = await c.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
        assert resp.status_code == 429 and error_code(resp) == "rate_limited" and "Retry-After" in resp.headers
    async with client_at(app, owner) as c:
        resp = await c.post("/v1/auth/login", json={"username": acct.username.upper(), "password": "password123"})
        assert resp.status_code == 200, resp.text
        leak_scanner.tokens.add(resp.json()["token"])


async def test_one_address_guessing_many_usernames_is_limited(app, services, monkeypatch):
    from tests.moderation.test_ratelimit import client_at, random_ip

    monkeypatch.setitem(services.settings.rate_limits, "login_failed_ip", "5/minute")
    async with client_at(app, random_ip()) as c:
        codes = [(await c.post("/v1/auth/login", json={"username": f"nobody{i}", "password": "wrong-password"}))
                 .status_code for i in range(7)]
    assert codes == [401] * 5 + [429] * 2


# --- the socket --------------------------------------------------------------------------------


async def _refused(live_server: str, token: str | None, headers: dict[str, str] | None = None) -> int | None:
    """The close code of a socket the server refuses (None when the handshake itself is refused)."""
    from websockets.asyncio.client import connect

    try:
        ws = await connect(ws_url(live_server, token), additional_headers=headers, proxy=None, open_timeout=10)
    except InvalidStatus as exc:
        assert exc.response.status_code in (401, 403), exc
        return None
    code, frames = await close_code(ws)
    assert frames == [], "an event was sent before the socket was refused"
    assert code is not None, "the socket was dropped without a close frame, not refused"
    return code


@pytest.mark.parametrize("token", [None, "", "garbage", "A" * 300])
async def test_socket_refuses_missing_or_bad_token(live_server, token):
    assert await _refused(live_server, token) in (None, 4401)


async def test_socket_takes_the_token_from_the_query_only(live_server, services, leak_scanner):
    acct = await account(services, leak_scanner)
    assert await _refused(live_server, None, {"Authorization": f"Bearer {acct.token}"}) in (None, 4401)
    ws = await open_ws(live_server, acct.token)
    await ws.close()


async def test_socket_refuses_revoked_and_suspended(live_server, api, services, leak_scanner):
    revoked = await account(services, leak_scanner)
    await services.accounts.revoke_token(revoked.token)
    assert await _refused(live_server, revoked.token) in (None, 4401)
    suspended = await account(services, leak_scanner)
    mod = await account(services, leak_scanner, "moderator")
    resp = await api.post(f"/v1/moderation/users/{suspended.id}", json={"action": "suspend", "reason": "test"},
                          headers=mod.headers)
    assert resp.status_code == 200
    assert await _refused(live_server, suspended.token) in (None, 4403)
