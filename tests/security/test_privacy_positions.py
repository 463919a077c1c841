"""Privacy of positions (contract: Privacy; OWASP API3 excessive data exposure).

A raw device fix is seen only by its own user. Everyone else gets the store's location, or the fix
snapped to the ~100 m grid, and local-feed membership is decided on that public position — so
asking the local feed from many points with shrinking radii narrows a poster down to a grid point
at best, never to where they stood.
"""

from __future__ import annotations

import re
from typing import Any

from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st

from feed.hydrate import hydrate_post
from feed.locations import migrate_public_locations
from feed.posts import build_post, insert_post
from geo.distance import geodesic_m
from geo.geojson import geo_point
from geo.privacy import coarsen, shown_point
from tests.checkins.helpers import new_store, point_at
from tests.feed.helpers import fanned_out, ids, post, principal
from tests.security.conftest import LeakScanner, account
from tests.support import offset, random_point

WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SHRINKING_RADII_M = (2000, 500, 250, 200, 150, 120, 100, 80, 60, 45, 30, 15, 5, 1)


def grid_point() -> tuple[float, float]:
    return coarsen(*random_point())


def same_point(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < 1e-9 and abs(a[1] - b[1]) < 1e-9


@given(st.floats(-90, 90), st.floats(-180, 180))
def test_the_grid_is_about_100_m_stable_and_valid(lat, lng):
    snapped = coarsen(lat, lng)
    assert coarsen(*snapped) == snapped  # snapping again (migration, read path) changes nothing
    assert -90 <= snapped[0] <= 90 and -180 <= snapped[1] <= 180
    assert abs(snapped[0] - lat) <= 0.0005 + 1e-12 and abs(snapped[1] - lng) <= 0.0005 + 1e-12  # <= ~56 m each way


@given(st.floats(-90, 90), st.floats(-180, 180))
def test_the_read_path_shows_the_grid_point_the_store_or_nothing(lat, lng):
    """``shown_point`` (every Post of every page; its snapping memoised) agrees with ``coarsen``
    each time it is asked, a store's position wins, and no location shows none."""
    stored = geo_point(lat, lng)
    assert shown_point(stored, None) == shown_point(stored, None) == coarsen(lat, lng)
    assert shown_point(stored, (1.5, 2.5)) == (1.5, 2.5)
    assert shown_point(None, (1.5, 2.5)) == (None, None)


async def test_checkin_fix_is_seen_only_by_its_user(api, services, leak_scanner: LeakScanner):
    owner, other = await account(services, leak_scanner), await account(services, leak_scanner)
    merchant = await account(services, leak_scanner, "merchant")
    store = await new_store(api, merchant)
    fix = point_at(store["lat"], store["lng"], 37.0, 45.0)
    resp = await api.post("/v1/checkins", headers=owner.headers,
                          json={"store_id": store["id"], "lat": fix[0], "lng": fix[1], "accuracy_m": 12})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    # the check-in's own answer keeps the fix; its post is at the store
    assert same_point((created["checkin"]["lat"], created["checkin"]["lng"]), fix)
    assert created["checkin"]["accuracy_m"] == 12 and created["checkin"]["distance_m"] > 30
    assert same_point((created["post"]["lat"], created["post"]["lng"]), (store["lat"], store["lng"]))

    own = (await api.get(f"/v1/users/{owner.id}/checkins", headers=owner.headers)).json()["items"]
    assert len(own) == 1
    assert same_point((own[0]["lat"], own[0]["lng"]), fix)
    assert own[0]["accuracy_m"] == 12 and own[0]["distance_m"] == created["checkin"]["distance_m"]

    resp = await api.get(f"/v1/users/{owner.id}/checkins", headers=other.headers)
    assert resp.status_code == 200, resp.text
    [seen] = resp.json()["items"]
    assert same_point((seen["lat"], seen["lng"]), (store["lat"], store["lng"]))
    assert seen["distance_m"] is None and seen["accuracy_m"] is None
    assert WHOLE_SECONDS.match(seen["created_at"]), seen["created_at"]
    assert seen["id"] == own[0]["id"] and seen["store_id"] == store["id"]
    for value in (str(fix[0]), str(fix[1])):
        assert value not in resp.text


async def test_post_fix_is_stored_and_shown_as_the_grid_point(api, services, leak_scanner: LeakScanner):
    author, reader = await account(services, leak_scanner), await account(services, leak_scanner)
    grid = grid_point()
    fix = (grid[0] + 0.00041, grid[1] - 0.00037)
    resp = await api.post("/v1/posts", headers=author.headers, json={"text": "here", "lat": fix[0], "lng": fix[1]})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert same_point((created["lat"], created["lng"]), grid)
    doc = await services.db.posts.find_one({"_id": ObjectId(created["id"])})
    assert doc is not None and same_point(tuple(reversed(doc["location"]["coordinates"])), grid)
    assert str(fix[0]) not in str(doc) and str(fix[1]) not in str(doc)  # the exact fix is not kept at all
    for path in (f"/v1/posts/{created['id']}", f"/v1/users/{author.id}/posts"):
        resp = await api.get(path, headers=reader.headers)
        assert resp.status_code == 200, resp.text
        shown = resp.json()["items"][0] if "items" in resp.json() else resp.json()
        assert same_point((shown["lat"], shown["lng"]), grid)
        assert str(fix[0]) not in resp.text and str(fix[1]) not in resp.text


async def test_post_about_a_store_is_located_at_the_store(api, services, leak_scanner: LeakScanner):
    author = await account(services, leak_scanner)
    merchant = await account(services, leak_scanner, "merchant")
    store = await new_store(api, merchant)
    fix = point_at(store["lat"], store["lng"], 120.0, 200.0)
    resp = await api.post("/v1/posts", headers=author.headers,
                          json={"text": "at the store", "store_id": store["id"], "lat": fix[0], "lng": fix[1]})
    assert resp.status_code == 201, resp.text
    assert same_point((resp.json()["lat"], resp.json()["lng"]), (store["lat"], store["lng"]))
    doc = await services.db.posts.find_one({"_id": ObjectId(resp.json()["id"])})
    assert doc is not None
    assert same_point(tuple(reversed(doc["location"]["coordinates"])), (store["lat"], store["lng"]))


async def test_local_feed_cannot_locate_a_poster_closer_than_the_grid(api, services, leak_scanner: LeakScanner,
                                                                     celery_worker):
    """The attack of issue 12: query the local feed from several points with shrinking radii.

    Two people post from the same grid cell, about 100 m apart. Every answer the attacker gets is
    the same for both (so no sequence of queries tells them apart, or places either one closer than
    the cell), and the smallest circle around the true spot that finds the post is as large as the
    distance to the grid point — today a 1 m circle there finds it.
    """
    first, second = await account(services, leak_scanner), await account(services, leak_scanner)
    attacker = await account(services, leak_scanner)
    grid = grid_point()
    fixes = [(grid[0] + 0.0004, grid[1] + 0.0004), (grid[0] - 0.0004, grid[1] - 0.0004)]
    assert geodesic_m(*fixes[0], *fixes[1]) > 60
    posts = [await post(api, who, "just here", lat=lat, lng=lng) for who, (lat, lng) in zip((first, second), fixes,
                                                                                           strict=True)]
    for p in posts:
        await fanned_out(services, p["id"])

    async def found(at: tuple[float, float], radius_m: float) -> tuple[bool, bool]:
        got = await ids(api, attacker, "/v1/feed/local", lat=at[0], lng=at[1], radius_m=radius_m)
        return posts[0]["id"] in got, posts[1]["id"] in got

    vantage = [*fixes, grid, *(offset(*grid, n, e) for n, e in ((200, 0), (0, 200), (-150, -150)))]
    for at in vantage:
        for radius in SHRINKING_RADII_M:
            a, b = await found(at, radius)
            assert a == b, f"the answers tell the two posters apart at {at} r={radius}"
    for fix in fixes:  # the true spot is not where the post is found
        assert await found(fix, 30) == (False, False)
        assert await found(fix, geodesic_m(*fix, *grid) - 1) == (False, False)
    assert await found(grid, 1) == (True, True)  # the best the attacker learns: the grid point


async def test_legacy_posts_are_coarsened_on_read_and_migrated(services, client, leak_scanner: LeakScanner):
    author = await account(services, leak_scanner)
    merchant = await account(services, leak_scanner, "merchant")
    store = await new_store(client, merchant)
    grid = grid_point()
    exact = (grid[0] + 0.00021, grid[1] + 0.00033)
    at_store_fix = point_at(store["lat"], store["lng"], 80.0, 10.0)
    legacy: list[dict[str, Any]] = []
    store_doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    for store_arg, fix in ((None, exact), (store_doc, at_store_fix)):
        doc = await build_post(services, principal(author), "from before the fix", store=store_arg)
        doc["location"] = geo_point(*fix)  # as posts were stored before: the device's exact position
        doc["fanout"] = "done"
        await insert_post(services, doc)
        legacy.append(doc)
    wanted = [grid, (store["lat"], store["lng"])]
    for doc, point in zip(legacy, wanted, strict=True):  # read path: never the raw fix
        shown = await hydrate_post(services, doc, None)
        assert same_point((shown["lat"], shown["lng"]), point)
    assert await migrate_public_locations(services, force=True) >= 2
    assert await migrate_public_locations(services, force=True) == 0  # idempotent
    for doc, point in zip(legacy, wanted, strict=True):
        stored = await services.db.posts.find_one({"_id": doc["_id"]})
        assert stored is not None and same_point(tuple(reversed(stored["location"]["coordinates"])), point)
