"""Which of some users and stores one person follows, asked by many requests at once.

Every home page of a city with pull authors asks it (which of the pull authors and stores does
the reader follow), and so does every location message that meets an offer new to its user
(does the user follow the stores of its ``followers`` offers: :mod:`offers.arrival`). The
questions of one event-loop turn share one ``follows`` query (:mod:`solomo.core.idloader`):
in the soak, 2,000 moving sockets asked it 80 times a second, the busiest collection of the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from bson import ObjectId

from solomo.core.idloader import turn_batch
from solomo.core.services import Services

Question = tuple[ObjectId, tuple[ObjectId, ...]]
"""(follower, the users and stores asked about)."""
Follow = tuple[ObjectId, str, ObjectId]
"""(follower, target type, target)."""


async def followed_among(services: Services, follower: ObjectId, users: Iterable[ObjectId] = (),
                         stores: Iterable[ObjectId] = ()) -> tuple[list[ObjectId], list[ObjectId]]:
    """The ``users`` and the ``stores`` that ``follower`` follows (in the order given)."""
    users, stores = list(users), list(stores)
    if not users and not stores:
        return [], []
    follows = await turn_batch(services, "solomo.followed_among", lambda: _fetcher(services)).submit(
        [(follower, (*users, *stores))])
    return ([u for u in users if (follower, "user", u) in follows],
            [s for s in stores if (follower, "store", s) in follows])


def _fetcher(services: Services) -> Callable[[list[Question]], Awaitable[set[Follow]]]:
    async def fetch(questions: list[Question]) -> set[Follow]:
        # one query for the turn: the cross product may find pairs nobody asked about, which the
        # callers' own lookups ignore
        followers = list({f for f, _ in questions})
        among = list({t for _, ts in questions for t in ts})
        query = {"follower_id": {"$in": followers}, "target_type": {"$in": ["user", "store"]},
                 "target_id": {"$in": among}}
        projection = {"follower_id": 1, "target_type": 1, "target_id": 1, "_id": 0}
        return {(d["follower_id"], d["target_type"], d["target_id"])
                async for d in services.db.follows.find(query, projection)}
    return fetch
