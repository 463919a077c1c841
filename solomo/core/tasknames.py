"""The Celery task names: the one place they are spelt.

Senders (domain code, through :mod:`solomo.core.txn`), the task definitions
(``workers/tasks.py``), the beat schedule and routes (``workers/app.py``), benchmarks and tests
all use these constants. A leaf module in the core layer: domain code may import it without
importing the Celery app.
"""

from __future__ import annotations

from typing import Final

FANOUT_POST: Final = "fanout.post"
"""Bring feeds, cells and topics in line with a post's status (push, or pull back); args: post id."""
FANOUT_RETRACT: Final = "fanout.retract"
"""Remove a post from every feed and tell online holders; args: post id."""
FANOUT_RESTORE: Final = "fanout.restore"
"""Put a (re)published post back into every feed; args: post id."""
REBUILD_HOME: Final = "fanout.rebuild_home"
"""Rebuild a reader's home feed from MongoDB; args: user id."""
REBUILD_CELLS: Final = "fanout.rebuild_cells"
"""Build missing geo-cell timelines; args: list of cell names."""
OFFERS_TARGET: Final = "offers.target"
"""Push a new offer to the store's followers online within its radius; args: offer id."""

MAINTENANCE_PREFIX: Final = "maintenance."
"""Every task under this prefix runs on the maintenance queue (``workers/app.py``)."""
PING: Final = "maintenance.ping"
"""Set a Redis key: proves a worker is consuming; args: key."""
SWEEP_FANOUT: Final = "maintenance.sweep_fanout"
"""The fan-out outbox: re-send fan-outs still pending."""
OFFERS_SWEEP: Final = "maintenance.offers_sweep"
"""Re-send lost offer targeting; drop expired offers from the live index."""
REALTIME_SWEEP: Final = "maintenance.realtime_sweep"
"""Expire stale live positions and dead API processes' presence; mark applied socket closes done."""
SWEEP_NOTIFICATIONS: Final = "maintenance.sweep_notifications"
"""The notifications' outbox: record what likes, comments, follows and reposts still owe."""
REFRESH_MAYORS: Final = "maintenance.refresh_mayors"
"""Mayors whose standing aged out of the window lose (or pass on) their seat."""
ROLLUPS_SWEEP: Final = "maintenance.rollups_sweep"
"""Rebuild the day rollups of stores whose time zone change did not finish rebuilding them
(``checkins.visitdays.rebuild_pending``)."""

# --- web push (issue 16) ---
PUSH_PREFIX: Final = "push."
"""Every task under this prefix runs on the push queue (``workers/app.py``): requests to outside
push services, however slow, never hold up the fan-out."""
PUSH_DELIVER: Final = "push.deliver"
"""Send event frames as Web Push messages to every subscription of their users; args: list of
[user id, frame, ttl s]."""
PUSH_SEND: Final = "push.send"
"""One more attempt of one message to one subscription (after 429/5xx); args: subscription id, frame,
ttl s, attempt."""
PERSONAL_ARGS: Final = frozenset({PUSH_DELIVER, PUSH_SEND})
"""Tasks whose arguments hold personal data: event frames (an offer's ``distance_m`` is measured
from the user's own fix; notifications name who did what). The broker must carry them, but their
text never goes where operators read: a message's ``argsrepr`` header (which Celery's worker logs
on receipt, success and failure) and our own logs show :data:`PERSONAL_ARGSREPR` instead."""
PERSONAL_ARGSREPR: Final = "(personal data)"


def personal_argsrepr(name: str) -> str | None:
    """What stands for the arguments of task ``name`` where they would be written as text, or None
    when they may be (its arguments are not personal)."""
    return PERSONAL_ARGSREPR if name in PERSONAL_ARGS else None


def args_text(name: str, args: object) -> str:
    """How a task's arguments may be written down (a header, a log line)."""
    return personal_argsrepr(name) or repr(args)
MEDIA_EXPIRE: Final = "maintenance.media_expire"
"""Delete photos uploaded but never attached (or made an avatar) within media_unattached_ttl_h."""
ERASURE_SWEEP: Final = "maintenance.erasure_sweep"
"""Finish account erasures a failure cut short (``profiles.erasure.resume_pending``)."""

# --- loyalty points (issue 17) ---
LOYALTY_ANNOUNCE: Final = "loyalty.announce"
"""Publish the ``points`` event for a committed ledger entry to its user; args: entry id."""
