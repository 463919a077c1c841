"""The per-user socket cap's Redis side (``solomo.realtime.slots``) and the socket-close outbox
(``solomo.core.control``), used directly against the real Redis and MongoDB."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from bson import ObjectId

from solomo.core import timeutil
from solomo.core.closecodes import FORBIDDEN
from solomo.core.control import CLOSE_WINDOW, SOCKET_CLOSE, clear_done_closes, close_command, pending_closes
from solomo.core.keys import PROCS, user_sockets
from solomo.realtime.slots import Slots, new_slot


async def test_the_oldest_slots_beyond_the_cap_are_returned_and_released(services):
    user, live, dead = uuid.uuid4().hex, f"p-{uuid.uuid4().hex[:6]}", f"gone-{uuid.uuid4().hex[:6]}"
    await services.redis.zadd(PROCS, {live: timeutil.now_ms()})
    slots = Slots(services.redis, cap=3)
    await services.redis.zadd(user_sockets(user), {new_slot(dead): 1})  # a crashed process's socket
    taken = []
    for _ in range(3):
        taken.append(new_slot(live))
        assert await slots.claim(user, taken[-1]) == []  # the dead one was dropped, not counted
        await asyncio.sleep(0.002)
    fourth = new_slot(live)
    assert await slots.claim(user, fourth) == [taken[0]]
    assert set(await services.redis.zrange(user_sockets(user), 0, -1)) == {*taken[1:], fourth}
    await slots.release(user, fourth)
    assert await services.redis.zcard(user_sockets(user)) == 2
    assert 0 < await services.redis.pttl(user_sockets(user))
    await services.redis.zrem(PROCS, live)


async def test_pending_closes_stay_readable_for_the_window_then_are_marked_done(services):
    now = datetime.now(UTC)
    fresh, old = ObjectId(), ObjectId()
    await services.db.users.insert_many([
        {"_id": fresh, "username_lower": f"t{fresh}", SOCKET_CLOSE: close_command(FORBIDDEN, "suspended", now)},
        {"_id": old, "username_lower": f"t{old}",
         SOCKET_CLOSE: close_command(FORBIDDEN, "suspended", now - CLOSE_WINDOW * 2)},
    ])
    pending = {uid: (code, reason) for uid, code, reason in await pending_closes(services.db, now)}
    assert pending[str(fresh)] == (FORBIDDEN, "suspended") and str(old) not in pending
    assert await clear_done_closes(services.db, now) >= 1
    assert SOCKET_CLOSE not in await services.db.users.find_one({"_id": old})
    assert SOCKET_CLOSE in await services.db.users.find_one({"_id": fresh})
    await services.db.users.delete_many({"_id": {"$in": [fresh, old]}})
