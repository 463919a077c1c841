"""Earning points, inside the transaction of the action that earns them.

* :func:`earn_for_checkin` — called by :func:`checkins.checkin.check_in` inside its transaction:
  ``checkin_points`` for the user's first check-in of the store-local day at an enabled store. The
  ledger entry's ``once`` key is ``checkin:<store>:<local day>:<user>``: a second check-in that day
  (or a re-run of the same transaction after a write conflict, which starts from scratch) finds
  the key and earns nothing. A store that joins the programme during the day pays for the first
  check-in after it joined.
* :func:`earn_for_redemption` — called by :func:`offers.vouchers.redeem` in the transaction that
  marks the voucher redeemed: ``redemption_points``, once per voucher.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from checkins.localtime import local_day
from loyalty.ledger import credit
from loyalty.programme import settings_of
from solomo.core.services import Services
from solomo.core.txn import Txn


async def earn_for_checkin(services: Services, txn: Txn, user_id: ObjectId, store: dict[str, Any],
                           checkin_id: ObjectId, now: datetime) -> dict[str, Any] | None:
    """The entry written, or None (store not in the programme, no points, or not the day's first)."""
    settings = settings_of(store)
    if not settings["enabled"] or settings["checkin_points"] <= 0:
        return None
    once = f"checkin:{store['_id']}:{local_day(store, now)}:{user_id}"
    return await credit(services, txn, user_id=user_id, store=store, kind="checkin",
                        points=settings["checkin_points"], source_id=checkin_id, once=once, now=now)


async def earn_for_redemption(services: Services, txn: Txn, voucher: dict[str, Any], store: dict[str, Any],
                              now: datetime) -> dict[str, Any] | None:
    settings = settings_of(store)
    if not settings["enabled"] or settings["redemption_points"] <= 0:
        return None
    return await credit(services, txn, user_id=voucher["user_id"], store=store, kind="redemption",
                        points=settings["redemption_points"], source_id=voucher["_id"],
                        once=f"redemption:{voucher['_id']}", now=now)
