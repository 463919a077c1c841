"""Routes: home, local, topic, user and store feeds; hot topics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from feed import localtrends, topicnear, trends
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


def _whole_point(q: Any) -> Any:
    # a point is lat and lng together; a radius only with a point (else 422, like every point route)
    if (q.lat is None) != (q.lng is None):
        raise ValueError("lat and lng go together")
    if q.radius_m is not None and q.lat is None:
        raise ValueError("radius_m needs lat and lng")
    return q


class HotIn(LaxQuery):
    limit: int = Field(20, ge=1, le=100, description="How many topics (1..100)")
    lat: Lat | None = Field(None, description="With lng: what trends around this point (同城热门)")
    lng: Lng | None = None
    radius_m: float | None = Field(None, gt=0, le=localtrends.MAX_RADIUS_M,
                                   description="Metres around the point (default 20000, at most 50000)")

    _point = model_validator(mode="after")(_whole_point)


class TopicIn(PageQuery):
    lat: Lat | None = Field(None, description="With lng: only the topic's located posts near this point")
    lng: Lng | None = None
    radius_m: float | None = Field(None, gt=0, le=topicnear.MAX_RADIUS_M,
                                   description="Metres around the point (default 5000, at most 50000)")

    _point = model_validator(mode="after")(_whole_point)


class HotTopicOut(BaseModel):
    topic: str
    score: float
    post_count: int


class HotOut(BaseModel):
    items: list[HotTopicOut]


async def _page(ctx: Ctx, result: tuple[list[dict[str, Any]], Position | None],
                loader: PageLoader | None = None) -> dict[str, Any]:
    docs, nxt = result
    return ctx.services.cursors.page(await hydrate_posts(ctx.services, docs, ctx.user.id, loader, as_json=True),
                                     nxt)


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
          summary="Posts with a topic, newest first (case and width insensitive); near a point if given",
          query=TopicIn, response=PostPage, tags=["feeds"], errors={**_CURSOR, 422: "invalid_topic"},
          description="The topic is normalized exactly as in posts (#话题#, #tag or the bare topic). " + TOPIC_RULES
          + " With lat and lng: only the topic's located posts within radius_m (default 5000) of the point, "
            "by their public position. " + _SHUT_OUT)
async def topic(ctx: Ctx) -> dict[str, Any]:
    q: TopicIn = ctx.query
    key = parse_topic_param(ctx.path["topic"])
    before = ctx.services.cursors.decode_position(q.cursor)
    screen = Screen(ctx.services, ctx.user.id)
    loader = PageLoader(ctx.services, ctx.user.id, screen)
    if q.lat is not None and q.lng is not None:
        radius = q.radius_m or topicnear.DEFAULT_RADIUS_M
        near = await topicnear.read_topic_near(ctx.services, key, q.lat, q.lng, radius, before, q.limit, loader.load,
                                               screen)
        return await _page(ctx, near, loader)
    return await _page(ctx, await read_topic(ctx.services, key, before, q.limit, loader.load, screen), loader)


@endpoint("GET /v1/topics/hot",
          summary="Trending topics: unique authors now against the hours before, decayed", query=HotIn,
          response=HotOut, tags=["feeds"],
          description="With lat and lng: trending among located posts around the point (同城热门; radius_m "
                      "default 20000), counted by district-sized areas and merged over those the circle reaches.")
async def hot(ctx: Ctx) -> dict[str, Any]:
    q: HotIn = ctx.query
    if q.lat is not None and q.lng is not None:
        radius = q.radius_m or localtrends.DEFAULT_RADIUS_M
        return {"items": await localtrends.hot_near(ctx.services, q.lat, q.lng, radius, q.limit)}
    return {"items": await trends.hot(ctx.services, q.limit)}


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

