"""Earning points, inside the transaction of the action that earns them.

* :func:`earn_for_checkins` — called by :mod:`checkins.groupcommit` inside a group's transaction,
  for all its check-ins at once: ``checkin_points`` for the user's first check-in of the store-local
  day at an enabled store. The ledger entry's ``once`` key is
  ``checkin:<store>:<local day>:<user>``: a second check-in that day (or a re-run of the same
  transaction after a write conflict, which starts from scratch) finds the key and earns nothing.
  A store that joins the programme during the day pays for the first check-in after it joined.
* :func:`earn_for_redemption` — called by :func:`offers.vouchers.redeem` in the transaction that
  marks the voucher redeemed: ``redemption_points``, once per voucher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId

from checkins.localtime import local_day
from loyalty.ledger import Credit, credit, credit_many
from loyalty.programme import settings_of
from solomo.core.services import Services
from solomo.core.txn import Txn


@dataclass(frozen=True)
class Visit:
    """A check-in as the points programme sees it."""

    user_id: ObjectId
    store: dict[str, Any]
    checkin_id: ObjectId
    at: datetime


async def earn_for_checkins(services: Services, txn: Txn, visits: Sequence[Visit]) -> list[dict[str, Any] | None]:
    """Per visit the entry written, or None (store not in the programme, no points, or not the
    day's first); the group's earnings in one :func:`~loyalty.ledger.credit_many` (one visit a user)."""
    credits: dict[int, Credit] = {}
    for i, v in enumerate(visits):
        settings = settings_of(v.store)
        if settings["enabled"] and settings["checkin_points"] > 0:
            once = f"checkin:{v.store['_id']}:{local_day(v.store, v.at)}:{v.user_id}"
            credits[i] = Credit(v.user_id, v.store, "checkin", settings["checkin_points"], v.checkin_id, once, v.at)
    entries = dict(zip(credits, await credit_many(services, txn, list(credits.values())), strict=True))
    return [entries.get(i) for i in range(len(visits))]


async def earn_for_redemption(services: Services, txn: Txn, voucher: dict[str, Any], store: dict[str, Any],
                              now: datetime) -> dict[str, Any] | None:
    settings = settings_of(store)
    if not settings["enabled"] or settings["redemption_points"] <= 0:
        return None
    return await credit(services, txn, user_id=voucher["user_id"], store=store, kind="redemption",
                        points=settings["redemption_points"], source_id=voucher["_id"],
                        once=f"redemption:{voucher['_id']}", now=now)
