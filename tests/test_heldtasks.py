"""The tests' held tasks (:mod:`tests.heldtasks`): Celery's own messages, waiting on the real broker
in a queue no worker reads, taken one at a time, and run by a real worker once moved to its queue."""

from __future__ import annotations

import base64
import json
import time
import uuid
from types import SimpleNamespace

import pytest
from celery import Celery

from solomo.core import tasknames
from solomo.core.queue import TaskQueue
from tests.heldtasks import HeldTasks
from tests.support import wait_until


async def test_held_tasks_are_celerys_messages_on_the_broker_and_a_worker_runs_them(services, hold_tasks,
                                                                                    celery_worker):
    held = hold_tasks()
    broker = services.tasks._broker
    now, later = f"ping:{uuid.uuid4().hex}", f"ping:{uuid.uuid4().hex}"
    started = time.monotonic()
    await services.tasks.send(tasknames.PING, now)
    await services.tasks.send(tasknames.PING, later, countdown=1.0)
    await services.tasks.send_many(tasknames.FANOUT_POST, [("a",), ("b",)])
    sent = [(tasknames.PING, (now,)), (tasknames.PING, (later,)),
            (tasknames.FANOUT_POST, ("a",)), (tasknames.FANOUT_POST, ("b",))]
    assert await held.sent() == sent  # oldest first, send and send_many alike
    messages = await held.messages()
    for message, (name, args) in zip(messages, sent, strict=True):  # task protocol 2, kombu's Redis envelope
        assert message["headers"]["task"] == name
        assert message["headers"]["id"] == message["headers"]["root_id"] == message["properties"]["correlation_id"]
        assert message["properties"]["delivery_info"] == {"exchange": "", "routing_key": held.queue}
        body, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        assert (body, kwargs) == (list(args), {})
    assert messages[0]["headers"]["eta"] is None and messages[1]["headers"]["eta"] is not None  # the countdown
    assert len({m["headers"]["id"] for m in messages}) == 4

    # take: the oldest of its name, and only that message, leaves the queue
    assert await held.take(tasknames.FANOUT_POST) == "a"
    assert [m["headers"]["id"] for m in await held.messages()] == [messages[i]["headers"]["id"] for i in (0, 1, 3)]
    assert await held.take(tasknames.FANOUT_POST) == "b"
    with pytest.raises(AssertionError, match=f"no {tasknames.FANOUT_POST} task was sent"):
        await held.take(tasknames.FANOUT_POST)
    assert await services.redis.get(now) is None  # held: no worker ran it

    # moved as they are to the queue the worker reads, oldest first: the worker runs both, the
    # second after its countdown
    real = TaskQueue._queue_for(services.tasks, tasknames.PING)
    assert real is not None and real != held.queue
    for _ in range(2):
        assert await broker.lmove(held.queue, real, "RIGHT", "LEFT") is not None
    assert await held.sent() == []
    assert await wait_until(lambda: services.redis.get(now)) == "pong"
    assert await wait_until(lambda: services.redis.get(later)) == "pong"
    assert time.monotonic() - started >= 1.0


async def test_holding_needs_the_direct_redis_broker(monkeypatch):
    tasks = TaskQueue(Celery("scratch", broker="memory://"))
    assert tasks._broker is None
    with pytest.raises(AssertionError, match="no direct Redis broker"):
        HeldTasks.install(SimpleNamespace(tasks=tasks), monkeypatch)
    assert "_queue_for" not in vars(tasks)
