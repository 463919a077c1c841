"""Routes that share a path template answer one 405 listing every method of that path.

Each handler is its own :class:`~starlette.routing.Route` (``GET /v1/posts/{post_id}`` and
``DELETE /v1/posts/{post_id}`` are two objects). Starlette answers a method none of them takes
with the ``Allow`` header of the *first* of them only, so a client would read ``GET, HEAD`` and
never learn about ``DELETE``. :func:`with_method_guards` puts, before the first route of each
shared template, a guard that only ever matches partially: the router still prefers any full
match, and hands an unmatched method to the first partial match — the guard, which knows them all.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send


async def _never_called(*_: object) -> None:  # the guard handles every request it matches itself
    raise AssertionError("a method guard has no endpoint")


class PrefixRoute(Route):
    """A Route that turns away a path outside its literal prefix before trying its pattern.

    Starlette's router tries the routes in order, each with a regular expression: with a hundred
    routes, a request for a route near the end (a like, a claim, a topic page) spent 130-150 µs
    matching (measured on the app's own table). A path that does not start with the template's
    text before its first parameter (``/v1/posts/`` for ``/v1/posts/{post_id}/like``) cannot
    match the pattern, so the answer is the same, for a string comparison."""

    def __init__(self, path: str, *args: object, **kwargs: object) -> None:
        super().__init__(path, *args, **kwargs)  # type: ignore[arg-type]
        self.literal_prefix = path.split("{", 1)[0]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # behind a root_path Starlette matches the path without it: leave that case to the pattern
        if not scope.get("root_path") and not scope["path"].startswith(self.literal_prefix):
            return Match.NONE, {}
        return super().matches(scope)


class MethodGuard(PrefixRoute):
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
