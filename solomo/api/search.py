"""Routes: search stores, users, posts and topics (contract: Search)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from checkins.nearby import RADIUS_MAX_M
from checkins.stores import hydrate_found
from feed.hydrate import hydrate_posts
from search.posts import search_posts
from search.stores import search_stores
from search.topics import search_topics
from search.users import search_users
from solomo.accounts import user_public
from solomo.api.models import Lat, Lng, UserPage
from solomo.api.posts import PostPage
from solomo.api.stores import Category, StoreOut
from solomo.core.errors import Invalid
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint

_Q = Field(min_length=1, max_length=256, description="1..64 characters after trimming spaces")
_ERRORS = {400: "invalid_cursor", 422: "invalid"}


class SearchQuery(PageQuery):
    q: str = _Q


class StoreSearchQuery(SearchQuery):
    lat: Lat | None = None
    lng: Lng | None = None
    radius_m: float | None = Field(None, gt=0, le=RADIUS_MAX_M, description="Metres (needs lat/lng), at most 50000")
    category: Category | None = None

    @model_validator(mode="after")
    def _point(self) -> StoreSearchQuery:
        if (self.lat is None) != (self.lng is None):
            raise Invalid("give both lat and lng, or neither")
        if self.radius_m is not None and self.lat is None:
            raise Invalid("radius_m needs lat and lng")
        return self


class FoundStoreOut(StoreOut):
    distance_m: float | None = Field(None, description="From the query point, metres; null without a point")


class FoundStorePage(Page[FoundStoreOut]):
    pass


class TopicCountOut(BaseModel):
    topic: str
    post_count: int = Field(description="Published posts carrying the topic")


class TopicCountPage(Page[TopicCountOut]):
    pass


@endpoint("GET /v1/search/stores",
          summary="Stores by name: best match first, then nearest", query=StoreSearchQuery, response=FoundStorePage,
          tags=["search"], errors=_ERRORS,
          description="Matches Chinese substrings, Latin word prefixes (any case, full or half width) and pinyin, "
                      "full or initials. Order: the name starts with q; q found in the name; by pinyin; by initials; "
                      "then by distance from (lat, lng) when given (within radius_m when given), else by id.")
async def stores(ctx: Ctx) -> dict[str, Any]:
    q: StoreSearchQuery = ctx.query
    docs, after = await search_stores(ctx.services, q.q, lat=q.lat, lng=q.lng, radius_m=q.radius_m,
                                      category=q.category, position=ctx.services.cursors.decode_position(q.cursor),
                                      limit=q.limit, principal=ctx.principal)
    return ctx.services.cursors.page(await hydrate_found(ctx.services, docs), after)


@endpoint("GET /v1/search/users",
          summary="Users by username prefix or display-name substring", query=SearchQuery, response=UserPage,
          tags=["search"], errors=_ERRORS)
async def users(ctx: Ctx) -> dict[str, Any]:
    q: SearchQuery = ctx.query
    docs, after = await search_users(ctx.services, q.q, position=ctx.services.cursors.decode_position(q.cursor),
                                     limit=q.limit)
    return ctx.services.cursors.page([user_public(d) for d in docs], after)


@endpoint("GET /v1/search/posts",
          summary="Visible posts holding every word of q, newest first", query=SearchQuery, response=PostPage,
          tags=["search"], errors=_ERRORS,
          description="Chinese by substring, other words by word prefix. Posts of users you block or mute, or who "
                      "block you, are left out. A page may be shorter than limit and still carry next_cursor "
                      "(each page reads a bounded part of the index).")
async def posts(ctx: Ctx) -> dict[str, Any]:
    q: SearchQuery = ctx.query
    views, after, loader = await search_posts(ctx.services, ctx.user.id, q.q,
                                              position=ctx.services.cursors.decode_position(q.cursor), limit=q.limit)
    return ctx.services.cursors.page(await hydrate_posts(ctx.services, views, ctx.user.id, loader, as_json=True),
                                     after)


@endpoint("GET /v1/search/topics",
          summary="Topics by prefix, most used first", query=SearchQuery, response=TopicCountPage,
          tags=["search"], errors=_ERRORS)
async def topics(ctx: Ctx) -> dict[str, Any]:
    q: SearchQuery = ctx.query
    items, after = await search_topics(ctx.services, q.q, position=ctx.services.cursors.decode_position(q.cursor),
                                       limit=q.limit)
    return ctx.services.cursors.page(items, after)
