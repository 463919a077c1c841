"""Routes for this resource (to be filled by its issue)."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
