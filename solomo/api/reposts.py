"""Routes: reposts (转发) — repost a post with an optional comment, and a post's reposts (thin:
parse, call :mod:`feed.reposts`, shape)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from feed import reposts
from feed.hydrate import hydrate_posts, post_created
from solomo.api.models import StrictBody
from solomo.api.posts import PostOut, PostPage
from solomo.core.ids import parse_id
from solomo.core.pagination import PageQuery
from solomo.http import Ctx, endpoint


class RepostIn(StrictBody):
    text: str = Field("", max_length=2000, description=(
        "0..2000 characters of your own (send {} for none); #话题# / #tag topics and @mentions count as in a post"))


@endpoint("POST /v1/posts/{post_id}/repost",
          summary="Repost a post (转发), with an optional comment", body=RepostIn, response=PostOut, status=201,
          tags=["posts"], rate="repost", idempotent=True,
          errors={403: "blocked (a block either way with the author of the post or of its original)",
                  404: "not_found (no such post, or one you cannot see, or its original is gone)",
                  422: "invalid, not_repostable (not published), empty_topic, invalid_topic, too_many_topics, "
                       "content_rejected"},
          description="repost_of is always the root original: reposting a repost points at its original and "
                      "appends the repost's text, `your text //@author: their text` (cut to 2000 characters). "
                      "The repost reaches your followers like any post; the original's repost_count (and the "
                      "reposted repost's) goes up by one.")
async def repost(ctx: Ctx) -> dict[str, Any]:
    body: RepostIn = ctx.body
    doc, original = await reposts.create_repost(ctx.services, ctx.user, parse_id(ctx.path["post_id"], "post"),
                                                body.text)
    return post_created(doc, ctx.user, None, original)  # no query after the write (Idempotency-Key)


@endpoint("GET /v1/posts/{post_id}/reposts",
          summary="A post's reposts, newest first", query=PageQuery, response=PostPage, tags=["posts"],
          errors={400: "invalid_cursor", 404: "not_found"},
          description="Of an original: all its reposts; of a repost: the reposts made of it. Reposts you may "
                      "see, without those of users you block or mute or who block you.")
async def list_reposts(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    after = ctx.services.cursors.decode_position(q.cursor)
    docs, nxt = await reposts.list_reposts(ctx.services, ctx.user.id, parse_id(ctx.path["post_id"], "post"),
                                           after, q.limit, ctx.user.role)
    return ctx.services.cursors.page(await hydrate_posts(ctx.services, docs, ctx.user.id), nxt)
