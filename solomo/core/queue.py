"""Sending Celery tasks from the API by name (the API never imports task code).

``send`` is on the hot path (every post and check-in enqueues its fan-out). Celery's own
``send_task`` is synchronous: run in a thread it costs ≈ 0.45 ms of CPU per task plus a thread
hop, and its pure-Python publishing competes with the event loop for the GIL. With a Redis broker
(the only one SoLoMo deploys) the publish itself is a single ``LPUSH`` of a JSON envelope, so
:class:`TaskQueue` builds the task message with Celery's own code (``amqp.create_task_message``:
task protocol 2 headers and body, routing by ``task_routes``) and pushes kombu's Redis envelope
with the app's asyncio Redis client — one awaited round trip, no thread. Any other broker, or a
route that is not a plain direct-exchange queue, goes through ``send_task`` in a thread as before.

The envelope is what kombu's Redis transport writes for a direct queue (anonymous exchange, the
routing key is the queue's name; ``tests/test_task_queue.py`` compares the two field by field and
has a real worker run a task sent this way): so the worker's late acknowledgement and its
re-delivery after a crash work unchanged.

Celery's message costs ~110 µs to make (its ``saferepr`` of the arguments, its configuration
lookups, kombu's serializer), about a tenth of a check-in's CPU in the API. Nearly all of it is the same
for every task of one name: so the message Celery makes is kept per task name (and queue, process
and reply address) as a :class:`_Template`, and a task whose arguments are plain — ids, names,
numbers (:func:`_plain`), for which ``repr`` and JSON are exactly what Celery's ``saferepr`` and
kombu's serializer write — gets that message with its own id, arguments and delivery tag. Any other
task (a countdown, other arguments) is made by Celery as before.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from celery import Celery
from kombu.serialization import dumps as kombu_dumps
from redis.asyncio import Redis

from solomo.core.redisio import DRIVER
from solomo.core.tasknames import args_text, personal_argsrepr

DELIVERY_PERSISTENT = 2
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.:\-]{0,64}")
"""Text whose ``repr`` is Celery's ``saferepr`` and whose JSON is kombu's: ids, names, task keys."""
_PLAIN_MAX_ARGS = 16


def _plain(args: list[Any]) -> bool:
    """Whether a task's arguments may take its :class:`_Template` (see the module's note)."""
    return 0 < len(args) <= _PLAIN_MAX_ARGS and all(
        a is None or type(a) is int or type(a) is bool or (type(a) is str and _PLAIN_TEXT.fullmatch(a) is not None)
        for a in args)


@dataclass(frozen=True)
class _Template:
    """Celery's message for one task name, made once with no arguments: what a plain task changes
    in it is its id (``id``, ``root_id``, ``correlation_id``), ``argsrepr``, the body's arguments
    and the delivery tag."""

    headers: dict[str, Any]
    properties: dict[str, Any]
    body_after_args: str
    """The body's JSON after its arguments' list: ``, {}, {"callbacks": null, ...}]``."""
    content_type: str
    content_encoding: str


class TaskQueue:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app
        conf = celery_app.conf
        url = str(conf.broker_url or "")
        direct = (url.startswith(("redis://", "rediss://", "unix://"))
                  and not (conf.broker_transport_options or {}).get("global_keyprefix")
                  and conf.task_serializer == "json" and not conf.task_compression
                  and conf.task_default_delivery_mode in (None, "persistent", DELIVERY_PERSISTENT))
        self._broker: Redis | None = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10,
                                                      driver_info=DRIVER) \
            if direct else None
        self._queues: dict[str, str | None] = {}  # task name → queue name (None: not a direct queue)
        self._templates: dict[tuple[str, str, str, int], _Template | None] = {}

    def send_sync(self, name: str, *args: Any, countdown: float | None = None) -> None:
        self.celery.send_task(name, args=list(args), countdown=countdown)

    async def send(self, name: str, *args: Any, countdown: float | None = None) -> None:
        """Enqueue; raises if the broker cannot be reached (callers rely on their outbox sweeps)."""
        queue = self._queue_for(name) if self._broker is not None else None
        if queue is None:
            await asyncio.to_thread(self.send_sync, name, *args, countdown=countdown)
            return
        assert self._broker is not None
        await self._broker.lpush(queue, self.envelope(name, list(args), queue, countdown))

    async def send_many(self, name: str, arg_lists: list[tuple[Any, ...]]) -> None:
        """Enqueue task ``name`` once per argument tuple: one ``LPUSH`` of all their envelopes (a
        group commit's fan-outs, :mod:`checkins.groupcommit`), taken by the workers in this order."""
        queue = self._queue_for(name) if self._broker is not None else None
        if queue is None:
            for args in arg_lists:
                await asyncio.to_thread(self.send_sync, name, *args)
            return
        assert self._broker is not None
        if arg_lists:
            await self._broker.lpush(queue, *(self.envelope(name, list(args), queue) for args in arg_lists))

    def _queue_for(self, name: str) -> str | None:
        if name not in self._queues:
            options = self.celery.amqp.router.route({}, name, (), {}, None)
            queue = options.get("queue")
            simple = (queue is not None and options.get("exchange") is None and options.get("routing_key") is None
                      and getattr(queue.exchange, "type", "direct") == "direct" and not queue.queue_arguments
                      and not queue.expires and not queue.max_priority)
            self._queues[name] = queue.name if simple else None
        return self._queues[name]

    def envelope(self, name: str, args: list[Any], queue: str, countdown: float | None = None) -> bytes:
        """The JSON that kombu's Redis transport pushes for this task on ``queue``."""
        template = self._template_for(name, queue) if countdown is None and _plain(args) else None
        if template is not None:
            return self._from_template(template, name, args, queue)
        task_id = str(uuid.uuid4())
        headers, properties, body, _ = self.celery.amqp.create_task_message(
            task_id, name, args, {}, countdown=countdown, reply_to=self.celery.thread_oid,
            create_sent_event=False, ignore_result=None,
            argsrepr=personal_argsrepr(name))
        content_type, content_encoding, payload = kombu_dumps(body, serializer=self.celery.conf.task_serializer)
        raw = payload.encode(content_encoding) if isinstance(payload, str) else payload
        return self._wrap(raw, content_type, content_encoding, headers, properties, queue)

    def _template_for(self, name: str, queue: str) -> _Template | None:
        reply_to = self.celery.thread_oid
        key = (name, queue, reply_to, os.getpid())  # the origin header names the process
        if key not in self._templates:
            self._templates[key] = self._template(name, reply_to)
        return self._templates[key]

    def _from_template(self, template: _Template, name: str, args: list[Any], queue: str) -> bytes:
        task_id = str(uuid.uuid4())
        raw = ("[" + json.dumps(args) + template.body_after_args).encode(template.content_encoding)
        headers = {**template.headers, "id": task_id, "root_id": task_id, "argsrepr": args_text(name, args)}
        properties = {**template.properties, "correlation_id": task_id}
        return self._wrap(raw, template.content_type, template.content_encoding, headers, properties, queue)

    def _template(self, name: str, reply_to: str) -> _Template | None:
        """Celery's message for ``name`` with no arguments; None (Celery makes each one) when its
        body is not the JSON list this class knows how to fill."""
        headers, properties, body, _ = self.celery.amqp.create_task_message(
            "", name, [], {}, reply_to=reply_to, create_sent_event=False, ignore_result=None)
        content_type, content_encoding, payload = kombu_dumps(body, serializer=self.celery.conf.task_serializer)
        text = payload.decode(content_encoding) if isinstance(payload, bytes) else payload
        if not text.startswith("[[], "):
            return None
        return _Template(headers, properties, text[len("[[]"):], content_type, content_encoding)

    @staticmethod
    def _wrap(raw: bytes, content_type: str, content_encoding: str, headers: dict[str, Any],
              properties: dict[str, Any], queue: str) -> bytes:
        return orjson.dumps({
            "body": base64.b64encode(raw).decode("ascii"),
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": DELIVERY_PERSISTENT,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        })

    async def aclose(self) -> None:
        if self._broker is not None:
            await self._broker.aclose()
