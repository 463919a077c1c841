"""The per-process hub: one Redis subscription, routing events to this process's sockets.

Every API process subscribes once to ``rt:events`` (events, see :mod:`solomo.core.events`)
and ``rt:control`` (commands such as "disconnect this user" or "close these sockets", see
:mod:`solomo.core.control`). There is no Redis connection per socket. Routing is a dict
lookup and a hand-over to each socket that never waits: written at once to a socket that keeps
up, queued (bounded) behind a write that has to wait (:mod:`solomo.realtime.connection`).

Each socket holds one of its user's slots (:mod:`solomo.realtime.slots`); the oldest beyond the
cap is closed with 4409, here or, through ``rt:control``, in the process that holds it. Every
``settings.ws_close_poll_s`` the hub also reads the pending socket closes that suspensions and
deletions record in MongoDB (the outbox in :mod:`solomo.core.control`): a lost control message
delays a close by one poll, never forever.

If the subscription breaks, events published meanwhile never reach this process; the hub then
closes its sockets with 1012 so clients reconnect with ``last_event_id`` and replay the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio import RedisCluster

from solomo.core.closecodes import GOING_AWAY, TOO_MANY_SOCKETS
from solomo.core.control import pending_closes, publish_evict
from solomo.core.events import event_key
from solomo.core.keys import CONTROL_CHANNEL
from solomo.core.keys import EVENTS_CHANNEL as CHANNEL
from solomo.core.metrics import EVENTS_DELIVERED
from solomo.core.presence import Presence
from solomo.core.services import Services
from solomo.realtime.connection import Connection, frame_type
from solomo.realtime.rechecks import TokenRechecks, token_problem
from solomo.realtime.slots import Slots, slot_process

log = logging.getLogger("solomo.realtime")

LocationListener = Callable[[Any, str, float, float], Awaitable[Any]]


class Hub:
    def __init__(self, services: Services, *, pid: str | None = None) -> None:
        self.services = services
        self.redis = services.redis
        self.pid = pid or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.by_user: dict[str, set[Connection]] = {}
        self.by_slot: dict[str, Connection] = {}
        self.slots = Slots(self.redis, services.settings.ws_max_sockets_per_user)
        self.close_poll_s = services.settings.ws_close_poll_s
        self.presence = Presence(self.redis, self.pid, stale_after_s=services.settings.ws_process_stale_s)
        self.location_listeners: list[LocationListener] = []
        self.heartbeat_s = services.settings.ws_heartbeat_s
        self.rechecks = TokenRechecks(lambda token: token_problem(services, token), services.settings.ws_recheck_s)
        self._dirty: dict[str, bool] = {}
        self._dirty_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._subscribed = asyncio.Event()
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.presence.heartbeat()
        self._tasks = [
            asyncio.create_task(self._listen(), name="rt-listen"),
            asyncio.create_task(self._flush_presence(), name="rt-presence"),
            asyncio.create_task(self._heartbeat(), name="rt-heartbeat"),
            asyncio.create_task(self._poll_closes(), name="rt-close-poll"),
            asyncio.create_task(self.rechecks.run(), name="rt-token-recheck"),
        ]
        async with asyncio.timeout(10):
            await self._subscribed.wait()

    async def stop(self) -> None:
        conns = [c for group in self.by_user.values() for c in group]
        for conn in conns:
            conn.finish(GOING_AWAY, "server restarting")
        # Cancellation can be swallowed inside a client library's own timeout (asyncio.timeout
        # turns a cancel that races its deadline into TimeoutError), so the loops also check
        # ``_stopping`` and the wait is bounded: stopping never hangs the process.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5.0)
            for task in pending:
                log.warning("hub task %s did not stop in time", task.get_name())
        with contextlib.suppress(Exception):
            await self.presence.leave()

    # -- sockets --------------------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        group = self.by_user.setdefault(conn.user_id, set())
        group.add(conn)
        self.by_slot[conn.slot] = conn
        if len(group) == 1:
            self._mark(conn.user_id, True)

    def remove(self, conn: Connection) -> None:
        group = self.by_user.get(conn.user_id)
        if group is None or conn not in group:
            return
        group.discard(conn)
        self.by_slot.pop(conn.slot, None)
        if not group:
            del self.by_user[conn.user_id]
            self._mark(conn.user_id, False)

    async def claim_slot(self, conn: Connection) -> None:
        """Counts ``conn`` against its user's cap; closes (4409) the oldest sockets beyond it."""
        evicted = await self.slots.claim(conn.user_id, conn.slot)
        remote = [slot for slot in evicted if not self._evict(slot)]
        if remote:
            await publish_evict(self.redis, remote, TOO_MANY_SOCKETS, "too many sockets")

    async def release_slot(self, conn: Connection) -> None:
        await self.slots.release(conn.user_id, conn.slot)

    def _evict(self, slot: str, code: int = TOO_MANY_SOCKETS, reason: str = "too many sockets") -> bool:
        """Closes the socket holding ``slot`` if it is in this process; False: it is elsewhere."""
        if slot_process(slot) != self.pid:
            return False
        conn = self.by_slot.get(slot)
        if conn is not None:
            conn.finish(code, reason)
        return True

    def close_user(self, user_id: str, code: int, reason: str, token_hash: str | None = None,
                   keep: str | None = None) -> None:
        """Closes the user's sockets here (only those opened with ``token_hash``, if given; all but
        those opened with ``keep``, if given: a password change keeps the changer's own token)."""
        for conn in list(self.by_user.get(user_id, ())):
            if (token_hash is None or conn.token_hash == token_hash) and (keep is None or conn.token_hash != keep):
                conn.finish(code, reason[:120])

    def connection_count(self) -> int:
        return sum(len(g) for g in self.by_user.values())

    def _mark(self, user_id: str, present: bool) -> None:
        self._dirty[user_id] = present
        self._dirty_event.set()

    # -- routing --------------------------------------------------------------------------------
    def route(self, payload: str) -> int:
        """Deliver one ``rt:events`` message to local sockets: a head and a tail line shared by its
        frames, then lines of ``uid id part`` (wire format: :mod:`solomo.core.events`). A frame is
        built only for a user held here, once however many of their sockets are here."""
        lines = payload.split("\n")
        if len(lines) < 3:
            return 0
        head, tail = lines[0], lines[1]
        by_user = self.by_user
        delivered = queued = 0
        for i in range(2, len(lines)):
            line = lines[i]
            uid, _, rest = line.partition(" ")
            conns = by_user.get(uid)
            if not conns:
                continue
            eid, _, part = rest.partition(" ")
            try:
                key = event_key(eid)
            except ValueError:
                continue
            frame = '{"id":"' + eid + head + part + tail
            for conn in conns:  # deliver() never changes the set: a finished socket leaves it later
                if conn.deliver(key, frame):
                    queued += 1
                delivered += 1
        if queued:  # by event type, counted once per message (cheap on big broadcasts)
            EVENTS_DELIVERED.labels(type=frame_type('{"id":""' + head)).inc(queued)
        return delivered

    def control(self, payload: str) -> None:
        try:
            command = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        try:
            code, reason = int(command.get("code", 4403)), str(command.get("reason", ""))
        except (AttributeError, TypeError, ValueError):  # not a command of ours: ignored, never fatal
            return
        if command.get("op") == "disconnect":  # with "token": only the sockets opened with it (logout);
            # with "keep": all but those (a password change)
            self.close_user(str(command.get("user_id")), code, reason, command.get("token"), command.get("keep"))
        elif command.get("op") == "evict":
            for slot in command.get("sockets") or ():
                self._evict(str(slot), code, reason)

    def _running(self) -> bool:
        # a call, not an attribute test: the flag changes while this coroutine awaits
        return not self._stopping

    async def _listen(self) -> None:
        backoff = 0.2
        while self._running():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL, CONTROL_CHANNEL)
                self._subscribed.set()
                backoff = 0.2
                while self._running():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    if message["channel"] == CHANNEL:
                        self.route(message["data"])
                    else:
                        self.control(message["data"])
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:
                log.warning("event subscription lost (%s); closing local sockets so they resume", exc)
                for group in list(self.by_user.values()):
                    for conn in list(group):
                        conn.finish(GOING_AWAY, "event subscription lost; reconnect with last_event_id")
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await self._notice_topology()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _notice_topology(self) -> None:
        """On a Redis Cluster a subscription goes to the master that the client last knew for the
        channel's slot: once that master died, every new one would try the dead node again until
        some other command happened to refresh the client's view. A keyed command on that slot
        makes redis-py notice (and re-read the slots), so the next attempt finds the new master."""
        if isinstance(self.redis, RedisCluster):
            with contextlib.suppress(Exception):
                await self.redis.exists(CHANNEL)

    async def _flush_presence(self) -> None:
        while not self._stopping:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            changes, self._dirty = self._dirty, {}
            try:
                await self.presence.apply(changes)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried with the next change or heartbeat
                log.warning("presence update failed: %s", exc)
                for uid, present in changes.items():
                    self._dirty.setdefault(uid, present)
                await asyncio.sleep(1.0)
                self._dirty_event.set()

    async def _poll_closes(self) -> None:
        """The outbox side of closing an account's sockets (see the module docstring)."""
        while not self._stopping:
            await asyncio.sleep(self.close_poll_s)
            if not self.by_user:
                continue
            try:
                for user_id, code, reason in await pending_closes(self.services.db):
                    self.close_user(user_id, code, reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next poll retries; the sockets' token re-check backs it up
                log.warning("reading pending socket closes failed: %s", exc)

    async def _heartbeat(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.presence.heartbeat()
                # re-assert our users: a sweep elsewhere may have rebuilt the online sets while we were slow
                if self.by_user:
                    for uid in list(self.by_user):
                        self._dirty.setdefault(uid, True)
                    self._dirty_event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("presence heartbeat failed: %s", exc)
