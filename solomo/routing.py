"""The app's routing: one 405 listing every method of a path, and a router that finds a route by
its path's first segments instead of trying a hundred in order.

Each handler is its own :class:`~starlette.routing.Route` (``GET /v1/posts/{post_id}`` and
``DELETE /v1/posts/{post_id}`` are two objects). Starlette answers a method none of them takes
with the ``Allow`` header of the *first* of them only, so a client would read ``GET, HEAD`` and
never learn about ``DELETE``. :func:`with_method_guards` puts, before the first route of each
shared template, a guard that only ever matches partially: the router still prefers any full
match, and hands an unmatched method to the first partial match — the guard, which knows them all.

Starlette's router tries its routes in order until one matches fully; with about a hundred routes,
a claim or a like was matched after 80 of them (9 % of a claim's CPU in the profile).
:class:`IndexedRouter` answers a full match from an index by :func:`path_key` and leaves
everything else (405s, 404s, the trailing-slash redirect, the lifespan) to Starlette's own loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send


async def _never_called(*_: object) -> None:  # the guard handles every request it matches itself
    raise AssertionError("a method guard has no endpoint")


def path_key(path: str) -> str:
    """A path up to the end of its second segment: ``/v1/posts/ab/like`` → ``/v1/posts``,
    ``/healthz`` → ``/healthz``, ``/`` → ``/``."""
    first = path.find("/", 1)
    if first < 0:
        return path
    second = path.find("/", first + 1)
    return path if second < 0 else path[:second]


def route_key(route: BaseRoute) -> str | None:
    """The :func:`path_key` of every path ``route`` can match, or None when that is not fixed: a
    parameter within the first two segments, a mount, anything else. A route's pattern matches a
    path only if their literal first two segments are equal (a ``{name}`` never spans a ``/``
    unless it is among them, and then the route has no key)."""
    if not isinstance(route, Route | WebSocketRoute):
        return None
    key = path_key(route.path)
    return None if "{" in key else key


class IndexedRouter(Router):
    """Starlette's router, with full matches found through an index.

    For each key, the candidates are the routes with that key and the routes without one, in the
    routes' own order: the first of them to match fully is the route Starlette's loop would take
    (a route with another key cannot match). When none does, Starlette's loop runs as it always
    did and decides between a partial match (the 405 guards), the slash redirect and the 404.
    The index follows the route list: it is rebuilt when the list is replaced or its length changes
    (routes are appended after construction, e.g. ``/metrics``); a list edited in place to the same
    length is not noticed (nothing does that)."""

    def __init__(self, routes: Sequence[BaseRoute] | None = None, **kwargs: Any) -> None:
        super().__init__(routes, **kwargs)
        self._indexed: tuple[int, int] = (0, -1)
        self._by_key: dict[str, list[BaseRoute]] = {}
        self._keyless: list[BaseRoute] = []

    def _reindex(self) -> None:
        keys = [route_key(route) for route in self.routes]
        self._keyless = [route for route, key in zip(self.routes, keys, strict=True) if key is None]
        self._by_key = {}
        for key in dict.fromkeys(k for k in keys if k is not None):
            self._by_key[key] = [route for route, k in zip(self.routes, keys, strict=True) if k is None or k == key]
        self._indexed = (id(self.routes), len(self.routes))

    def full_match(self, scope: Scope) -> tuple[BaseRoute | None, Scope]:
        """The first route, in order, that matches ``scope`` fully (and its child scope), or None."""
        if self._indexed != (id(self.routes), len(self.routes)):
            self._reindex()
        for route in self._by_key.get(path_key(get_route_path(scope)), self._keyless):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
        return None, {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            route, child_scope = self.full_match(scope)
            if route is not None:  # what Starlette's loop does with a full match
                scope.setdefault("router", self)
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)


class MethodGuard(Route):
    """405 ``method_not_allowed`` with ``Allow`` = every method the routes of ``path`` accept."""

    def __init__(self, path: str, methods: set[str]) -> None:
        super().__init__(path, _never_called, methods=sorted(methods), include_in_schema=False)
        self.allow = ", ".join(sorted(self.methods or ()))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        # an accepted method belongs to the real route (a full match wherever it sits)
        return (match, child_scope) if match is Match.PARTIAL else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(status_code=405, headers={"Allow": self.allow})


def with_method_guards(routes: list[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with a :class:`MethodGuard` before the first route of each path template that
    several routes share (a template with one route already gets Starlette's correct ``Allow``)."""
    methods: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods:
            methods.setdefault(route.path, set()).update(route.methods)
            counts[route.path] = counts.get(route.path, 0) + 1
    out: list[BaseRoute] = []
    guarded: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and counts.get(route.path, 0) > 1 and route.path not in guarded:
            out.append(MethodGuard(route.path, methods[route.path]))
            guarded.add(route.path)
        out.append(route)
    return out


def most_specific_first(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Routes ordered so that a literal path segment is tried before a parameter in the same place
    (``/v1/stores/nearby`` before ``/v1/stores/{store_id}``); otherwise the order is kept. Mounts
    go last: they match whole subtrees."""

    def specificity(route: BaseRoute) -> tuple[int, tuple[int, ...]]:
        if isinstance(route, Mount):
            return 1, ()
        path = getattr(route, "path", "")
        return 0, tuple(1 if part.startswith("{") else 0 for part in path.split("/"))

    return sorted(routes, key=specificity)
