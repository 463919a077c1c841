"""feed.followed: which of some users and stores a person follows, the questions of one turn
answered by one query (real MongoDB, through the API's follow routes)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

from bson import ObjectId

from feed.followed import followed_among
from tests.offers.helpers import follow_store, merchant_with_store
from tests.support import register


class FollowFinds:
    """The real database; counts ``find`` on ``follows`` (everything else passes through)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.finds: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        collection = getattr(self.db, name)
        if name != "follows":
            return collection
        counts = self.finds

        class Counted:
            def find(self, *args: Any, **kwargs: Any) -> Any:
                counts[name] += 1
                return collection.find(*args, **kwargs)

        return Counted()


async def test_questions_of_one_turn_share_one_query_and_get_their_own_answers(client, services):
    _, store = await merchant_with_store(client)
    _, other_store = await merchant_with_store(client)
    star, fan, stranger = [await register(client) for _ in range(3)]
    assert (await client.post(f"/v1/users/{star.id}/follow", headers=fan.headers)).status_code == 204
    await follow_store(client, fan, store["id"])
    await follow_store(client, stranger, other_store["id"])
    counted = FollowFinds(services.db)
    own = replace(services, db=counted, extras={})
    users, stores = [ObjectId(star.id)], [ObjectId(store["id"]), ObjectId(other_store["id"])]
    answers = await asyncio.gather(*(followed_among(own, ObjectId(who.id), users, stores)
                                     for who in (fan, stranger, star)))
    assert counted.finds["follows"] == 1  # three questions, one query
    assert answers == [
        ([ObjectId(star.id)], [ObjectId(store["id"])]),
        ([], [ObjectId(other_store["id"])]),
        ([], []),
    ]
    # nothing asked, nothing sent
    assert await followed_among(own, ObjectId(fan.id)) == ([], [])
    assert counted.finds["follows"] == 1
