"""OWASP API8:2023 Security Misconfiguration — here chiefly NoSQL operator injection, plus error hygiene.

The test walks the OpenAPI document. For every operation with a body, each string property (and
each list of strings) gets MongoDB operator objects (``{"$gt": ""}``, ``{"$ne": null}``,
``{"$where": "1"}``) and operator-looking strings (``"$gt"``, ``"a' || '1'=='1"`` …); every query
parameter and path id gets the strings. No answer may be a 5xx, operator objects must be refused
as invalid (422: bodies are strictly typed), and no injected value may widen what comes back:
login never succeeds, a redemption never redeems, filters and lookups find nothing.

Misconfiguration: unknown routes and methods answer the contract's JSON error body, never a
stack trace or a framework page, and no answer invites cross-origin use with credentials.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.security.conftest import World, account, error_code, fill_path, openapi, operations
from tests.security.valid_bodies import valid_body

OPERATOR_OBJECTS: list[Any] = [{"$gt": ""}, {"$ne": None}, {"$where": "1"}, {"$regex": ".*"}, {"$exists": True}]
HOSTILE_STRINGS = ["$gt", "$ne", "a' || '1'=='1", '{"$ne": null}', "'; return true; var x='", "$where",
                   "this.password_hash != ''", ".*", "\u0000$gt"]


def _string_fields(schema: dict[str, Any], components: dict[str, Any]) -> list[tuple[str, bool]]:
    """(property, is a list of strings) for every property that takes strings."""
    out = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        for option in options:
            if "$ref" in option:
                option = components[option["$ref"].rsplit("/", 1)[-1]]
            if option.get("type") == "string" or ("enum" in option and all(isinstance(v, str) for v in option["enum"])):
                out.append((name, False))
                break
            if option.get("type") == "array" and option.get("items", {}).get("type") == "string":
                out.append((name, True))
                break
    return out


def _caller(path: str, world: World):
    if path.startswith("/v1/moderation"):
        return world.moderator
    if path.startswith("/v1/stores"):
        return world.merchant
    return world.alice


def _assert_no_leak(method: str, path: str, resp, world: World) -> None:
    assert resp.status_code < 500, (method, path, resp.text)
    if path == "/v1/auth/login":
        assert resp.status_code != 200, ("login succeeded with an injected value", resp.text)
    if path.endswith("/redemptions"):
        assert resp.status_code != 200, ("a redemption succeeded with an injected code", resp.text)
    if path.endswith("/points/charge"):
        assert resp.status_code != 200, ("a charge succeeded with an injected code", resp.text)


NUMBERS_ONLY = {("PUT", "/v1/stores/{store_id}/loyalty")}
"""Bodies without a string field to inject into."""


async def test_operator_injection_in_every_body_string(api, world: World, services, monkeypatch):
    for action in ("post", "comment", "report", "checkin", "login", "login_ip", "register", "offer", "points_charge",
                   "store_edit", "profile_edit"):
        monkeypatch.setitem(services.settings.rate_limits, action, "")  # this test sends hundreds
    doc = await openapi(api)
    components = doc["components"]["schemas"]
    words_before = (await api.get("/v1/moderation/words", headers=world.moderator.headers)).json()
    sent = 0
    try:
        for method, path, op in operations(doc):
            if "application/json" not in op.get("requestBody", {}).get("content", {}):
                continue  # no body, or an upload (multipart/form-data: a file, no strings to inject into)
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            fields = _string_fields(components[ref], components)
            if (method, path) in NUMBERS_ONLY:
                assert not fields, (method, path)
                continue  # booleans and integers only (strict: an operator object is a 422 like any object)
            assert fields, (method, path)
            url = fill_path(path, world)
            for name, is_list in fields:
                for payload in OPERATOR_OBJECTS:
                    body = {**valid_body(method, path, world), name: [payload] if is_list else payload}
                    resp = await api.request(method, url, json=body, headers=_caller(path, world).headers)
                    _assert_no_leak(method, path, resp, world)
                    assert resp.status_code == 422 and error_code(resp) == "invalid", (method, path, name, resp.text)
                    sent += 1
                for payload in HOSTILE_STRINGS:
                    body = {**valid_body(method, path, world), name: [payload] if is_list else payload}
                    if path == "/v1/moderation/words":
                        body = {"block": [], "review": [], "reason": "x", **{name: [payload] if is_list else payload}}
                    resp = await api.request(method, url, json=body, headers=_caller(path, world).headers)
                    _assert_no_leak(method, path, resp, world)
                    sent += 1
                # an operator as an extra top-level key is an unknown field
                body = {**valid_body(method, path, world), "$where": "1"}
                resp = await api.request(method, url, json=body, headers=_caller(path, world).headers)
                assert resp.status_code == 422, (method, path, resp.text)
    finally:
        resp = await api.put("/v1/moderation/words", headers=world.moderator.headers,
                             json={**words_before, "reason": "restore after the injection test"})
        assert resp.status_code == 200, resp.text
    assert sent > 150


async def test_login_injection_never_logs_in(api, world: World):
    for username in [{"$ne": None}, {"$gt": ""}, {"$regex": ".*"}, "$ne", ".*", "a' || '1'=='1",
                     world.alice.username + "' || '1'=='1"]:
        for password in [{"$ne": None}, {"$gt": ""}, "a' || '1'=='1", "$ne", ".*"]:
            resp = await api.post("/v1/auth/login", json={"username": username, "password": password})
            assert resp.status_code in (401, 422, 429), (username, password, resp.text)
            assert "token" not in resp.json()


async def test_redemption_injection_redeems_nothing(api, world: World, services):
    for code in ["$gt", ".*", "a' || '1'=='1", '{"$ne": null}', world.voucher["code"][:3] + ".*"]:
        resp = await api.post(f"/v1/stores/{world.store['id']}/redemptions", json={"code": code},
                              headers=world.merchant.headers)
        assert resp.status_code in (404, 422, 429), (code, resp.text)
    mine = (await api.get("/v1/me/vouchers", headers=world.alice.headers)).json()["items"]
    assert all(v["status"] == "claimed" for v in mine)


async def test_injection_in_every_query_parameter_and_path_id(api, world: World, services, leak_scanner,
                                                            monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "audience_preview", "")  # the one limited read: asked often here
    doc = await openapi(api)
    fresh = {"user": await account(services, leak_scanner),  # no posts, vouchers, check-ins, followers …
             "merchant": await account(services, leak_scanner, "merchant"), "moderator": world.moderator}
    checked = 0
    for method, path, op in operations(doc):
        if method != "GET" or not path.startswith("/v1/"):
            continue
        caller = fresh[(op.get("x-roles") or ["user"])[0]]
        params = [p for p in op.get("parameters", []) if p["in"] == "query"]
        base = {p["name"]: _valid_query(p["name"], world) for p in params if p.get("required")}
        url = fill_path(path, world, {"user_id": fresh["user"].id})
        for param in params:
            for payload in HOSTILE_STRINGS + [json.dumps(o) for o in OPERATOR_OBJECTS]:
                resp = await api.get(url, params={**base, param["name"]: payload}, headers=caller.headers)
                assert resp.status_code < 500, (path, param["name"], payload, resp.text)
                # search's q is text to look for: a store named "$gt" is rightly found by q=$gt (that its
                # answers are real matches, never an operator's, is tests/search/test_search_api.py's)
                searched = path.startswith("/v1/search/") and param["name"] == "q"
                if resp.status_code == 200 and param["name"] not in ("limit",) and not searched:
                    assert resp.json().get("items", []) == [], (path, param["name"], payload, resp.text)
                checked += 1
            # PHP/Express-style operator syntax in the parameter name is an unknown parameter
            resp = await api.get(url + f"?{quote(param['name'])}[$ne]=x", headers=caller.headers)
            assert resp.status_code in (400, 422), (path, resp.text)
        for name in ("user_id", "store_id", "post_id", "comment_id", "offer_id"):
            if "{" + name + "}" not in path:
                continue
            for payload in [*HOSTILE_STRINGS[:6], '{"$ne":null}']:
                resp = await api.get(fill_path(path, world, {name: quote(payload, safe="")}),
                                     params=base, headers=caller.headers)
                assert resp.status_code == 404, (path, payload, resp.text)
                checked += 1
    assert checked > 100


def _valid_query(name: str, world: World) -> Any:
    return {"lat": world.store["lat"], "lng": world.store["lng"],
            "from": "2026-01-01", "to": "2026-01-31"}.get(name, "1")  # the points ledger's dates


async def test_topic_injection_finds_nothing(api, world: World):
    for topic in ["$gt", ".*", "a' || '1'=='1", '{"$ne":null}']:
        resp = await api.get(f"/v1/topics/{quote(topic, safe='')}/posts", headers=world.alice.headers)
        assert resp.status_code in (200, 400, 404, 422), resp.text
        if resp.status_code == 200:
            assert resp.json()["items"] == []


async def test_errors_are_the_contract_body_never_a_trace(api, world: World):
    checks = [("GET", "/nope"), ("GET", "/v1/nope"), ("DELETE", "/v1/me"), ("PATCH", "/v1/posts"),
              ("GET", "/v1/posts/" + "x" * 5000)]
    for method, path in checks:
        resp = await api.request(method, path, headers=world.alice.headers)
        assert 400 <= resp.status_code < 500, (method, path, resp.status_code)
        body = resp.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
        assert "Traceback" not in resp.text and "File \"" not in resp.text
    resp = await api.post("/v1/posts", content=b'{"text": ', headers={**world.alice.headers,
                                                                     "Content-Type": "application/json"})
    assert resp.status_code == 400 and error_code(resp) == "bad_request"
    resp = await api.post("/v1/posts", content=b"text=hi", headers={**world.alice.headers,
                                                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415


async def test_no_credentialed_cross_origin_access(api, world: World):
    evil = {"Origin": "https://evil.example"}
    resp = await api.options("/v1/me", headers={**evil, "Access-Control-Request-Method": "GET",
                                                "Access-Control-Request-Headers": "authorization"})
    assert resp.headers.get("access-control-allow-origin") not in ("*", "https://evil.example") or \
        resp.headers.get("access-control-allow-credentials") != "true"
    resp = await api.get("/v1/me", headers={**world.alice.headers, **evil})
    assert resp.headers.get("access-control-allow-origin") != "https://evil.example"
