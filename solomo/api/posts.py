"""Routes: posts, likes and comments (thin: parse, call :mod:`feed`, shape)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from feed import comments, likes
from feed.blocks import open_post
from feed.hydrate import hydrate_post, post_created
from feed.posts import create_post, delete_post, load_store
from feed.text import TOPIC_RULES
from solomo.api.models import (
    MEDIA_IDS_DESCRIPTION,
    Lat,
    Lng,
    MediaOut,
    ObjectIdStr,
    StoreSummaryOut,
    StrictBody,
    UserSummaryOut,
)
from solomo.core.ids import parse_id
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint


class PostIn(StrictBody):
    text: str = Field("", max_length=2000,
                      description="1..2000 characters (may be empty when media_ids is not); #话题# and #tag topics "
                                  "(at most 20), @username mentions")
    media_ids: list[str] | None = Field(None, description=MEDIA_IDS_DESCRIPTION)
    store_id: ObjectIdStr | None = Field(None, description="The store the post is about")
    lat: Lat | None = Field(None, description="Where the post was written; stored and shown only snapped to a "
                                              "~100 m grid (3 decimals), and ignored when store_id is given")
    lng: Lng | None = Field(None, description="As lat")


class UnavailableOut(BaseModel):
    id: str
    status: str = Field(description='"unavailable": the original is deleted, or the reader may not see it')


class PostOut(BaseModel):
    id: str
    author: UserSummaryOut
    text: str
    topics: list[str]
    mentions: list[str]
    store: StoreSummaryOut | None
    lat: float | None = Field(description="The public position: the store's, else the author's position snapped "
                                          "to a ~100 m grid; the same for every reader, the author included")
    lng: float | None = Field(description="As lat")
    like_count: int
    comment_count: int
    repost_count: int = Field(description="Reposts of this post not deleted by their authors (of a repost: "
                                          "those made of it)")
    liked_by_me: bool
    repost_of: PostOut | UnavailableOut | None = Field(description="A repost's root original as the reader "
                                                                   "sees it, or unavailable; null for a post")
    status: str = Field(description="published | pending_review | hidden | removed | deleted (moderators only: a "
                                    "post its author deleted while under review, hidden or reported)")
    kind: str = Field(description="post | checkin")
    media: list[MediaOut] = Field(description="Photos, in the author's order (the nine-grid)")
    created_at: str


class PostPage(Page[PostOut]):
    pass


class LikeOut(BaseModel):
    like_count: int
    liked_by_me: bool


class CommentIn(StrictBody):
    text: str = Field(min_length=1, max_length=500)
    reply_to: str | None = Field(None, max_length=64, description=(
        "A comment of the same post; a reply to a reply attaches to its parent (one level of replies)"))


class CommentOut(BaseModel):
    id: str
    post_id: str
    author: UserSummaryOut
    text: str
    reply_to: str | None
    status: str = Field(description="published | pending_review (held for review: its author and moderators see "
                                    "it) | removed (moderators only)")
    created_at: str


class CommentPage(Page[CommentOut]):
    pass


@endpoint("POST /v1/posts",
          summary="Publish a post", body=PostIn, response=PostOut, status=201, tags=["posts"], rate="post",
          idempotent=True,
          errors={404: "not_found (store)",
                  422: "invalid, empty_topic, invalid_topic, too_many_topics, content_rejected, invalid_media"},
          description="The post is stored with its fan-out pending before the 201; followers' home feeds, "
                      "local cells and topic listings follow within moments. " + TOPIC_RULES)
async def publish(ctx: Ctx) -> dict[str, Any]:
    body: PostIn = ctx.body
    store = await load_store(ctx.services, parse_id(body.store_id, "store")) if body.store_id else None
    doc = await create_post(ctx.services, ctx.user, body.text, store=store, lat=body.lat, lng=body.lng,
                            media_ids=body.media_ids)
    return post_created(doc, ctx.user, store)  # no query after the write: nothing can fail it (Idempotency-Key)


@endpoint("GET /v1/posts/{post_id}",
          summary="A post", response=PostOut, tags=["posts"], errors={404: "not_found"},
          description="Published posts for everyone; pending_review and hidden ones for their author too; "
                      "moderators open any post that its author has not deleted, and those its author deleted "
                      "while they were under review, hidden or reported (status deleted). 404 between two users "
                      "one of whom blocks the other.")
async def get_one(ctx: Ctx) -> dict[str, Any]:
    doc = await open_post(ctx.services, parse_id(ctx.path["post_id"], "post"), ctx.user.id, ctx.user.role)
    return await hydrate_post(ctx.services, doc, ctx.user.id)


@endpoint("DELETE /v1/posts/{post_id}",
          summary="Delete your post", status=204, tags=["posts"], errors={403: "forbidden"})
async def delete(ctx: Ctx) -> None:
    await delete_post(ctx.services, parse_id(ctx.path["post_id"], "post"), ctx.user.id)


@endpoint("POST /v1/posts/{post_id}/like",
          summary="Like a post (idempotent)", response=LikeOut, tags=["posts"], rate="like",
          errors={403: "blocked (the author blocks you, or you block the author)"})
async def like(ctx: Ctx) -> dict[str, Any]:
    return await likes.like(ctx.services, ctx.user, parse_id(ctx.path["post_id"], "post"))


@endpoint("DELETE /v1/posts/{post_id}/like",
          summary="Unlike a post (idempotent)", response=LikeOut, tags=["posts"], rate="like")
async def unlike(ctx: Ctx) -> dict[str, Any]:
    return await likes.unlike(ctx.services, ctx.user, parse_id(ctx.path["post_id"], "post"))


@endpoint("POST /v1/posts/{post_id}/comments",
          summary="Comment on a post", body=CommentIn, response=CommentOut, status=201, tags=["posts"], rate="comment",
          idempotent=True,
          errors={403: "blocked (you and the post's or the replied comment's author: one blocks the other)",
                  422: "invalid, invalid_reply_to, content_rejected"})
async def comment(ctx: Ctx) -> dict[str, Any]:
    body: CommentIn = ctx.body
    doc = await comments.create_comment(ctx.services, ctx.user, parse_id(ctx.path["post_id"], "post"),
                                        body.text, body.reply_to)
    return (await comments.hydrate_comments(ctx.services, [doc]))[0]


@endpoint("GET /v1/posts/{post_id}/comments",
          summary="A post's comments, oldest first", query=PageQuery, response=CommentPage, tags=["posts"],
          errors={400: "invalid_cursor", 404: "not_found"},
          description="Published comments, plus your own comments held for review (status pending_review). "
                      "Moderators see every comment but deleted ones (pending_review and removed included), "
                      "on any post its author has not deleted. 404 when you and the post's author: one blocks the "
                      "other.")
async def list_comments(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    after = ctx.services.cursors.decode_position(q.cursor)
    docs, nxt = await comments.list_comments(ctx.services, ctx.user.id, parse_id(ctx.path["post_id"], "post"),
                                             after, q.limit, ctx.user.role)
    return ctx.services.cursors.page(await comments.hydrate_comments(ctx.services, docs), nxt)


@endpoint("DELETE /v1/comments/{comment_id}",
          summary="Delete a comment (its author, the post's author or a moderator)", status=204, tags=["posts"],
          errors={403: "forbidden"})
async def delete_comment(ctx: Ctx) -> None:
    await comments.delete_comment(ctx.services, ctx.user, parse_id(ctx.path["comment_id"], "comment"))

