"""A topic's posts near a point (``GET /v1/topics/{topic}/posts?lat=&lng=&radius_m=``): the topic as
people around here live it.

One MongoDB source for the pager (:func:`feed.paging.collect`, the same path as the topic listing:
candidates come without their documents and are loaded from the post cache by the page's loader,
then hydrated). Each fetch is :func:`feed.nearquery.newest_in_area` on the index
``(topic_keys, location 2dsphere, created_ms)`` (:data:`feed.indexes.TOPIC_NEAR_INDEX`, hinted):
the topic's key and the circle's covering bound the scan, and growing time windows below the
cursor keep a page from reading the whole circle's history of the topic. Membership is decided on
the post's public position (``posts.location``), like the local feed's.
"""

from __future__ import annotations

from typing import Any

from feed.blocks import Screen
from feed.indexes import TOPIC_NEAR_INDEX
from feed.local import Circle
from feed.nearquery import newest_in_area
from feed.paging import Candidate, Loader, collect
from feed.posts import VISIBLE
from solomo.core.pagination import Position
from solomo.core.services import Services
from solomo.core.timeutil import now_ms

DEFAULT_RADIUS_M = 5000
MAX_RADIUS_M = 50_000
_PROJECTION = {"created_ms": 1, "location": 1, "status": 1}
"""What the circle test and the cursor need; the page's documents come from the loader."""


class TopicNearSource:
    """The topic's visible posts within the circle, newest first."""

    def __init__(self, services: Services, key: str, circle: Circle) -> None:
        self.services = services
        self.key = key
        self.circle = circle

    async def fetch(self, before: Position | None, count: int) -> list[Candidate]:
        docs = await newest_in_area(self.services.db, self.circle.area(), before, count,
                                    accept=self.circle.holds_post, now_ms=now_ms(), projection=_PROJECTION,
                                    match={"topic_keys": self.key}, hint=TOPIC_NEAR_INDEX)
        return [(float(d["created_ms"]), d["_id"], None) for d in docs]


async def read_topic_near(services: Services, key: str, lat: float, lng: float, radius_m: float,
                          before: Position | None, limit: int,
                          load: Loader | None = None,
                          screen: Screen | None = None) -> tuple[list[dict[str, Any]], Position | None]:
    """A page of the topic's posts within ``radius_m`` of (lat, lng); ``load`` and ``screen`` as in
    :func:`feed.topics.read_topic`."""
    circle = Circle(lat, lng, radius_m)

    def accept(doc: dict[str, Any]) -> bool:  # checked again on the loaded view (a change since the query)
        return doc.get("status") == VISIBLE and key in doc.get("topic_keys", []) and circle.holds_post(doc)

    return await collect(services.db, [TopicNearSource(services, key, circle)], before, limit, accept, load,
                         screen=screen)
