"""User reports on posts, and the automatic hide at ``settings.report_threshold``.

- One report per user and post (unique index); a second one answers 409 ``already_reported``
  rather than a silent 200, so a client can tell the user it was already counted.
- Only a published post someone else wrote can be reported: one's own post is 422
  ``cannot_report_own_post``; a post the reporter cannot see (hidden, removed, pending) is 404.
- Every report queues the post for a moderator, but only reports from established accounts
  (:mod:`moderation.reporters`: old enough, and with a post or a check-in) count toward the
  automatic hide (``hide_votes``), so a handful of fresh accounts cannot hide anyone's post.
- The report, the post's counters, the queue entry and — when the post's open weighing reports
  (those since the last moderator decision) reach the threshold — the automatic hide, its flag and
  its audit entry are written in one transaction; the hide also puts the post in the fan-out outbox
  (``fanout: "pending"``), and the retract task is enqueued after the commit as the fast path.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from feed import postcache
from moderation import audit
from moderation.reporters import is_established
from moderation.screen import screen_note
from solomo.accounts import Principal
from solomo.core import tasknames
from solomo.core.errors import Conflict, Invalid, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.services import Services
from solomo.core.timeutil import ms_of
from solomo.core.txn import Txn, outbox_fields, run_transaction

REASONS = ("spam", "abuse", "illegal", "other")


def report_public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "post_id": str(doc["post_id"]),
        "reporter_id": str(doc["reporter_id"]),
        "reason": doc["reason"],
        "note": doc.get("note"),
        "created_at": rfc3339(doc["created_at"]),
    }


async def report_post(
    services: Services, reporter: Principal, post_id: ObjectId, reason: str, note: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Files a report; returns (report, whether this report hid the post)."""
    if reason not in REASONS:
        raise Invalid(f"reason must be one of {', '.join(REASONS)}")
    await screen_note(services, note)
    post = await services.db.posts.find_one({"_id": post_id}, {"author_id": 1, "status": 1})
    if post is None or post.get("status") == "deleted":
        raise NotFound("post not found")
    if post["author_id"] == reporter.id:
        raise Invalid("you cannot report your own post", code="cannot_report_own_post")
    if post["status"] != "published":
        raise NotFound("post not found")
    threshold = services.settings.report_threshold
    weighs = await is_established(services, reporter.id)

    async def body(txn: Txn) -> tuple[dict[str, Any], bool]:
        session = txn.session
        now = datetime.now(UTC)
        report = {"_id": ObjectId(), "post_id": post_id, "reporter_id": reporter.id, "reason": reason,
                  "note": note, "created_at": now, "weighs": weighs}
        try:
            await services.db.reports.insert_one(report, session=session)
        except DuplicateKeyError:
            raise Conflict("you already reported this post", code="already_reported") from None
        updated = await services.db.posts.find_one_and_update(
            {"_id": post_id},
            {"$inc": {"report_count": 1, "open_reports": 1, "hide_votes": int(weighs)},
             "$min": {"queued_ms": ms_of(now)}},
            projection={"status": 1, "open_reports": 1, "hide_votes": 1}, return_document=ReturnDocument.AFTER,
            session=session,
        )
        if (not weighs or updated is None or updated["status"] != "published"
                or updated["hide_votes"] < threshold):
            return report, False
        reasons = await _open_reasons(services, post_id, session)
        flag = {"source": "reports", "count": updated["open_reports"], "weighing": updated["hide_votes"],
                "reasons": reasons, "at": now}
        await services.db.posts.update_one(
            {"_id": post_id, "status": "published"},
            {"$set": {"status": "hidden", **outbox_fields(now)}, "$unset": {"fanout_progress": ""},
             "$push": {"flags": flag}, "$inc": {"status_version": 1}}, session=session,
        )
        await audit.record(
            services, session, moderator_id=None, action="auto_hide", target_type="post", target_id=post_id,
            reason=f"{updated['hide_votes']} reports from established accounts (threshold {threshold})",
            before={"status": "published"}, after={"status": "hidden"},
        )
        txn.after_commit(tasknames.FANOUT_RETRACT, str(post_id))
        return report, True

    report, hidden = await run_transaction(services, body)
    if hidden:
        await postcache.invalidate(services, [post_id])  # feeds' cached view of the post (its status)
    return report, hidden


async def _open_reasons(services: Services, post_id: ObjectId, session: AsyncClientSession) -> dict[str, int]:
    counts: Counter[str] = Counter()
    async for r in services.db.reports.find({"post_id": post_id, "open": {"$ne": False}}, {"reason": 1},
                                            session=session):
        counts[r["reason"]] += 1
    return dict(counts)


async def reports_for(services: Services, post_ids: list[ObjectId],
                      per_post: int = 50) -> dict[ObjectId, list[dict[str, Any]]]:
    """The open reports of many posts, oldest first (at most ``per_post`` each), in one query."""
    out: dict[ObjectId, list[dict[str, Any]]] = {pid: [] for pid in post_ids}
    cursor = services.db.reports.find({"post_id": {"$in": post_ids}, "open": {"$ne": False}}).sort(
        [("post_id", 1), ("created_at", 1)])
    async for doc in cursor:
        bucket = out[doc["post_id"]]
        if len(bucket) < per_post:
            bucket.append(report_public(doc))
    return out


async def close_reports(services: Services, post_id: ObjectId, session: AsyncClientSession) -> int:
    """Marks the open reports decided (kept for the record; new reports open a new round)."""
    result = await services.db.reports.update_many({"post_id": post_id, "open": {"$ne": False}},
                                                   {"$set": {"open": False}}, session=session)
    return result.modified_count
