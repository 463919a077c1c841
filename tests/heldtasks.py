"""Tasks held on the real broker: the test decides when (and whether) each one runs.

:meth:`HeldTasks.install` routes every task name of the API's :class:`~solomo.core.queue.TaskQueue`
(``services.tasks``) to a queue of its own on the broker Redis, ``held_<uuid>``, that no worker
consumes. ``send`` and ``send_many`` are not replaced: they build Celery's real message (a countdown
too: its ``eta`` header) and ``LPUSH`` kombu's envelope, only onto that queue. Reading what was sent
is reading that list; :meth:`HeldTasks.take` removes the message it returns, and the test runs the
task's function in-process when it wants to. Install it through the ``hold_tasks`` fixture
(``tests/conftest.py``), which deletes the queue after the test.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from redis.asyncio import Redis


class HeldTasks:
    def __init__(self, broker: Redis, queue: str) -> None:
        self.broker = broker
        self.queue = queue

    @classmethod
    def install(cls, services: Any, monkeypatch: Any) -> HeldTasks:
        """From now on every task ``services.tasks`` sends waits on this test's own queue."""
        broker = services.tasks._broker
        if broker is None:
            raise AssertionError("services.tasks has no direct Redis broker: tasks cannot be held on it "
                                 f"(broker_url {services.tasks.celery.conf.broker_url!r})")
        held = cls(broker, f"held_{uuid.uuid4().hex}")
        # on the instance, its own attribute: monkeypatch's undo takes it away (the class's method again)
        monkeypatch.setitem(vars(services.tasks), "_queue_for", held._queue_for)
        return held

    def _queue_for(self, name: str) -> str:
        return self.queue

    async def _raw(self) -> list[bytes]:
        """The held messages as pushed, oldest first (``LPUSH`` puts the newest at the head)."""
        return list(reversed(await self.broker.lrange(self.queue, 0, -1)))

    async def messages(self) -> list[dict[str, Any]]:
        """kombu's envelopes of the held tasks, oldest first."""
        return [json.loads(raw) for raw in await self._raw()]

    async def sent(self) -> list[tuple[str, tuple[Any, ...]]]:
        """``(task name, its arguments)`` for each held task, oldest first."""
        return [_task(message) for message in await self.messages()]

    async def take(self, name: str) -> str:
        """The first argument of the oldest held task ``name`` (a post's or an offer's id); its
        message leaves the queue."""
        for raw in await self._raw():
            task, args = _task(json.loads(raw))
            if task == name:
                assert await self.broker.lrem(self.queue, -1, raw) == 1
                return str(args[0]) if args else ""
        raise AssertionError(f"no {name} task was sent: {await self.sent()}")

    async def delete(self) -> None:
        await self.broker.delete(self.queue)


def _task(message: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The task name and arguments of kombu's envelope of a Celery message (task protocol 2, JSON)."""
    assert message["content-type"] == "application/json", message["content-type"]
    assert message["properties"]["body_encoding"] == "base64"
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert kwargs == {}, kwargs
    return message["headers"]["task"], tuple(args)
