"""The group writer's answers when a group fails: who else learns the error, and who is still written.

The writes here are plain coroutines recording what they were given: the writer's queueing and
answering is what is under test (the MongoDB drill, ``tests/faults/test_mongo_outage.py``, runs the
real check-in and claim writers through a real outage)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from solomo.core.groupwrite import GroupWriter


class Writes:
    """A write function: the groups it was given; the first group waits for ``release`` and then
    raises ``first_error``; every later group is written."""

    def __init__(self, first_error: BaseException) -> None:
        self.groups: list[list[str]] = []
        self.release = asyncio.Event()
        self.first_error = first_error

    async def __call__(self, items: list[str]) -> list[str | BaseException]:
        self.groups.append(list(items))
        if len(self.groups) == 1:
            await self.release.wait()
            raise self.first_error
        return [f"written {item}" for item in items]


def one_at_a_time(items: list[str]) -> list[int]:
    return [0]


async def _first_group_fails_with(error: BaseException) -> tuple[Writes, GroupWriter[str, str], list[object]]:
    """Submits "a", "b" and "c", one a group; "a"'s group fails with ``error`` once "b" and "c" wait
    behind it. Returns the writes, the writer and the three answers."""
    writes = Writes(first_error=error)
    writer: GroupWriter[str, str] = GroupWriter(writes, take=one_at_a_time, per_item=(ValueError,))
    tasks = [asyncio.create_task(writer.submit(item)) for item in ("a", "b", "c")]
    for _ in range(100):  # bounded: the writer task starts on the next loop turns
        if writes.groups:
            break
        await asyncio.sleep(0)
    assert writes.groups == [["a"]]
    writes.release.set()
    return writes, writer, await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_outage_is_the_answer_of_everything_queued_behind_the_group():
    outage = ServerSelectionTimeoutError("no primary")
    writes, writer, answers = await _first_group_fails_with(outage)
    assert answers == [outage, outage, outage]
    assert writes.groups == [["a"]], "the queued ones were not tried one group after another"
    assert writer.idle
    # what arrives after the outage is written as usual
    assert await writer.submit("d") == "written d"
    assert writes.groups == [["a"], ["d"]]


async def test_another_error_is_the_answer_of_its_group_only():
    failure = RuntimeError("not an outage")
    writes, _, answers = await _first_group_fails_with(failure)
    assert answers == [failure, "written b", "written c"]
    assert writes.groups == [["a"], ["b"], ["c"]]


@pytest.mark.parametrize("error", [AutoReconnect("cut"), ServerSelectionTimeoutError("no primary")])
async def test_a_group_split_by_a_per_item_error_stops_at_the_outage(error):
    """A group refused as a whole by an error of one item is tried item by item; an outage on the
    first item is the answer of the others, which are not tried."""
    calls: list[list[str]] = []

    async def write(items: list[str]) -> list[str | BaseException]:
        calls.append(list(items))
        if len(items) > 1:
            raise ValueError("one of these items")
        raise error

    writer: GroupWriter[str, str] = GroupWriter(write, take=lambda items: list(range(len(items))),
                                                per_item=(ValueError,))
    tasks = [asyncio.create_task(writer.submit(item)) for item in ("a", "b", "c")]
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert answers == [error, error, error]
    assert calls == [["a", "b", "c"], ["a"]]
