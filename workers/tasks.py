"""Celery tasks: a few lines each — take ids, call domain code, nothing else.

Every task is idempotent: with late acknowledgement a task may run again after a crash.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ClusterError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from solomo.core import tasknames as names
from solomo.core.services import Services
from workers import runtime
from workers.app import app


def _run(job: Any) -> Any:
    return runtime.run(app.conf.solomo_settings, job)


FANOUT_RETRY: dict[str, Any] = {
    # A Redis failover (a cluster master died: its slots move in a few seconds) or a restart: the
    # fan-out is sent again after 1, 2, 4 … s (jittered, at most 5 times) and resumes at its
    # checkpoint, instead of waiting for the sweep (≥ fanout_sweep_after_s), which stays the outbox
    # for everything else.
    "autoretry_for": (RedisConnectionError, RedisTimeoutError, ClusterError, SlotNotCoveredError, TryAgainError),
    "retry_backoff": 1, "retry_backoff_max": 8, "retry_jitter": True, "max_retries": 5,
}


@app.task(name=names.PING)
def ping(key: str) -> None:
    """Sets a Redis key: proves a worker is consuming (used by tests and `solomo dev`)."""

    async def job(services: Services) -> None:
        await services.redis.set(key, "pong", ex=60)

    _run(job)


# --- offers and real time (issue 4) ---------------------------------------------------------


@app.task(name=names.OFFERS_TARGET)
def target_offer(offer_id: str) -> None:
    """Push a new offer to its audience reachable within its radius (exactly once each)."""
    from offers.targeting import target_offer as target

    _run(lambda services: target(services, offer_id))


@app.task(name=names.OFFERS_SWEEP)
def offers_sweep() -> None:
    """Re-send targeting lost on its way to the broker; drop expired offers from the live index and
    put back live ones it lost; repair the claim gates."""
    from offers.sweeps import reconcile_gates, resend_pending_targeting, restore_live, sweep_live

    async def job(services: Services) -> None:
        await resend_pending_targeting(services)
        await sweep_live(services)
        await restore_live(services)
        await reconcile_gates(services)

    _run(job)


@app.task(name=names.REALTIME_SWEEP)
def realtime_sweep() -> None:
    """Expire stale live positions; drop API processes that stopped heartbeating from rt:online;
    mark done the socket closes every hub has had time to apply (the outbox)."""
    from geo.positions import expire_positions
    from solomo.core.control import clear_done_closes
    from solomo.core.presence import sweep

    async def job(services: Services) -> None:
        await expire_positions(services.redis, services.settings.position_ttl_s)
        await sweep(services.redis, stale_after_ms=int(services.settings.ws_process_stale_s * 1000))
        await clear_done_closes(services.db)

    _run(job)


# --- social feed: fan-out (issue 3) ---------------------------------------------------------


@app.task(name=names.FANOUT_POST, **FANOUT_RETRY)
def fanout_post(post_id: str) -> None:
    """Bring feeds, cells and topics in line with the post's status (push, or pull back)."""
    from bson import ObjectId

    from feed.fanout import fanout_post as fanout

    _run(lambda services: fanout(services, ObjectId(post_id)))


@app.task(name=names.FANOUT_RETRACT, **FANOUT_RETRY)
def fanout_retract(post_id: str) -> None:
    """Sent when a post is hidden, removed or deleted: brings the feeds in line with the post's
    current status (so a late one after a restore pushes it back), telling holders (post.deleted)."""
    from bson import ObjectId

    from feed.fanout import fanout_post as fanout

    _run(lambda services: fanout(services, ObjectId(post_id)))


@app.task(name=names.FANOUT_RESTORE, **FANOUT_RETRY)
def fanout_restore(post_id: str) -> None:
    """Sent when a hidden or removed post is published again: brings the feeds in line with its
    current status (the same idempotent work as fanout.post)."""
    from bson import ObjectId

    from feed.fanout import fanout_post as fanout

    _run(lambda services: fanout(services, ObjectId(post_id)))


@app.task(name=names.REBUILD_HOME)
def rebuild_home(user_id: str) -> None:
    """Rebuild a returning (or flushed) reader's home feed from MongoDB."""
    from bson import ObjectId

    from feed.home import rebuild_home as rebuild

    _run(lambda services: rebuild(services, ObjectId(user_id)))


@app.task(name=names.REBUILD_CELLS)
def rebuild_cells(cells: list[str]) -> None:
    """Build the geo-cell timelines a local read found missing (that read was served from MongoDB)."""
    from feed.localcells import rebuild_cells as rebuild

    _run(lambda services: rebuild(services, [str(c) for c in cells]))


@app.task(name=names.SWEEP_FANOUT)
def sweep_fanout() -> None:
    """The outbox: re-send fan-outs still pending a while after their post was written."""
    from feed.fanout import sweep_pending

    _run(sweep_pending)


@app.task(name=names.SWEEP_NOTIFICATIONS)
def sweep_notifications() -> None:
    """The outbox: record the notifications likes, comments, follows and reposts still owe a while
    after they were written."""
    from notifications.outbox import sweep_pending

    _run(sweep_pending)


@app.task(name=names.REFRESH_MAYORS)
def refresh_mayors() -> None:
    """Mayors whose standing aged out of the 60-day window lose (or pass on) their seat."""
    from datetime import UTC, datetime

    from checkins.mayor import refresh_mayors as refresh

    _run(lambda services: refresh(services, datetime.now(UTC)))


@app.task(name=names.ROLLUPS_SWEEP)
def rollups_sweep() -> None:
    """Rebuild the day rollups of stores left in their old time zone (the change's rebuild failed)."""
    from checkins.visitdays import rebuild_pending

    _run(rebuild_pending)


# --- web push (issue 16) ----------------------------------------------------------------------


@app.task(name=names.PUSH_DELIVER)
def push_deliver(items: list[list[Any]]) -> None:
    """Send event frames ([user id, frame, ttl s]) to their users' push subscriptions."""
    from push.sender import deliver

    _run(lambda services: deliver(services, items))


@app.task(name=names.PUSH_SEND)
def push_send(subscription_id: str, frame: str, ttl_s: int, attempt: int) -> None:
    """One more attempt of one message to one subscription (a 429/5xx before)."""
    from push.sender import send_again

    _run(lambda services: send_again(services, subscription_id, frame, int(ttl_s), int(attempt)))


# --- photos (issue 15) ------------------------------------------------------------------------


@app.task(name=names.MEDIA_EXPIRE)
def media_expire() -> None:
    """Delete uploads never attached to a post (nor made an avatar) within a day, with their files."""
    from media.expiry import expire_unattached

    async def job(services: Services) -> None:
        await expire_unattached(services)

    _run(job)


@app.task(name=names.ERASURE_SWEEP)
def erasure_sweep() -> None:
    """Finish account erasures a failure cut short (the deleted account's steps run again)."""
    from profiles.erasure import resume_pending

    _run(resume_pending)


# --- loyalty points (issue 17) ---------------------------------------------------------------


@app.task(name=names.LOYALTY_ANNOUNCE)
def loyalty_announce(entry_id: str) -> None:
    """Publish the ``points`` event of a committed ledger entry to its user."""
    from loyalty.announce import announce

    _run(lambda services: announce(services, entry_id))
