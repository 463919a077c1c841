"""405 answers list every method of the path, whichever route object serves which method."""

from __future__ import annotations

import pytest

from tests.support import register


def _allow(resp) -> set[str]:
    return {m.strip() for m in resp.headers["allow"].split(",")}


@pytest.mark.parametrize(("method", "template", "allowed"), [
    ("PATCH", "/v1/posts/{id}", {"GET", "HEAD", "DELETE"}),
    ("OPTIONS", "/v1/posts/{id}", {"GET", "HEAD", "DELETE"}),
    ("PUT", "/v1/users/{id}/follow", {"POST", "DELETE"}),
    ("GET", "/v1/posts/{id}/like", {"POST", "DELETE"}),
    ("DELETE", "/v1/posts/{id}/comments", {"GET", "HEAD", "POST"}),
    ("POST", "/v1/moderation/words", {"GET", "HEAD", "PUT"}),
])
async def test_405_lists_every_method_of_a_shared_path(client, method, template, allowed):
    path = template.replace("{id}", "0123456789abcdef01234567")
    resp = await client.request(method, path)
    assert resp.status_code == 405
    assert _allow(resp) == allowed
    assert resp.json()["error"]["code"] == "method_not_allowed"


async def test_405_of_a_single_route_path_and_accepted_methods_still_served(client):
    resp = await client.delete("/v1/auth/login")
    assert resp.status_code == 405 and _allow(resp) == {"POST"}
    assert resp.json()["error"]["code"] == "method_not_allowed"
    acct = await register(client)
    # the guard never takes an accepted method: these reach their handlers (404: no such post)
    for method in ("GET", "DELETE"):
        resp = await client.request(method, "/v1/posts/0123456789abcdef01234567", headers=acct.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", method
