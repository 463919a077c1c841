"""The API's task publisher: the message it pushes is the one Celery would, and a real worker runs it."""

from __future__ import annotations

import base64
import json
import time
import uuid

from celery import Celery
from kombu import Queue

from solomo.core import tasknames
from solomo.core.queue import TaskQueue, _plain
from tests.support import wait_until
from workers.app import make_celery

VARYING_HEADERS = {"id", "root_id", "eta"}
VARYING_PROPERTIES = {"correlation_id", "delivery_tag"}


def _scratch_app(settings, queue: str) -> Celery:
    app = make_celery(settings)
    app.conf.task_queues = [*app.conf.task_queues, Queue(queue)]
    app.conf.task_routes = {**app.conf.task_routes, "scratch.*": {"queue": queue}}
    return app


async def _pushed(services, queue: str) -> list[dict]:
    broker = TaskQueue(services.tasks.celery)._broker
    assert broker is not None
    try:
        return [json.loads(raw) for raw in reversed(await broker.lrange(queue, 0, -1))]
    finally:
        await broker.delete(queue)
        await broker.aclose()


def _same_message(theirs: dict, ours: dict, queue: str) -> None:
    """``ours`` is the envelope Celery pushed as ``theirs``, but for the task's own id and tag."""
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in ("headers", "properties", "body")} == \
           {k: v for k, v in theirs.items() if k not in ("headers", "properties", "body")}
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    assert {k: v for k, v in ours["headers"].items() if k not in VARYING_HEADERS} == \
           {k: v for k, v in theirs["headers"].items() if k not in VARYING_HEADERS}
    assert {k: v for k, v in ours["properties"].items() if k not in VARYING_PROPERTIES} == \
           {k: v for k, v in theirs["properties"].items() if k not in VARYING_PROPERTIES}
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert ours["headers"]["id"] != theirs["headers"]["id"]
    assert ours["properties"]["delivery_tag"] != theirs["properties"]["delivery_tag"]
    assert ours["properties"]["delivery_info"] == {"exchange": "", "routing_key": queue}


async def test_the_envelope_is_the_one_celery_pushes(settings, services):
    queue = f"scratch_{uuid.uuid4().hex[:8]}"
    app = _scratch_app(settings, queue)
    tasks = TaskQueue(app)
    try:
        for countdown in (None, 30):
            app.send_task("scratch.job", args=["abc", 2], countdown=countdown)
            await tasks.send("scratch.job", "abc", 2, countdown=countdown)
    finally:
        await tasks.aclose()
    theirs_now, ours_now, theirs_later, ours_later = await _pushed(services, queue)
    for theirs, ours in ((theirs_now, ours_now), (theirs_later, ours_later)):
        _same_message(theirs, ours, queue)
    assert ours_now["headers"]["eta"] is None
    assert ours_later["headers"]["eta"] is not None and theirs_later["headers"]["eta"] is not None


PLAIN_ARGUMENTS = [["6560a1b2c3d4e5f601234567"], ["abc", 2, None, True, -7, "a-b_c.d:e"]]
"""Arguments a task name's kept message takes (ids, names, whole numbers)."""
OTHER_ARGUMENTS = [[], ["it's"], ['say "hi"'], ["back\\slash"], ["咖啡"], ["x" * 65], [1.5], [{"a": 1}],
                   [["nested"]], list(range(17)), [10**30, "é"]]
"""Arguments Celery makes the message of: none (Celery writes them as ``()``), quotes, escapes,
non-ASCII, long text, floats, containers."""


async def test_every_kind_of_arguments_gets_the_message_celery_pushes(settings, services):
    queue = f"scratch_{uuid.uuid4().hex[:8]}"
    app = _scratch_app(settings, queue)
    tasks = TaskQueue(app)
    try:
        for args in [*PLAIN_ARGUMENTS, *OTHER_ARGUMENTS]:
            app.send_task("scratch.job", args=args)
            await tasks.send("scratch.job", *args)
            await tasks.send_many("scratch.job", [tuple(args)])
    finally:
        await tasks.aclose()
    pushed = await _pushed(services, queue)
    assert len(pushed) == 3 * (len(PLAIN_ARGUMENTS) + len(OTHER_ARGUMENTS))
    for i in range(0, len(pushed), 3):
        theirs, sent, sent_many = pushed[i:i + 3]
        _same_message(theirs, sent, queue)
        _same_message(theirs, sent_many, queue)
        assert sent["headers"]["id"] != sent_many["headers"]["id"]
    # the plain ones took the kept message (one for the task name), the others Celery's own path
    assert [_plain(a) for a in PLAIN_ARGUMENTS] == [True] * len(PLAIN_ARGUMENTS)
    assert [_plain(a) for a in OTHER_ARGUMENTS] == [False] * len(OTHER_ARGUMENTS)
    assert [key[0] for key, template in tasks._templates.items() if template is not None] == ["scratch.job"]


async def test_a_worker_runs_what_the_api_sends(services, celery_worker):
    assert services.tasks._broker is not None  # the direct path is the one in use
    key = f"ping:{uuid.uuid4().hex}"
    later = f"ping:{uuid.uuid4().hex}"
    started = time.monotonic()
    await services.tasks.send(tasknames.PING, later, countdown=1.0)
    await services.tasks.send(tasknames.PING, key)

    async def done(k: str):
        return await services.redis.get(k)

    assert await wait_until(lambda: done(key)) == "pong"
    assert await wait_until(lambda: done(later)) == "pong"
    assert time.monotonic() - started >= 1.0  # the countdown was kept


async def test_other_brokers_go_through_celery():
    app = Celery("scratch", broker="memory://")
    queue = f"scratch_{uuid.uuid4().hex[:8]}"
    app.conf.task_routes = {"scratch.*": {"queue": queue}}
    tasks = TaskQueue(app)
    assert tasks._broker is None
    await tasks.send("scratch.job", 1, "two")  # through send_task in a thread; the memory broker takes it
    await tasks.aclose()
    # delivered: the memory broker's queue holds exactly that task, with its arguments
    with app.connection_for_read() as conn:
        message = conn.SimpleQueue(queue).get(timeout=2)
        message.ack()
        assert message.headers["task"] == "scratch.job"
        assert message.decode()[0] == [1, "two"]
        assert conn.SimpleQueue(queue).qsize() == 0


async def test_many_in_one_push_arrive_in_order_and_a_worker_runs_them(settings, services, celery_worker):
    queue = f"scratch_{uuid.uuid4().hex[:8]}"
    app = _scratch_app(settings, queue)
    tasks = TaskQueue(app)
    try:
        await tasks.send_many("scratch.job", [("a", 1), ("b", 2), ("c", 3)])
        await tasks.send_many("scratch.job", [])
    finally:
        await tasks.aclose()
    pushed = await _pushed(services, queue)
    assert [json.loads(base64.b64decode(p["body"]))[0] for p in pushed] == [["a", 1], ["b", 2], ["c", 3]]
    assert len({p["headers"]["id"] for p in pushed}) == 3
    # and through the app's own publisher, to a real worker
    keys = [f"ping:{uuid.uuid4().hex}" for _ in range(3)]
    await services.tasks.send_many(tasknames.PING, [(k,) for k in keys])
    for k in keys:
        assert await wait_until(lambda k=k: services.redis.get(k)) == "pong"


async def test_personal_arguments_travel_but_are_never_written_as_text(settings, services, caplog):
    """Push frames (an offer's distance is measured from the user's own fix) go to the worker in the
    message's body; its ``argsrepr`` header, which the worker logs on receipt, success and failure,
    is a placeholder whoever made the message: Celery (a retry), our kept message, or Celery's path
    in ours. Other tasks keep theirs."""
    queue = f"scratch_{uuid.uuid4().hex[:8]}"
    app = _scratch_app(settings, queue)
    app.conf.task_routes = {**app.conf.task_routes, f"{tasknames.PUSH_PREFIX}*": {"queue": queue},
                            tasknames.FANOUT_POST: {"queue": queue}}
    frame = '{"type":"offer","data":{"distance_m":12.3}}'
    calls: list[tuple[str, list]] = [
        (tasknames.PUSH_SEND, ["6560a1b2c3d4e5f601234567", frame, 60, 1]),
        (tasknames.PUSH_SEND, ["6560a1b2c3d4e5f601234567", "distance_m-12", 60, 1]),  # plain: the kept message
        (tasknames.PUSH_DELIVER, [[["6560a1b2c3d4e5f601234567", frame, 60]]]),
    ]
    tasks = TaskQueue(app)
    try:
        for name, args in calls:
            app.send_task(name, args=args)
            await tasks.send(name, *args)
        await tasks.send(tasknames.PUSH_SEND, *calls[0][1], countdown=5)
        await tasks.send(tasknames.FANOUT_POST, "6560a1b2c3d4e5f601234567")
    finally:
        await tasks.aclose()
    pushed = await _pushed(services, queue)
    assert [p["headers"]["task"] for p in pushed] == [n for n, _ in calls for _ in (0, 1)] + [
        tasknames.PUSH_SEND, tasknames.FANOUT_POST]
    for i, (_, args) in enumerate(calls):
        theirs, ours = pushed[2 * i], pushed[2 * i + 1]
        _same_message(theirs, ours, queue)
        assert json.loads(base64.b64decode(ours["body"]))[0] == args  # carried whole
    for message in pushed[:-1]:
        assert message["headers"]["argsrepr"] == tasknames.PERSONAL_ARGSREPR
        assert "distance" not in json.dumps(message["headers"]), message["headers"]
    assert pushed[-1]["headers"]["argsrepr"] == repr(["6560a1b2c3d4e5f601234567"])
    # nor in our own log line when the broker is away
    from solomo.core.txn import send_task

    async def refused(name: str, *args: object, countdown: float | None = None) -> None:
        raise ConnectionError("broker away")

    real, services.tasks.send = services.tasks.send, refused
    try:
        assert not await send_task(services, tasknames.PUSH_SEND, "6560a1b2c3d4e5f601234567", frame, 60, 1)
    finally:
        services.tasks.send = real
    [line] = [r.getMessage() for r in caplog.records if "could not enqueue" in r.getMessage()]
    assert tasknames.PERSONAL_ARGSREPR in line and "distance" not in line, line
