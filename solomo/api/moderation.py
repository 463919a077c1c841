"""Routes: reports (any account) and the moderator's tools — queue, post, comment and user
actions, the audit log and the word lists. Every ``/v1/moderation/*`` route is 403 for other roles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from feed.comments import hydrate_comments
from feed.hydrate import hydrate_post, hydrate_posts
from moderation import actions, audit, reports, users, words
from moderation import comments as comment_mod
from moderation import offers as offer_mod
from moderation.matcher import word_filter
from moderation.queue import queue_page
from offers.offers import get_offer, offer_public
from solomo.accounts import user_public
from solomo.api.models import StrictBody, UserOut
from solomo.api.offers import OfferOut
from solomo.api.posts import CommentOut, PostOut
from solomo.core.ids import parse_id
from solomo.core.pagination import Page, PageQuery
from solomo.http import Ctx, endpoint

MOD = ("moderator",)
TAGS = ["moderation"]


def _reason(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("reason must not be empty")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=500, description="Why (required, shown in the audit log)"),
                   AfterValidator(_reason)]
PostAction = Literal["approve", "hide", "remove", "restore"]


class ReportIn(StrictBody):
    reason: Literal["spam", "abuse", "illegal", "other"]
    note: str | None = Field(None, max_length=500)


class ReportOut(BaseModel):
    id: str
    post_id: str
    reporter_id: str
    reason: str
    note: str | None
    created_at: str


class PostActionIn(StrictBody):
    action: PostAction
    reason: Reason


class BulkIn(StrictBody):
    ids: list[str] = Field(min_length=1, max_length=actions.MAX_BULK, description="Post ids (at most 100, distinct)")
    action: PostAction
    reason: Reason

    @field_validator("ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be distinct")
        return ids


class CommentActionIn(StrictBody):
    action: Literal["approve", "remove"]
    reason: Reason


class OfferActionIn(StrictBody):
    action: Literal["approve", "remove"]
    reason: Reason


class UserActionIn(StrictBody):
    action: Literal["suspend", "unsuspend"]
    reason: Reason


class WordsIn(StrictBody):
    block: list[str] = Field(max_length=words.MAX_WORDS, description="Words that reject a text (1..64 chars each)")
    review: list[str] = Field(max_length=words.MAX_WORDS, description="Words that send a text to review")
    reason: Reason = "word lists updated"


class WordsOut(BaseModel):
    block: list[str]
    review: list[str]


class ErrorItem(BaseModel):
    code: str
    message: str


class BulkItemOut(BaseModel):
    id: str
    ok: bool
    post: PostOut | None = None
    error: ErrorItem | None = None


class BulkOut(BaseModel):
    items: list[BulkItemOut]


class QueueItemOut(BaseModel):
    post: PostOut
    reports: list[ReportOut]
    report_count: int = Field(description="Open (undecided) reports")
    flags: list[dict[str, Any]] = Field(description='Automatic flags, e.g. {"source": "words", "words": [...]}')
    queued_at: str


class OfferQueueItemOut(BaseModel):
    offer: OfferOut
    flags: list[dict[str, Any]] = Field(description='Automatic flags, e.g. {"source": "words", "words": [...]}')
    queued_at: str


class QueuePage(Page[QueueItemOut | OfferQueueItemOut]):
    pass


class CommentQueueItemOut(BaseModel):
    comment: CommentOut
    post: PostOut | None = Field(description="The commented post; null if its author deleted it")
    flags: list[dict[str, Any]] = Field(description='Automatic flags, e.g. {"source": "words", "words": [...]}')
    queued_at: str


class CommentQueuePage(Page[CommentQueueItemOut]):
    pass


class AuditOut(BaseModel):
    id: str
    moderator_id: str | None = Field(description="null for automatic actions (auto_hide)")
    action: str
    target_type: Literal["post", "comment", "user", "offer", "words"]
    target_id: str
    reason: str
    before: Any
    after: Any
    created_at: str


class AuditPage(Page[AuditOut]):
    pass


class AuditQuery(PageQuery):
    target_type: Literal["post", "comment", "user", "offer", "words"] | None = None
    target_id: str | None = Field(None, max_length=64)


@endpoint("POST /v1/posts/{post_id}/reports",
          summary="Report a post", body=ReportIn, response=ReportOut, status=201, tags=TAGS, rate="report",
          errors={404: "not_found", 409: "already_reported", 422: "cannot_report_own_post, content_rejected"},
          description="One report per user and post: a second one is 409 already_reported. When a post's "
                      "undecided reports reach the configured threshold it is hidden at once and waits in the "
                      "moderation queue. A note with a block word → 422 content_rejected; review words are "
                      "accepted (only moderators read notes).")
async def report_post(ctx: Ctx) -> dict[str, Any]:
    post_id = parse_id(ctx.path["post_id"], "post")
    report, _ = await reports.report_post(ctx.services, ctx.user, post_id, ctx.body.reason, ctx.body.note)
    return reports.report_public(report)


@endpoint("GET /v1/moderation/queue",
          summary="The review queue, oldest first", query=PageQuery, response=QueuePage, auth=MOD, tags=TAGS,
          errors={400: "invalid_cursor"},
          description="Posts waiting for a decision: pending_review ones and reported ones (auto-hidden "
                      "included) with their open reports and automatic flags; and offers held for review "
                      "(`{\"offer\": Offer, \"flags\", \"queued_at\"}` items, decided with "
                      "POST /v1/moderation/offers/{offer_id}). Comments held for review wait in their own "
                      "queue, GET /v1/moderation/comments.")
async def queue(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    cursors = ctx.services.cursors
    return cursors.page(*await queue_page(ctx.services, ctx.user.id, limit=q.limit,
                                          after=cursors.decode_position(q.cursor)))


@endpoint("POST /v1/moderation/posts/{post_id}",
          summary="Decide on a post", body=PostActionIn, response=PostOut, auth=MOD, tags=TAGS,
          errors={404: "not_found", 409: "invalid_transition"},
          description="approve: pending_review, hidden or reported → published; hide: published or "
                      "pending_review → hidden; remove: published, pending_review or hidden → removed; "
                      "restore: hidden or removed → published. Anything else is 409 invalid_transition.")
async def moderate_post(ctx: Ctx) -> dict[str, Any]:
    post_id = parse_id(ctx.path["post_id"], "post")
    doc = await actions.moderate_post(ctx.services, ctx.user, post_id, ctx.body.action, ctx.body.reason)
    return await hydrate_post(ctx.services, doc, ctx.user.id)


@endpoint("POST /v1/moderation/posts/bulk",
          summary="Decide on many posts", body=BulkIn, response=BulkOut, auth=MOD, tags=TAGS,
          description="Each id is decided on its own (as by the single route); items come back in request "
                      "order with either the post or the error that id met.")
async def moderate_bulk(ctx: Ctx) -> dict[str, Any]:
    results = await actions.moderate_many(ctx.services, ctx.user, ctx.body.ids, ctx.body.action, ctx.body.reason)
    docs = [doc for _, doc, _ in results if doc is not None]
    hydrated = {p["id"]: p for p in await hydrate_posts(ctx.services, docs, ctx.user.id)}
    items = []
    for raw, doc, err in results:
        if doc is not None:
            items.append({"id": raw, "ok": True, "post": hydrated[str(doc["_id"])]})
        else:
            assert err is not None
            items.append({"id": raw, "ok": False, "error": {"code": err.code, "message": err.message}})
    return {"items": items}


@endpoint("GET /v1/moderation/comments",
          summary="Comments held for review, oldest first", query=PageQuery, response=CommentQueuePage, auth=MOD,
          tags=TAGS, errors={400: "invalid_cursor"},
          description="Comments that matched a review word (status pending_review): each with its post and "
                      "automatic flags. Decide with POST /v1/moderation/comments/{comment_id}.")
async def comment_queue(ctx: Ctx) -> dict[str, Any]:
    q: PageQuery = ctx.query
    cursors = ctx.services.cursors
    return cursors.page(*await comment_mod.comment_queue_page(ctx.services, ctx.user.id, limit=q.limit,
                                                              after=cursors.decode_position(q.cursor)))


@endpoint("POST /v1/moderation/comments/{comment_id}",
          summary="Decide on a comment", body=CommentActionIn, response=CommentOut, auth=MOD, tags=TAGS,
          errors={404: "not_found", 409: "invalid_transition"},
          description="approve: pending_review → published (counted in the post's comment_count; the post's "
                      "author, the parent comment's author and mentioned users are notified then); remove: "
                      "pending_review or published → removed (seen by moderators only; replies stay). "
                      "Anything else is 409 invalid_transition. Audited with target_type comment.")
async def moderate_comment(ctx: Ctx) -> dict[str, Any]:
    comment_id = parse_id(ctx.path["comment_id"], "comment")
    doc = await comment_mod.moderate_comment(ctx.services, ctx.user, comment_id, ctx.body.action, ctx.body.reason)
    return (await hydrate_comments(ctx.services, [doc]))[0]


@endpoint("POST /v1/moderation/offers/{offer_id}",
          summary="Decide on an offer", body=OfferActionIn, response=OfferOut, auth=MOD, tags=TAGS,
          errors={404: "not_found", 409: "invalid_transition"},
          description="approve: pending_review → live, and the offer is pushed as if just created; remove: "
                      "pending_review or live → ended for everyone (nobody is pushed it or can claim it). "
                      "Anything else is 409 invalid_transition. Audited with target_type offer.")
async def moderate_offer(ctx: Ctx) -> dict[str, Any]:
    offer_id = parse_id(ctx.path["offer_id"], "offer")
    await offer_mod.moderate_offer(ctx.services, ctx.user, offer_id, ctx.body.action, ctx.body.reason)
    return offer_public(*await get_offer(ctx.services, offer_id))


@endpoint("POST /v1/moderation/users/{user_id}",
          summary="Suspend or unsuspend an account", body=UserActionIn, response=UserOut, auth=MOD, tags=TAGS,
          errors={403: "forbidden", 404: "not_found", 409: "invalid_transition"},
          description="A suspended account's tokens answer 401 account_suspended at once and its sockets close "
                      "with 4403; unsuspending makes the same tokens work again. Moderator accounts (yourself "
                      "included) cannot be suspended here: 403.")
async def moderate_user(ctx: Ctx) -> dict[str, Any]:
    user_id = parse_id(ctx.path["user_id"], "user")
    doc = await users.moderate_user(ctx.services, ctx.user, user_id, ctx.body.action, ctx.body.reason)
    return user_public(doc)


@endpoint("GET /v1/moderation/audit",
          summary="The audit log, newest first", query=AuditQuery, response=AuditPage, auth=MOD, tags=TAGS,
          errors={400: "invalid_cursor"},
          description="Append-only: every moderator action (and automatic hide) with before and after state.")
async def audit_log(ctx: Ctx) -> dict[str, Any]:
    q: AuditQuery = ctx.query
    cursors = ctx.services.cursors
    return cursors.page(*await audit.list_audit(ctx.services, limit=q.limit, before=cursors.decode_position(q.cursor),
                                                target_type=q.target_type, target_id=q.target_id))


@endpoint("GET /v1/moderation/words",
          summary="The sensitive-word lists", response=WordsOut, auth=MOD, tags=TAGS)
async def get_words(ctx: Ctx) -> dict[str, Any]:
    lists, _ = await words.load_lists(ctx.services)
    return lists.public()


@endpoint("PUT /v1/moderation/words",
          summary="Replace the sensitive-word lists", body=WordsIn, response=WordsOut, auth=MOD, tags=TAGS,
          description="Both lists are replaced. Each word is trimmed, 1..64 characters with a letter or digit, "
                      "at most 5000 per list, not on both lists; duplicates (after normalization) are merged. "
                      "Matching ignores case, full/half width and spaces or punctuation between characters; "
                      "words in Latin, Greek or Cyrillic letters match whole words only. Every process picks "
                      "the change up within about a second.")
async def put_words(ctx: Ctx) -> dict[str, Any]:
    body: WordsIn = ctx.body
    lists = await words.update_lists(ctx.services, ctx.user.id, body.block, body.review, body.reason)
    word_filter(ctx.services).invalidate()
    return lists.public()

