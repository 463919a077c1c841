"""The sockets' token re-checks: one schedule per process, not a sleeping task per socket.

A socket's token is checked again every ``settings.ws_recheck_s`` (the first time after a random
share of it, so sockets opened together do not check together): expiry, revocation, deletion and
suspension close it (4401 or 4403) within that interval, even when the fast pub/sub message was
lost (:mod:`solomo.realtime.session`).

Why one schedule. A task per socket sleeping for the interval held a task, its coroutine, a future,
a timer handle and the timer's context for every socket, all made again at each re-check. With
2,000 sockets, nearly all of them were young at every young garbage collection, which walked them
each time: about a quarter of the objects such a collection visits in the soak, and of the loop
stall it costs (docs/benchmarks.md, thirty-seventh round). Here the schedule is a heap of small
``(due, seq, slot)`` entries, one task wakes every :data:`TICK_S` (a quarter of the interval when that
is shorter) and re-checks the sockets that are due, together.

A socket that closes leaves the schedule at once (:meth:`TokenRechecks.forget`); its heap entry,
three small values, is dropped when it comes due, and the heap is rebuilt if such entries ever
outnumber the live ones (a burst of reconnections), so it never holds more than a few times the
sockets open.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from solomo.core import closecodes as codes
from solomo.core.errors import ApiError

if TYPE_CHECKING:
    from solomo.core.services import Services
    from solomo.realtime.connection import Connection

log = logging.getLogger("solomo.realtime")

Problem = tuple[int, str]
"""Why a socket must close: its close code and reason."""
Check = Callable[[str], Awaitable[Problem | None]]
"""What a re-check asks of a token: the problem, or None while it is good."""

TICK_S = 1.0
"""How often the schedule wakes (at most): a re-check comes at most this late."""
BATCH = 128
"""Re-checks run together at most; a tick with more due runs them in turns of this many."""
SPARE_ENTRIES = 1024
"""Entries of closed sockets the heap may hold beyond twice the live ones before it is rebuilt."""


def refusal(exc: ApiError) -> Problem:
    """The close code and reason for a token the authenticator refused."""
    if exc.code == "account_suspended":
        return codes.FORBIDDEN, "account suspended"
    return codes.UNAUTHORIZED, "missing or invalid token"


async def token_problem(services: Services, token: str, *, fresh: bool = False) -> Problem | None:
    """Why the socket must close now (code, reason), or None while its token is good. A backing
    store that fails says nothing: the socket stays, and the next check decides."""
    try:
        await services.authenticator.principal_for_token(token, fresh=fresh)
    except ApiError as exc:
        return refusal(exc)
    except (RedisError, PyMongoError) as exc:
        log.warning("could not re-check a socket's token: %s", exc)
    return None


class TokenRechecks:
    """The re-check schedule of one process's sockets; :meth:`run` is the hub's task."""

    def __init__(self, check: Check, interval_s: float, *, tick_s: float = TICK_S) -> None:
        self.check = check
        self.interval_s = interval_s
        self.tick_s = min(tick_s, interval_s / 4)
        self._heap: list[tuple[float, int, str]] = []
        self._watched: dict[str, tuple[Connection, str]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, conn: Connection, token: str, now: float | None = None) -> None:
        """Schedules ``conn``'s first re-check of ``token`` after a random share (half to all) of
        the interval."""
        start = time.monotonic() if now is None else now
        self._watched[conn.slot] = (conn, token)
        self._push(start + self.interval_s * random.uniform(0.5, 1.0), conn.slot)

    def forget(self, conn: Connection) -> None:
        """``conn`` closed: it is not checked again (and not kept alive by the schedule)."""
        if self._watched.get(conn.slot, (None, ""))[0] is conn:
            del self._watched[conn.slot]
        if len(self._heap) > 2 * len(self._watched) + SPARE_ENTRIES:
            self._heap = [entry for entry in self._heap if entry[2] in self._watched]
            heapq.heapify(self._heap)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.check_due(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:  # never stop re-checking: a socket whose check failed is checked again
                log.exception("token re-checks failed")

    async def check_due(self, now: float) -> int:
        """Re-checks every socket due at ``now``; closes those whose token went and schedules the
        others' next re-check one interval on. Returns how many were checked."""
        due: list[tuple[Connection, str]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, slot = heapq.heappop(self._heap)
            watched = self._watched.get(slot)
            if watched is None or watched[0].done.is_set():
                self._watched.pop(slot, None)
                continue
            due.append(watched)
        for start in range(0, len(due), BATCH):
            turn = due[start:start + BATCH]
            results = await asyncio.gather(*(self.check(token) for _, token in turn), return_exceptions=True)
            for (conn, _), result in zip(turn, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("could not re-check the token of %s's socket: %s", conn.user_id, result)
                elif result is not None:
                    conn.finish(*result)
                    self.forget(conn)
                    continue
                if self._watched.get(conn.slot, (None, ""))[0] is conn:
                    self._push(now + self.interval_s, conn.slot)
        return len(due)

    def _push(self, due: float, slot: str) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), slot))
