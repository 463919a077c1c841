"""Routes: home, local, topic, user and store feeds; hot topics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from feed import trends
from feed.blocks import Screen, walled_off
from feed.home import read_home
from feed.hydrate import PageLoader, hydrate_posts
from feed.local import read_local
from feed.paging import MongoSource, collect
from feed.posts import load_store, visibility_filter, visible_to
from feed.text import TOPIC_RULES, parse_topic_param
from feed.topics import read_topic
from solomo.api.models import Lat, LaxQuery, Lng
from solomo.api.posts import PostPage
from solomo.core.ids import parse_id
from solomo.core.pagination import PageQuery, Position
from solomo.http import Ctx, endpoint


class LocalIn(PageQuery):
    lat: Lat
    lng: Lng
    radius_m: float = Field(2000, gt=0, le=50000, description="Metres (default 2000, at most 50000)")


class HotIn(LaxQuery):
    limit: int = Field(20, ge=1, le=100, description="How many topics (1..100)")


class HotTopicOut(BaseModel):
    topic: str
    score: float
    post_count: int


class HotOut(BaseModel):
    items: list[HotTopicOut]


async def _page(ctx: Ctx, result: tuple[list[dict[str, Any]], Position | None],
                loader: PageLoader | None = None) -> dict[str, Any]:
    docs, nxt = result
    return ctx.services.cursors.page(await hydrate_posts(ctx.services, docs, ctx.user.id, loader), nxt)


_CURSOR = {400: "invalid_cursor"}
_SHUT_OUT = ("Posts of users you block or mute, and of users who block you, are left out while the page is "
             "collected: a page is still full when more posts follow.")


@endpoint("GET /v1/feed/home",
          summary="Home feed: your posts, the users you follow, the stores you follow", query=PageQuery,
          response=PostPage, tags=["feeds"], errors=_CURSOR, description=_SHUT_OUT)
async def home(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    before = ctx.services.cursors.decode_position(q.cursor)
    screen = Screen(ctx.services, ctx.user.id)
    loader = PageLoader(ctx.services, ctx.user.id, screen)  # the page from the post cache
    return await _page(ctx, await read_home(ctx.services, ctx.user.id, before, q.limit, loader.load, screen), loader)


@endpoint("GET /v1/feed/local",
          summary="Located posts within radius_m, newest first", query=LocalIn, response=PostPage,
          tags=["feeds"], errors=_CURSOR, description=_SHUT_OUT)
async def local(ctx: Ctx) -> dict[str, Any]:
    q: LocalIn = ctx.query
    before = ctx.services.cursors.decode_position(q.cursor)
    screen = Screen(ctx.services, ctx.user.id)
    loader = PageLoader(ctx.services, ctx.user.id, screen)
    return await _page(ctx, await read_local(ctx.services, q.lat, q.lng, q.radius_m, before, q.limit, loader.load,
                                             screen), loader)


@endpoint("GET /v1/topics/{topic}/posts",
          summary="Posts with a topic, newest first (case and width insensitive)", query=PageQuery,
          response=PostPage, tags=["feeds"], errors={**_CURSOR, 422: "invalid_topic"},
          description="The topic is normalized exactly as in posts (#话题#, #tag or the bare topic). " + TOPIC_RULES
                      + " " + _SHUT_OUT)
async def topic(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    key = parse_topic_param(ctx.path["topic"])
    before = ctx.services.cursors.decode_position(q.cursor)
    screen = Screen(ctx.services, ctx.user.id)
    loader = PageLoader(ctx.services, ctx.user.id, screen)
    return await _page(ctx, await read_topic(ctx.services, key, before, q.limit, loader.load, screen), loader)


@endpoint("GET /v1/topics/hot",
          summary="Trending topics: unique authors now against the hours before, decayed", query=HotIn,
          response=HotOut, tags=["feeds"])
async def hot(ctx: Ctx) -> dict[str, Any]:
    return {"items": await trends.hot(ctx.services, ctx.query.limit)}


@endpoint("GET /v1/users/{user_id}/posts",
          summary="A user's posts, newest first", query=PageQuery, response=PostPage, tags=["feeds"],
          errors=_CURSOR, description="Empty between two users one of whom blocks the other.")
async def of_user(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    user = await ctx.services.accounts.get(parse_id(ctx.path["user_id"], "user"))
    before = ctx.services.cursors.decode_position(q.cursor)
    if await walled_off(ctx.services, ctx.user.id, user["_id"], ctx.user.role):
        return ctx.services.cursors.page([], None)
    source = MongoSource(ctx.services.db, {"author_id": user["_id"], **visibility_filter(ctx.user.id, user["_id"])})
    return await _page(ctx, await collect(ctx.services.db, [source], before, q.limit,
                                          lambda d: visible_to(d, ctx.user.id)))


@endpoint("GET /v1/stores/{store_id}/posts",
          summary="Posts at a store (check-ins included), newest first", query=PageQuery, response=PostPage,
          tags=["feeds"], errors=_CURSOR,
          description="Without the posts of users you block, mute or are blocked by (as the other feeds).")
async def of_store(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    store = await load_store(ctx.services, parse_id(ctx.path["store_id"], "store"))
    before = ctx.services.cursors.decode_position(q.cursor)
    source = MongoSource(ctx.services.db, {"store_id": store["_id"], **visibility_filter(ctx.user.id)})
    return await _page(ctx, await collect(ctx.services.db, [source], before, q.limit,
                                          lambda d: visible_to(d, ctx.user.id),
                                          screen=Screen(ctx.services, ctx.user.id)))

