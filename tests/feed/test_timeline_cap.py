"""The fan-out's adds keep timelines capped with slack: a timeline grows to ``trim_limit(cap)``
entries, is then cut back to the newest ``cap`` (its marker kept), and a missing timeline is never
created by an add."""

from __future__ import annotations

from bson import ObjectId

from feed.timeline import MARKER, READY, Timelines, trim_limit
from solomo.core.keys import home_key

CAP = 64
BASE_MS = 1_700_000_000_000


async def test_home_feeds_stay_between_cap_and_its_slack_and_keep_the_newest(services):
    redis = services.redis
    timelines = Timelines(redis)
    active, inactive = ObjectId(), ObjectId()
    await redis.zadd(home_key(active), {MARKER: READY})
    sizes = []
    for i in range(3 * CAP):
        written, online = await timelines.add_to_homes([str(active), str(inactive)], BASE_MS + i, f"p{i:04d}", CAP)
        assert (written, online) == (1, [])
        sizes.append(await redis.zcard(home_key(active)) - 1)
    limit = trim_limit(CAP)
    assert limit > CAP
    assert max(sizes) == limit  # it does grow into the slack ...
    assert sizes.count(CAP) >= 2  # ... and is cut back to the cap each time it passes it
    assert all(s <= limit for s in sizes)
    members = await redis.zrange(home_key(active), 0, -1)
    assert members[0] == MARKER
    newest = [f"p{i:04d}" for i in range(3 * CAP - sizes[-1], 3 * CAP)]
    assert members[1:] == newest  # the newest ones, in order, none older left behind
    assert not await redis.exists(home_key(inactive))  # an inactive reader's feed is not created


async def test_a_repeated_add_changes_nothing_and_the_cut_comes_past_the_limit(services):
    redis = services.redis
    timelines = Timelines(redis)
    key = home_key(ObjectId())
    limit = trim_limit(CAP)
    await redis.zadd(key, {MARKER: READY, **{f"p{i:04d}": BASE_MS + i for i in range(limit - 1)}})
    before = await redis.zrange(key, 0, -1)
    assert await timelines.add([key], BASE_MS + 1, "p0001", CAP) == 1  # a redelivered task's add
    assert await redis.zrange(key, 0, -1) == before
    assert await timelines.add([key], BASE_MS + 10_000, "new1", CAP) == 1
    assert await redis.zcard(key) == limit + 1  # at the limit: not cut yet
    assert await timelines.add([key], BASE_MS + 10_001, "new2", CAP) == 1
    after = await redis.zrange(key, 0, -1)
    assert len(after) == CAP + 1 and after[0] == MARKER and after[-2:] == ["new1", "new2"]
