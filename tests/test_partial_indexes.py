"""Queries on a partial index say the index's filter, so MongoDB uses the index.

MongoDB's planner uses a partial index only for a query that implies the index's filter. A
comparison or an equality on a field implies ``$exists`` on that field, but nothing implies
``$type``, and a condition on ``a.b`` does not imply that ``a`` exists. Three queries had missed
that and scanned their whole collection (found by running the suite with mongod logging every
collection scan, docs/benchmarks.md, thirty-fourth round): an earning's ``once`` key in every
check-in at a partner store, every hub's poll of pending socket closes, an erasure's mayor seats.
Each now builds its filter with a helper, and each helper's plan is checked here on the suite's
own MongoDB, with the indexes the app creates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from loyalty.ledger import once_is
from profiles.erasure import seats_of
from solomo.core.control import closes_recorded

NOW = datetime.now(UTC)


async def _stages(services: Any, collection: str, query: dict[str, Any]) -> list[tuple[str, str | None]]:
    plan = (await services.db[collection].find(query).explain())["queryPlanner"]["winningPlan"]
    stages = []
    while plan:
        stages.append((plan["stage"], plan.get("indexName")))
        plan = plan.get("inputStage")
    return stages


@pytest.mark.parametrize(("collection", "query", "index"), [
    ("points_ledger", once_is("checkin:x"), "once_unique"),
    ("users", closes_recorded({"$gte": NOW}), "socket_close_pending"),
    ("users", closes_recorded({"$lt": NOW}), "socket_close_pending"),
    ("stores", seats_of(ObjectId()), "by_mayor"),
])
async def test_the_filter_is_served_by_its_partial_index(services, collection, query, index):
    stages = await _stages(services, collection, query)
    assert ("IXSCAN", index) in stages and ("COLLSCAN", None) not in stages, stages


@pytest.mark.parametrize(("collection", "query"), [
    ("points_ledger", {"once": "checkin:x"}),
    ("users", {"socket_close.at": {"$gte": NOW}}),
    ("stores", {"mayor_id": ObjectId()}),
])
async def test_without_the_indexs_filter_the_same_query_scans(services, collection, query):
    """Why the helpers exist: the plain forms of the same queries (what the code had) scan."""
    assert ("COLLSCAN", None) in await _stages(services, collection, query)
