"""The Celery application: Redis broker, late acknowledgement, beat schedule.

Tasks are acknowledged after they finish and re-queued if the worker dies (``acks_late`` +
``reject_on_worker_lost``), so every task must be idempotent; the outbox sweeps in
:mod:`workers.tasks` catch anything the broker itself lost.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, bootsteps
from celery.signals import before_task_publish, worker_init, worker_shutdown
from kombu.entity import Queue

from solomo.core import tasknames as names
from solomo.core.heap import freeze_startup_heap
from solomo.core.settings import Settings, load_settings, require_secret_key
from solomo.observability import instrument_celery

FANOUT_QUEUE = "fanout"
MAINTENANCE_QUEUE = "maintenance"
PUSH_QUEUE = "push"


class RequireSecretKey(bootsteps.Step):  # type: ignore[misc]  # celery is untyped
    """The worker's first step: it refuses to start with the default secret key, like the API."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        require_secret_key(parent.app.conf.solomo_settings, "the Celery worker")
        super().__init__(parent, **kwargs)


def _transport_options(settings: Settings) -> dict[str, int]:
    """kombu's Redis transport: an unacknowledged message (its worker died) is delivered again once
    older than the visibility timeout. Every idle worker scans for such messages every
    ``unacked_restore_interval`` seconds (throttle 1: each time; kombu's default scans every 100 s),
    a tenth of the timeout, at most 10 s apart: a cheap ZRANGE on the broker."""
    timeout = settings.broker_visibility_timeout_s
    return {"visibility_timeout": timeout, "unacked_restore_interval": max(1, min(10, timeout // 10)),
            "unacked_restore_throttle": 1}


def make_celery(settings: Settings) -> Celery:
    app = Celery("solomo", broker=settings.effective_broker_url, include=["workers.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_default_queue=FANOUT_QUEUE,
        task_queues=[Queue(FANOUT_QUEUE), Queue(MAINTENANCE_QUEUE), Queue(PUSH_QUEUE)],
        task_routes={f"{names.MAINTENANCE_PREFIX}*": {"queue": MAINTENANCE_QUEUE},
                     f"{names.PUSH_PREFIX}*": {"queue": PUSH_QUEUE}},
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-pending-fanout": {"task": names.SWEEP_FANOUT, "schedule": 15.0},
            "sweep-pending-notifications": {"task": names.SWEEP_NOTIFICATIONS, "schedule": 15.0},
            "sweep-offers": {"task": names.OFFERS_SWEEP, "schedule": 30.0},
            "sweep-realtime": {"task": names.REALTIME_SWEEP, "schedule": 60.0},
            "refresh-mayors": {"task": names.REFRESH_MAYORS, "schedule": 3600.0},
            "expire-media": {"task": names.MEDIA_EXPIRE, "schedule": 600.0},
            "sweep-erasures": {"task": names.ERASURE_SWEEP, "schedule": 300.0},
            "sweep-rollups": {"task": names.ROLLUPS_SWEEP, "schedule": 300.0},
        },
        timezone="UTC",
    )
    app.conf.solomo_settings = settings
    app.steps["worker"].add(RequireSecretKey)
    return app


@before_task_publish.connect(dispatch_uid="solomo.personal_argsrepr")
def _personal_args_as_text(sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A message Celery publishes itself (a retry, a countdown, ``send_sync``) gets the same
    ``argsrepr`` as the API's own (:mod:`solomo.core.queue`): personal arguments are not written as
    text in the header, which the worker logs (:data:`~solomo.core.tasknames.PERSONAL_ARGS`)."""
    shown = names.personal_argsrepr(sender or "")
    if shown is not None and headers is not None:
        headers["argsrepr"] = shown


app = make_celery(load_settings())
instrument_celery(app.conf.solomo_settings)


@worker_init.connect
def _freeze_startup_heap(**_: object) -> None:
    """The imported modules (pypinyin's dictionary among them) out of the full collections; before
    the pool forks, so its processes inherit the frozen heap (and share its pages)."""
    freeze_startup_heap()


@worker_shutdown.connect
def _close_connections(**_: object) -> None:
    from workers import runtime

    runtime.close_all()
