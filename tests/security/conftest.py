"""Fixtures for the OWASP API Security Top 10 checks.

``api`` is an HTTP client over the app (ASGI) that inspects *every* JSON answer it receives in
these tests for secrets (API3: excessive data exposure): password hashes, token hashes, raw MongoDB
documents, or a bearer token showing up anywhere but in the register/login answer that issued it.
A test that received such an answer fails at teardown, whatever it asserted itself.

``world`` is a small shared cast: two users, two merchants with a store each, an offer and a
voucher, posts and comments, and a moderator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from solomo.accounts import hash_token
from tests.offers.helpers import in_minutes
from tests.support import Account, make_account, random_point

FORBIDDEN_KEYS = frozenset({"password", "password_hash", "token_hash", "username_lower", "_id", "secret",
                            "secret_key"})
ISSUING_PATHS = ("/v1/auth/register", "/v1/auth/login")


@dataclass
class LeakScanner:
    tokens: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    scanned: int = 0

    def scan(self, method: str, path: str, body: bytes) -> None:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return
        import json

        try:
            data = json.loads(text)
        except ValueError:
            return
        self.scanned += 1
        where = f"{method} {path}"
        for key in _keys(data) if path != "/openapi.json" else ():  # schemas name a password field
            if key in FORBIDDEN_KEYS:
                self.violations.append(f"{where}: key {key!r} in the answer")
        issued = data.get("token") if isinstance(data, dict) and path in ISSUING_PATHS else None
        for token in self.tokens:
            if token in text and token != issued:
                self.violations.append(f"{where}: a bearer token in the answer")
            if hash_token(token) in text:
                self.violations.append(f"{where}: a token hash in the answer")
        if isinstance(issued, str):
            self.tokens.add(issued)


def _keys(value: Any) -> list[str]:
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            out.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


@pytest.fixture(scope="session")
def leak_scanner() -> LeakScanner:
    return LeakScanner()


@pytest.fixture(scope="session")
async def scanning_client(app, leak_scanner: LeakScanner) -> AsyncIterator[httpx2.AsyncClient]:
    async def inspect(response: httpx2.Response) -> None:
        body = await response.aread()
        leak_scanner.scan(response.request.method, response.request.url.path, body)

    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://solomo.test",
                                  event_hooks={"response": [inspect]}) as c:
        yield c


@pytest.fixture
async def api(scanning_client, leak_scanner: LeakScanner) -> AsyncIterator[httpx2.AsyncClient]:
    """The scanning client; the test fails if any answer it got during the test leaked a secret."""
    seen = len(leak_scanner.violations)
    yield scanning_client
    leaked = leak_scanner.violations[seen:]
    assert not leaked, leaked


async def account(services: Any, leak_scanner: LeakScanner, role: str = "user") -> Account:
    acct = await make_account(services, role)
    leak_scanner.tokens.add(acct.token)
    return acct


@dataclass
class World:
    alice: Account
    bob: Account
    merchant: Account
    rival: Account
    moderator: Account
    store: dict[str, Any]
    rival_store: dict[str, Any]
    offer: dict[str, Any]
    voucher: dict[str, Any]
    post: dict[str, Any]
    comment: dict[str, Any]
    bob_post: dict[str, Any]


@pytest.fixture(scope="module")
async def world(scanning_client, services, leak_scanner: LeakScanner) -> World:
    api = scanning_client
    alice, bob = await account(services, leak_scanner), await account(services, leak_scanner)
    merchant = await account(services, leak_scanner, "merchant")
    rival = await account(services, leak_scanner, "merchant")
    moderator = await account(services, leak_scanner, "moderator")
    lat, lng = random_point()
    stores = []
    for owner, name in ((merchant, "Tea House"), (rival, "Rival Tea")):
        resp = await api.post("/v1/stores", json={"name": name, "lat": lat, "lng": lng}, headers=owner.headers)
        assert resp.status_code == 201, resp.text
        stores.append(resp.json())
    resp = await api.post(f"/v1/stores/{stores[0]['id']}/offers", headers=merchant.headers,
                          json={"title": "Half-price tea", "radius_m": 500, "expires_at": in_minutes(60), "stock": 50})
    assert resp.status_code == 201, resp.text
    offer = resp.json()
    resp = await api.post(f"/v1/offers/{offer['id']}/claim", headers=alice.headers)
    assert resp.status_code == 201, resp.text
    voucher = resp.json()
    resp = await api.post("/v1/posts", json={"text": "alice says hi #security"}, headers=alice.headers)
    assert resp.status_code == 201, resp.text
    post = resp.json()
    resp = await api.post(f"/v1/posts/{post['id']}/comments", json={"text": "a comment by alice"},
                          headers=alice.headers)
    assert resp.status_code == 201, resp.text
    comment = resp.json()
    resp = await api.post("/v1/posts", json={"text": "bob's post"}, headers=bob.headers)
    assert resp.status_code == 201, resp.text
    return World(alice, bob, merchant, rival, moderator, stores[0], stores[1], offer, voucher, post, comment,
                 resp.json())


async def openapi(api: httpx2.AsyncClient) -> dict[str, Any]:
    resp = await api.get("/openapi.json")
    assert resp.status_code == 200
    return resp.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation) for every documented operation."""
    return [(method.upper(), path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def fill_path(path: str, world: World, overrides: dict[str, str] | None = None) -> str:
    """A path template with the world's real ids (so a request gets past "not found")."""
    ids = {"user_id": world.bob.id, "store_id": world.store["id"], "post_id": world.bob_post["id"],
           "comment_id": world.comment["id"], "offer_id": world.offer["id"], "topic": "security",
           **(overrides or {})}
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no id to fill in {path}: add one to tests/security/conftest.py"
    return path


def error_code(resp: httpx2.Response) -> str | None:
    try:
        return resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
