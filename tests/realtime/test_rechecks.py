"""The sockets' token re-check schedule (solomo.realtime.rechecks): when each socket is checked,
what a token that went does to its socket, and that closed sockets leave the schedule.

Times are given to ``check_due`` explicitly: nothing here sleeps. The re-check against the real
token store and a live server is ``tests/security/test_api4_sockets.py``
(``test_expired_token_closes_the_socket_within_the_recheck``)."""

from __future__ import annotations

import asyncio
import time

from bson import ObjectId

from solomo.core import closecodes as codes
from solomo.realtime.connection import Connection
from solomo.realtime.rechecks import BATCH, SPARE_ENTRIES, Problem, TokenRechecks

INTERVAL = 30.0
GONE: Problem = (codes.UNAUTHORIZED, "missing or invalid token")


def _connection() -> Connection:
    uid = str(ObjectId())
    return Connection(ws=None, user_id=uid, queue_size=8, slot=f"p|{uid}")  # type: ignore[arg-type]  # no pump runs


class Tokens:
    """The check: tokens in ``gone`` are refused, tokens in ``failing`` raise, tokens in
    ``cancelled`` meet a cancellation inside (as a shared pipeline's waiters do when its send task
    is cancelled), tokens in ``hanging`` wait until ``answer`` is set; records every ask, how many
    ran at once at most, and how many waits were cancelled."""

    def __init__(self) -> None:
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.cancelled: set[str] = set()
        self.hanging: set[str] = set()
        self.answer = asyncio.Event()
        self.hung = asyncio.Event()
        self.asked: list[str] = []
        self.running = self.peak = self.waits_cancelled = 0

    async def __call__(self, token: str) -> Problem | None:
        self.asked.append(token)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(0)  # the others of the turn start meanwhile
            if token in self.hanging:
                self.hung.set()
                try:
                    await self.answer.wait()
                except asyncio.CancelledError:
                    self.waits_cancelled += 1
                    raise
        finally:
            self.running -= 1
        if token in self.cancelled:
            raise asyncio.CancelledError()
        if token in self.failing:
            raise RuntimeError("the token store is down")
        return GONE if token in self.gone else None


async def test_a_socket_is_first_checked_after_half_to_all_of_the_interval() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL)
    conns = [_connection() for _ in range(50)]
    for i, conn in enumerate(conns):
        rechecks.watch(conn, f"t{i}", now=0.0)
    assert await rechecks.check_due(INTERVAL * 0.5 - 0.001) == 0
    assert await rechecks.check_due(INTERVAL) == 50
    assert sorted(tokens.asked) == sorted(f"t{i}" for i in range(50))


async def test_a_token_that_went_closes_its_socket_and_the_others_are_checked_an_interval_on() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL)
    kept, closed = _connection(), _connection()
    rechecks.watch(kept, "kept", now=0.0)
    rechecks.watch(closed, "closed", now=0.0)
    tokens.gone.add("closed")

    assert await rechecks.check_due(INTERVAL) == 2
    assert closed.done.is_set() and closed.close_code == codes.UNAUTHORIZED
    assert not kept.done.is_set()
    assert len(rechecks) == 1

    tokens.asked.clear()
    assert await rechecks.check_due(2 * INTERVAL - 0.001) == 0  # the next one is an interval on
    assert await rechecks.check_due(2 * INTERVAL) == 1
    assert tokens.asked == ["kept"]

    tokens.gone.add("kept")  # a token that goes later closes its socket at its next re-check
    assert await rechecks.check_due(3 * INTERVAL) == 1
    assert kept.done.is_set() and len(rechecks) == 0


async def test_a_closed_socket_is_not_checked_again() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL)
    forgotten, finished, open_ = _connection(), _connection(), _connection()
    for conn in (forgotten, finished, open_):
        rechecks.watch(conn, conn.user_id, now=0.0)
    rechecks.forget(forgotten)  # the session ended
    finished.finish(codes.GOING_AWAY, "closing")  # closing, not yet forgotten
    assert await rechecks.check_due(INTERVAL) == 1
    assert tokens.asked == [open_.user_id]
    assert len(rechecks) == 1


async def test_a_check_that_fails_keeps_the_socket_and_is_tried_again() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL)
    conn = _connection()
    rechecks.watch(conn, "t", now=0.0)
    tokens.failing.add("t")
    assert await rechecks.check_due(INTERVAL) == 1
    assert not conn.done.is_set()
    assert await rechecks.check_due(2 * INTERVAL - 0.001) == 0  # not asked again at once
    tokens.failing.clear()
    tokens.gone.add("t")
    assert await rechecks.check_due(2 * INTERVAL) == 1
    assert conn.done.is_set()


async def test_the_schedule_keeps_no_more_than_a_bounded_trail_of_closed_sockets() -> None:
    rechecks = TokenRechecks(Tokens(), INTERVAL)
    survivor = _connection()
    rechecks.watch(survivor, "survivor", now=0.0)
    for _ in range(3 * SPARE_ENTRIES):  # a burst of sockets opened and closed within one interval
        conn = _connection()
        rechecks.watch(conn, "t", now=0.0)
        rechecks.forget(conn)
    assert len(rechecks) == 1
    assert len(rechecks._heap) <= 2 * len(rechecks) + SPARE_ENTRIES + 1
    assert await rechecks.check_due(INTERVAL) == 1


async def test_first_checks_are_spread_over_the_window() -> None:
    rechecks = TokenRechecks(Tokens(), INTERVAL)
    for i in range(200):
        rechecks.watch(_connection(), f"t{i}", now=0.0)
    early = await rechecks.check_due(INTERVAL * 0.75)
    assert 0 < early < 200  # all 200 on one side of the middle: a chance of 2 in 2**200
    assert early + await rechecks.check_due(INTERVAL) == 200


async def test_more_sockets_due_than_a_batch_are_all_checked_and_all_scheduled_again() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL)
    conns = [_connection() for _ in range(2 * BATCH + 44)]
    for conn in conns:
        rechecks.watch(conn, conn.user_id, now=0.0)
    tokens.gone.add(conns[-1].user_id)  # one in the last turn
    assert await rechecks.check_due(INTERVAL) == len(conns)
    assert tokens.peak == BATCH  # never more at once
    assert conns[-1].done.is_set() and not any(c.done.is_set() for c in conns[:-1])
    assert await rechecks.check_due(2 * INTERVAL) == len(conns) - 1


async def test_a_store_that_does_not_answer_holds_a_tick_for_its_time_only() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL, timeout_s=0.2)
    conns = [_connection() for _ in range(BATCH + 5)]
    for conn in conns:
        rechecks.watch(conn, conn.user_id, now=0.0)
    tokens.hanging.update(c.user_id for c in conns)
    asked = await rechecks.check_due(INTERVAL)  # the first turn hangs until the tick's time is up
    assert asked == BATCH
    assert not any(c.done.is_set() for c in conns)  # no answer closes nothing
    for _ in range(3):
        await asyncio.sleep(0)
    assert tokens.waits_cancelled == BATCH  # the late checks do not run on
    tokens.hanging.clear()
    tokens.gone.update(c.user_id for c in conns)
    # the sockets not reached come due at the next tick; those asked, an interval on
    assert await rechecks.check_due(INTERVAL + rechecks.tick_s) == 5
    assert sum(c.done.is_set() for c in conns) == 5
    assert await rechecks.check_due(2 * INTERVAL) == BATCH
    assert all(c.done.is_set() for c in conns)


async def test_a_check_that_meets_a_cancellation_inside_keeps_its_socket_and_the_schedule_going() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, INTERVAL)
    conns = [_connection() for _ in range(3)]
    for conn in conns:
        rechecks.watch(conn, conn.user_id, now=0.0)
    tokens.cancelled.add(conns[1].user_id)
    assert await rechecks.check_due(INTERVAL) == 3  # does not raise
    assert not any(c.done.is_set() for c in conns)
    tokens.cancelled.clear()
    tokens.gone.update(c.user_id for c in conns)
    assert await rechecks.check_due(2 * INTERVAL) == 3  # every one of them still scheduled
    assert all(c.done.is_set() for c in conns)


async def test_the_hub_task_closes_a_socket_whose_token_went_and_a_stop_loses_no_socket() -> None:
    tokens = Tokens()
    rechecks = TokenRechecks(tokens, 0.4)  # ticks every 0.1 s
    gone, stuck = _connection(), _connection()
    tokens.gone.add(gone.user_id)
    tokens.hanging.add(stuck.user_id)
    rechecks.watch(gone, gone.user_id, now=time.monotonic() - 0.4)  # due at the first tick
    rechecks.watch(stuck, stuck.user_id)  # due 0.2-0.4 s on, at a later tick
    task = asyncio.create_task(rechecks.run())
    try:
        async with asyncio.timeout(5):
            await gone.done.wait()
            await tokens.hung.wait()  # the stuck socket's check is under way
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gone.close_code == codes.UNAUTHORIZED and not stuck.done.is_set()
    await asyncio.sleep(0)
    assert tokens.waits_cancelled == 1  # no check outlives the stop
    assert len(rechecks) == 1 and [e[2] for e in rechecks._heap] == [stuck.slot]  # back in the schedule


def test_a_short_interval_ticks_at_least_four_times_within_it() -> None:
    assert TokenRechecks(Tokens(), 0.4).tick_s == 0.1
    assert TokenRechecks(Tokens(), INTERVAL).tick_s == 0.25
