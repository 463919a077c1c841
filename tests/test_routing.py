"""405 answers list every method of the path, whichever route object serves which method."""

from __future__ import annotations

import pytest
from starlette.routing import Route

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


def test_a_literal_segment_is_tried_before_a_parameter():
    from starlette.routing import Mount

    from solomo.routing import most_specific_first

    async def nowhere(request: object) -> None: ...

    routes = [Route("/v1/stores/{store_id}", nowhere), Mount("/static", routes=[]), Route("/v1/stores/nearby", nowhere),
              Route("/v1/stores", nowhere)]
    ordered = [getattr(r, "path", "") for r in most_specific_first(routes)]
    assert ordered == ["/v1/stores", "/v1/stores/nearby", "/v1/stores/{store_id}", "/static"]


def test_a_route_must_name_its_method_and_path():
    from solomo.http import Ctx, endpoint

    with pytest.raises(AssertionError, match="METHOD /path"):
        @endpoint("/v1/things", summary="no method")
        async def things(ctx: Ctx) -> None: ...
