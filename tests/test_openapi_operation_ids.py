"""Every operation of /openapi.json has a unique, stable snake_case operationId (client generators
name their functions after it)."""

from __future__ import annotations

import re

import pytest
from starlette.routing import BaseRoute, Route

from solomo.http import Ctx, endpoint
from solomo.openapi import build_openapi

SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


async def test_every_operation_has_a_unique_snake_case_id(client):
    doc = (await client.get("/openapi.json")).json()
    ids = {(method.upper(), path): op["operationId"]
           for path, ops in doc["paths"].items() for method, op in ops.items()}
    assert len(ids) > 40
    assert all(SNAKE.fullmatch(op_id) for op_id in ids.values()), sorted(ids.values())
    assert len(set(ids.values())) == len(ids), sorted(ids.values())
    assert ids[("GET", "/v1/feed/home")] == "feeds_home"
    assert ids[("POST", "/v1/checkins")] == "checkins_create"
    assert ids[("DELETE", "/v1/posts/{post_id}")] == "posts_delete"
    assert ids[("POST", "/v1/stores/{store_id}/offers")] == "offers_create"
    assert ids[("POST", "/v1/offers/{offer_id}/claim")] == "offers_claim"
    assert ids[("DELETE", "/v1/users/{user_id}/follow")] == "social_unfollow_user"
    assert ids[("GET", "/readyz")] == "service_readyz"


def test_a_shared_operation_id_is_refused():
    @endpoint("GET /a", summary="one", tags=["things"])
    async def show(ctx: Ctx) -> None: ...

    @endpoint("GET /b", summary="two", tags=["things"], operation_id="things_show")
    async def other(ctx: Ctx) -> None: ...

    routes: list[BaseRoute] = [Route("/a", show, methods=["GET"]), Route("/b", other, methods=["GET"])]
    with pytest.raises(ValueError, match="things_show"):
        build_openapi(routes)


def test_an_operation_id_must_be_snake_case():
    with pytest.raises(AssertionError, match="snake_case"):
        @endpoint("GET /c", summary="bad", tags=["things"], operation_id="Things-Show")
        async def show(ctx: Ctx) -> None: ...
