"""The sockets' token re-checks: one schedule per process, not a sleeping task per socket.

A socket's token is checked again every ``settings.ws_recheck_s`` (the first time after a random
share of it, so sockets opened together do not check together): expiry, revocation, deletion and
suspension close it (4401 or 4403) within that interval and a tick, even when the fast pub/sub
message was lost (:mod:`solomo.realtime.session`).

Why one schedule. A task per socket sleeping for the interval held a task, its coroutine, a future,
a timer handle and the timer's context for every socket, all made again at each re-check. With
2,000 sockets, nearly all of them were young at every young garbage collection, which walked them
each time: about a quarter of the objects such a collection visits in the soak, and ~40 % of its
pause (docs/benchmarks.md, thirty-seventh round). Here the schedule is a heap of small
``(due, seq, slot)`` entries; one task wakes every :data:`TICK_S` and re-checks the sockets that are
due, :data:`BATCH` at a time. A tick is short, so the checks of 2,000 sockets come a few at a time,
not in a burst that would hold up the events being sent.

A slow token store holds up every due socket, not one: so a turn's checks have
:data:`CHECK_TIMEOUT_S`, and a tick starts no turn after that long; a check that failed or ran out
of time is tried again an interval on, as a good one is (the socket stays: the store decides at a
later check), and the sockets not reached stay due, for the next tick. A socket that closes leaves the schedule at once
(:meth:`TokenRechecks.forget`); its heap entry, three small values, is dropped when it comes due,
and the heap is rebuilt when it holds more than twice the open sockets plus :data:`SPARE_ENTRIES`
entries (a burst of reconnections).
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

TICK_S = 0.25
"""How often the schedule wakes (at most; a quarter of the interval when that is shorter): a
re-check comes this much late at most, while the token store keeps up."""
BATCH = 128
"""Re-checks run together at most; a tick with more due runs them in turns of this many."""
CHECK_TIMEOUT_S = 5.0
"""The longest a turn's re-checks may take, and after which a tick starts no more turns."""
SPARE_ENTRIES = 1024
"""How many entries beyond twice the open sockets the heap may hold before it is rebuilt."""


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

    def __init__(self, check: Check, interval_s: float, *, tick_s: float = TICK_S,
                 timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.check = check
        self.interval_s = interval_s
        self.tick_s = min(tick_s, interval_s / 4)
        self.timeout_s = timeout_s
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
        if self._watching(conn):
            del self._watched[conn.slot]
        if len(self._heap) > 2 * len(self._watched) + SPARE_ENTRIES:
            self._heap = [entry for entry in self._heap if entry[2] in self._watched]
            heapq.heapify(self._heap)

    async def run(self) -> None:
        """Wakes every tick and re-checks the sockets due, until cancelled (the hub's stop)."""
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.check_due(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:  # never stop re-checking (check_due loses no socket on the way out)
                log.exception("token re-checks failed")

    async def check_due(self, now: float) -> int:
        """Re-checks the sockets due at ``now``, :data:`BATCH` at a time; closes those whose token
        went and schedules the others' next re-check one interval on (a check that failed or ran
        out of time too: a store in trouble is not asked again at once). A tick starts no turn once
        its time is up: the sockets not reached stay due, for the next tick. Returns how many were
        asked."""
        deadline = time.monotonic() + self.timeout_s
        asked = failed = 0
        while time.monotonic() < deadline and (turn := self._take_due(now)):
            checks = [asyncio.ensure_future(self.check(token)) for _, token in turn]
            try:
                _, late = await asyncio.wait(checks, timeout=self.timeout_s)
            except BaseException:  # the hub is stopping: no check outlives it, no socket is lost
                for task in checks:
                    task.cancel()
                for conn, _ in turn:
                    if self._watching(conn):
                        self._push(now, conn.slot)
                raise
            for task in late:
                task.cancel()
            for (conn, _), task in zip(turn, checks, strict=True):
                asked += 1
                problem = None
                # cancelled: ours (late), or a cancellation the check met inside (a shared
                # pipeline's send task cancelled fails its waiters with CancelledError)
                if task in late or task.cancelled() or task.exception() is not None:
                    failed += 1
                else:
                    problem = task.result()
                if problem is not None:
                    conn.finish(*problem)
                    self.forget(conn)
                elif self._watching(conn):
                    self._push(now + self.interval_s, conn.slot)
        behind = bool(self._heap) and self._heap[0][0] <= now
        if failed or behind:
            log.warning("token re-checks: %d of %d failed or took too long%s", failed, asked,
                        "; more were due than the tick could ask" if behind else "")
        return asked

    def _take_due(self, now: float) -> list[tuple[Connection, str]]:
        """Up to :data:`BATCH` open sockets due at ``now``, out of the heap (closed ones dropped)."""
        turn: list[tuple[Connection, str]] = []
        while self._heap and self._heap[0][0] <= now and len(turn) < BATCH:
            _, _, slot = heapq.heappop(self._heap)
            watched = self._watched.get(slot)
            if watched is None or watched[0].done.is_set():
                self._watched.pop(slot, None)
                continue
            turn.append(watched)
        return turn

    def _watching(self, conn: Connection) -> bool:
        watched = self._watched.get(conn.slot)
        return watched is not None and watched[0] is conn

    def _push(self, due: float, slot: str) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), slot))
