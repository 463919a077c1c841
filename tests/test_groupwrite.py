"""``solomo.core.groupwrite``: groups written at once never hold clashing items, each item is
answered once, and one key's items are written in the order they came."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from solomo.core.groupwrite import GroupWriter

Item = tuple[str, int]  # (the key two groups written at once must not share, its place in line)


def _take(queued: list[Item], writing: list[Item]) -> list[int]:
    """At most six a group, one per key, none of a key being written."""
    keys = {key for key, _ in writing}
    chosen = []
    for i, (key, _) in enumerate(queued):
        if key not in keys and len(chosen) < 6:
            keys.add(key)
            chosen.append(i)
    return chosen


async def test_groups_written_at_once_never_clash_and_keep_each_keys_order():
    in_flight: list[list[Item]] = []
    most = 0
    written: dict[str, list[int]] = defaultdict(list)

    async def write(items: list[Item]) -> list[int]:
        nonlocal most
        for other in in_flight:
            assert not {key for key, _ in items} & {key for key, _ in other}
        in_flight.append(items)
        most = max(most, len(in_flight))
        await asyncio.sleep(0.005 * (1 + len(items) % 3))  # groups end in another order than they began
        in_flight.remove(items)
        for key, n in items:
            written[key].append(n)
        return [n for _, n in items]

    writer = GroupWriter(write, take=_take, per_item=(), writers=3, spread_at=4)
    items = [(f"k{i % 23}", i) for i in range(150)]
    answers = await asyncio.gather(*(writer.submit(item) for item in items))
    assert answers == [n for _, n in items]
    assert most == 3  # three groups at once, never more
    assert all(ns == sorted(ns) for ns in written.values()) and sum(map(len, written.values())) == len(items)
    assert writer.idle


async def test_one_writer_writes_one_group_at_a_time():
    in_flight = 0
    most = 0

    async def write(items: list[Item]) -> list[int]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return [n for _, n in items]

    writer = GroupWriter(write, take=_take, per_item=())
    items = [(f"k{i % 5}", i) for i in range(60)]
    assert await asyncio.gather(*(writer.submit(item) for item in items)) == [n for _, n in items]
    assert most == 1 and writer.idle
