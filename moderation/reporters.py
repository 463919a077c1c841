"""Which reports count toward the automatic hide.

Three throwaway accounts must not be able to hide anyone's post, so a report weighs only when its
reporter is *established*: the account is at least ``settings.report_min_account_age_h`` hours old
and has taken part — at least one published post or one check-in. Every report still queues the
post for a moderator; only the automatic hide waits for established reporters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from solomo.core.services import Services
from solomo.core.timeutil import aware


async def is_established(services: Services, user_id: ObjectId, now: datetime | None = None) -> bool:
    """Old enough and active: one indexed lookup per collection (``by_author_newest``, ``by_user_newest``)."""
    user = await services.db.users.find_one({"_id": user_id}, {"created_at": 1})
    if user is None:
        return False
    age = timedelta(hours=services.settings.report_min_account_age_h)
    if aware(user["created_at"]) > (now or datetime.now(UTC)) - age:
        return False
    if await services.db.posts.find_one({"author_id": user_id, "status": "published"}, {"_id": 1}) is not None:
        return True
    return await services.db.checkins.find_one({"user_id": user_id}, {"_id": 1}) is not None
