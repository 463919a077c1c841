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


def test_the_indexed_router_picks_what_starlettes_loop_picks(app):
    """For every route of the app, paths that match it and near misses, every method, both scope
    types, with and without a root path: the index's full match is the first full match of the
    routes tried in order (or none, and Starlette's loop decides the 405, redirect or 404)."""
    import re

    from starlette.routing import Match

    from solomo.routing import IndexedRouter

    router = app.router
    assert isinstance(router, IndexedRouter)

    def first_full(scope: dict) -> object:
        for route in router.routes:
            if route.matches(dict(scope))[0] is Match.FULL:
                return route
        return None

    templates = {getattr(r, "path", "") for r in router.routes} | {"/static/app.js", "/nowhere", "/v1", "/v1/"}
    paths: set[str] = set()
    for template in templates:
        for value in ("0123456789abcdef01234567", "nearby", "%E5%92%96%E5%95%A1"):
            path = re.sub(r"\{[^}]+\}", value, template) or "/"
            paths |= {path, path + "/", path + "/extra", path.rstrip("/") + "x", path.rsplit("/", 1)[0] or "/"}
    found = 0
    for path in sorted(paths):
        for kind, methods in (("http", ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")),
                              ("websocket", (None,))):
            for root_path, prefix in (("", ""), ("/api", "/api")):
                scope = {"type": kind, "path": prefix + path, "root_path": root_path, "method": methods[0]}
                for method in methods:
                    scope["method"] = method
                    expected = first_full(scope)
                    assert router.full_match(dict(scope))[0] is expected, (kind, method, root_path, path)
                    found += expected is not None
    assert found > 300  # the paths made do reach most routes, not only misses
