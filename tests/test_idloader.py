"""Batched point reads (solomo.core.idloader) against the run's real MongoDB."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from solomo.core import idloader
from solomo.core.idloader import IdLoads


class CountingDb:
    """The real database; counts the ``find`` calls made on its collections."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.finds = 0

    def __getitem__(self, name: str) -> Any:
        outer = self
        collection = self.db[name]

        class Counted:
            def find(self, *args: Any, **kwargs: Any) -> Any:
                outer.finds += 1
                return collection.find(*args, **kwargs)

        return Counted()


@pytest.fixture(autouse=True)
async def _drop_things(services):
    yield
    await services.db.drop_collection("idloader_things")  # the erasure test allows only the app's collections


def _own(services: Any) -> tuple[Any, CountingDb]:
    counting = CountingDb(services.db)
    return replace(services, db=counting, extras={}), counting


async def _things(services: Any, n: int) -> list[ObjectId]:
    docs = [{"_id": ObjectId(), "n": i, "tag": uuid.uuid4().hex} for i in range(n)]
    await services.db.idloader_things.insert_many(docs)
    return [d["_id"] for d in docs]


async def test_loads_of_one_turn_share_one_query_and_get_their_own_documents(services):
    own, counting = _own(services)
    ids = await _things(services, 30)
    loads = IdLoads("idloader_things", {"n": 1})
    missing = ObjectId()
    answers = await asyncio.gather(*(loads.load(own, [ids[i], ids[i + 10], missing]) for i in range(10)))
    assert counting.finds == 1  # ten callers, one query
    for i, docs in enumerate(answers):
        assert docs == {ids[i]: {"_id": ids[i], "n": i}, ids[i + 10]: {"_id": ids[i + 10], "n": i + 10}}
    # a caller's copy is its own
    first, second = await asyncio.gather(loads.load(own, [ids[0]]), loads.load(own, [ids[0]]))
    first[ids[0]]["n"] = "changed"
    assert second[ids[0]]["n"] == 0
    assert counting.finds == 2


async def test_a_read_after_a_write_sees_it(services):
    own, _ = _own(services)
    loads = IdLoads("idloader_things")
    oid = ObjectId()
    await services.db.idloader_things.insert_one({"_id": oid, "n": "fresh"})
    assert (await loads.load(own, [oid]))[oid]["n"] == "fresh"


async def test_a_cancelled_caller_leaves_the_others_answered(services):
    own, counting = _own(services)
    ids = await _things(services, 2)
    loads = IdLoads("idloader_things", {"n": 1})
    leaving = asyncio.create_task(loads.load(own, [ids[0]]))
    staying = asyncio.create_task(loads.load(own, [ids[1]]))
    await asyncio.sleep(0)
    leaving.cancel()
    assert (await staying) == {ids[1]: {"_id": ids[1], "n": 1}}
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert counting.finds == 1


async def test_a_full_batch_goes_out_at_once(services, monkeypatch):
    monkeypatch.setattr(idloader, "MAX_IDS", 4)
    own, counting = _own(services)
    ids = await _things(services, 10)
    loads = IdLoads("idloader_things", {"n": 1})
    answers = await asyncio.gather(*(loads.load(own, ids[i:i + 2]) for i in range(0, 10, 2)))
    assert [sorted(d["n"] for d in docs.values()) for docs in answers] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert counting.finds == 3  # 4 + 4 + 2 ids


async def test_an_error_reaches_every_caller_of_the_batch(services):
    own, _ = _own(services)
    ids = await _things(services, 2)
    loads = IdLoads("idloader_things", {"n": 1, "tag": 0})  # inclusion and exclusion: the server refuses
    outcomes = await asyncio.gather(loads.load(own, [ids[0]]), loads.load(own, [ids[1]]), return_exceptions=True)
    assert all(isinstance(o, OperationFailure) for o in outcomes)
