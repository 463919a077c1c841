"""Check-ins over HTTP: the three rules at their boundaries, the post, counters, bad input, history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from geo.distance import geodesic_m
from tests.checkins.helpers import backdate_checkins, checkin, counts, new_store, point_at
from tests.support import random_point, register

CHECKIN_KEYS = {"id", "user_id", "store_id", "lat", "lng", "distance_m", "accuracy_m", "post_id", "created_at"}


@pytest.fixture
async def merchant(client):
    return await register(client, "merchant")


async def test_checkin_creates_checkin_post_and_counters(client, services, merchant):
    user = await register(client)
    store = await new_store(client, merchant, name="Noodle Bar", checkin_radius_m=100)
    lat, lng = point_at(store["lat"], store["lng"], 60, 45)
    resp = await checkin(client, user, store, lat, lng)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    ck, post = body["checkin"], body["post"]
    assert set(ck) == CHECKIN_KEYS
    assert ck["user_id"] == user.id and ck["store_id"] == store["id"]
    assert (ck["lat"], ck["lng"]) == (lat, lng)
    assert ck["distance_m"] == pytest.approx(60, abs=0.1) and ck["created_at"].endswith("Z")
    assert post["text"] == "checked in at Noodle Bar" and post["kind"] == "checkin"
    assert post["author"]["id"] == user.id and post["store"]["id"] == store["id"]
    assert (post["lat"], post["lng"]) == (store["lat"], store["lng"])  # the post is located at the store
    assert post["status"] == "published" and post["created_at"] == ck["created_at"]
    doc = await services.db.checkins.find_one({"_id": ObjectId(ck["id"])})
    pdoc = await services.db.posts.find_one({"_id": ObjectId(post["id"])})
    assert doc["post_id"] == pdoc["_id"] and pdoc["checkin_id"] == doc["_id"]
    assert pdoc["store_id"] == ObjectId(store["id"]) and pdoc["fanout"] in ("pending", "done")
    assert doc["day"] == ck["created_at"][:10] and doc["accuracy_m"] == 20
    assert await counts(services, user, store["id"]) == {
        "checkins": 1, "posts": 1, "store": (1, 1, ObjectId(user.id)), "visitors": 1}
    got = (await client.get(f"/v1/stores/{store['id']}", headers=user.headers)).json()
    assert got["checkins_count"] == 1
    assert got["mayor"] == {"id": user.id, "username": user.username, "display_name": user.username}


async def test_checkin_with_text(client, services, merchant):
    user = await register(client)
    store = await new_store(client, merchant)
    resp = await checkin(client, user, store, text="best #dumplings in town")
    assert resp.status_code == 201
    assert resp.json()["post"]["text"] == "best #dumplings in town"
    assert resp.json()["post"]["topics"] == ["dumplings"]


@pytest.mark.parametrize(("radius", "accuracy", "metres", "ok"), [
    (100, None, 119.5, True), (100, None, 120.5, False),    # default accuracy 20
    (100, 60, 159.5, True), (100, 60, 160.5, False),
    (100, 100, 199.5, True), (100, 100, 200.5, False),
    (100, 1000, 199.5, True), (100, 1000, 200.5, False),   # accuracy counts for 100 m at most
    (20, 0.1, 20.0, True), (20, 0.1, 20.2, False),
])
async def test_range_boundary(client, services, merchant, radius, accuracy, metres, ok):
    user = await register(client)
    store = await new_store(client, merchant, checkin_radius_m=radius)
    lat, lng = point_at(store["lat"], store["lng"], metres, 123)
    extra = {} if accuracy is None else {"accuracy_m": accuracy}
    resp = await checkin(client, user, store, lat, lng, **extra)
    if ok:
        assert resp.status_code == 201, resp.text
        assert resp.json()["checkin"]["distance_m"] == pytest.approx(metres, abs=0.1)
    else:
        assert resp.status_code == 422, resp.text
        err = resp.json()["error"]
        assert err["code"] == "too_far"
        assert err["details"][0]["allowed_m"] == radius + min(accuracy or 20, 100)
        assert await counts(services, user, store["id"]) == {"checkins": 0, "posts": 0, "store": (0, 0, None),
                                                             "visitors": 0}


@pytest.mark.parametrize(("minutes", "status"), [(0, 429), (59, 429), (61, 201), (60 * 24, 201)])
async def test_cooldown_boundary(client, services, merchant, minutes, status):
    user = await register(client)
    store = await new_store(client, merchant)
    assert (await checkin(client, user, store)).status_code == 201
    await backdate_checkins(services, user, timedelta(minutes=minutes))
    resp = await checkin(client, user, store)
    assert resp.status_code == status, resp.text
    after = await counts(services, user, store["id"])
    if status == 429:
        assert resp.json()["error"]["code"] == "checkin_too_soon"
        retry = int(resp.headers["Retry-After"])
        assert (60 - minutes) * 60 - 5 <= retry <= (60 - minutes) * 60 + 1
        assert after["checkins"] == 1 and after["posts"] == 1 and after["store"][:2] == (1, 1)
    else:
        assert after["checkins"] == 2 and after["posts"] == 2 and after["store"][:2] == (2, 1)


async def test_cooldown_is_per_store(client, services, merchant):
    user = await register(client)
    a = await new_store(client, merchant)
    b = await new_store(client, merchant, *point_at(a["lat"], a["lng"], 30))
    assert (await checkin(client, user, a)).status_code == 201
    assert (await checkin(client, user, b)).status_code == 201  # next door, same instant: fine
    resp = await checkin(client, user, a)  # back at a: its hour is not over, even though b came after
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "checkin_too_soon"


async def test_travel_speed_boundary(client, services, merchant):
    lat, lng = random_point()
    far_lat, far_lng = point_at(lat, lng, 250_000, 80)
    a = await new_store(client, merchant, lat, lng)
    b = await new_store(client, merchant, far_lat, far_lng)
    metres = geodesic_m(lat, lng, far_lat, far_lng)
    needed_s = (metres - 40) / (300 / 3.6)  # 2 × 20 m default accuracy is free
    for slack_s, status in [(-10, 422), (10, 201)]:
        user = await register(client)
        assert (await checkin(client, user, a)).status_code == 201
        await backdate_checkins(services, user, timedelta(seconds=needed_s + slack_s))
        resp = await checkin(client, user, b)
        assert resp.status_code == status, resp.text
        if status == 422:
            assert resp.json()["error"]["code"] == "impossible_travel"
            assert (await counts(services, user, b["id"]))["checkins"] == 1


async def test_travel_zero_gap(client, services, merchant):
    user = await register(client)
    a = await new_store(client, merchant)
    near = await new_store(client, merchant, *point_at(a["lat"], a["lng"], 35, 10))
    far = await new_store(client, merchant, *point_at(a["lat"], a["lng"], 600, 10))
    assert (await checkin(client, user, a)).status_code == 201
    assert (await checkin(client, user, near)).status_code == 201  # 35 m < 2 × 20 m accuracy
    resp = await checkin(client, user, far)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "impossible_travel"


async def test_checkin_unknown_and_malformed_store(client, services):
    user = await register(client)
    for store_id in [str(ObjectId()), "abc", "0" * 25, "zz" * 12]:
        resp = await client.post("/v1/checkins", json={"store_id": store_id, "lat": 1.0, "lng": 1.0},
                                 headers=user.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert await counts(services, user) == {"checkins": 0, "posts": 0}


@pytest.mark.parametrize("patch", [
    {"store_id": {"$gt": ""}}, {"store_id": None}, {"store_id": 5}, {"store_id": ""},
    {"lat": 91}, {"lat": -91}, {"lng": -181}, {"lng": 181}, {"lat": "1.0"}, {"lng": [1]},
    {"accuracy_m": 0}, {"accuracy_m": -1}, {"accuracy_m": 5001}, {"accuracy_m": "20"},
    {"text": ""}, {"text": "x" * 2001}, {"text": 7}, {"user_id": "0" * 24}, {"created_at": "2020-01-01T00:00:00Z"},
])
async def test_checkin_bad_input_writes_nothing(client, services, merchant, patch):
    user = await register(client)
    store = await new_store(client, merchant)
    body = {"store_id": store["id"], "lat": store["lat"], "lng": store["lng"], **patch}
    resp = await client.post("/v1/checkins", json=body, headers=user.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"
    assert await counts(services, user, store["id"]) == {"checkins": 0, "posts": 0, "store": (0, 0, None),
                                                         "visitors": 0}


@pytest.mark.parametrize("missing", ["store_id", "lat", "lng"])
async def test_checkin_missing_fields(client, services, merchant, missing):
    user = await register(client)
    store = await new_store(client, merchant)
    body = {"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]}
    del body[missing]
    resp = await client.post("/v1/checkins", json=body, headers=user.headers)
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["field"] == missing
    assert (await counts(services, user))["checkins"] == 0


@pytest.mark.parametrize("raw", [b'{"store_id": "%s", "lat": NaN, "lng": 1}',
                                 b'{"store_id": "%s", "lat": 1, "lng": -Infinity}', b'{"store_id": "%s"',
                                 b'"%s"'])
async def test_checkin_bad_raw_json(client, services, merchant, raw):
    user = await register(client)
    store = await new_store(client, merchant)
    resp = await client.post("/v1/checkins", content=raw.replace(b"%s", store["id"].encode()),
                             headers={**user.headers, "content-type": "application/json"})
    assert resp.status_code in (400, 422) and "error" in resp.json()
    assert (await counts(services, user))["checkins"] == 0


async def test_checkin_needs_auth(client, merchant):
    store = await new_store(client, merchant)
    resp = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]})
    assert resp.status_code == 401


async def test_unique_visitors_and_counts(client, services, merchant):
    store = await new_store(client, merchant)
    users = [await register(client) for _ in range(3)]
    for u in users:
        assert (await checkin(client, u, store)).status_code == 201
    await backdate_checkins(services, users[0], timedelta(hours=2))
    assert (await checkin(client, users[0], store)).status_code == 201
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert (doc["checkins_count"], doc["unique_visitors"]) == (4, 3)
    assert await services.db.store_visitors.count_documents({"store_id": doc["_id"]}) == 3


async def test_user_checkins_history_pages(client, services, merchant):
    user = await register(client)
    viewer = await register(client)
    lat, lng = random_point()
    stores = [await new_store(client, merchant, *point_at(lat, lng, 10 * i, 0)) for i in range(5)]
    made = []
    for store in stores:
        resp = await checkin(client, user, store)
        assert resp.status_code == 201, resp.text
        made.append(resp.json()["checkin"]["id"])
    # two check-ins in the same millisecond must still page in a total order
    await services.db.checkins.update_many({"user_id": ObjectId(user.id)},
                                           {"$set": {"created_at": (await services.db.checkins.find_one(
                                               {"_id": ObjectId(made[0])}))["created_at"]}})
    full = (await client.get(f"/v1/users/{user.id}/checkins", params={"limit": 100}, headers=viewer.headers)).json()
    assert [c["id"] for c in full["items"]] == sorted(made, reverse=True) and full["next_cursor"] is None
    for limit in (1, 2, 3):
        seen, cursor = [], None
        for _ in range(10):
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            resp = await client.get(f"/v1/users/{user.id}/checkins", params=params, headers=viewer.headers)
            assert resp.status_code == 200, resp.text
            seen += [c["id"] for c in resp.json()["items"]]
            cursor = resp.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(made, reverse=True)


async def test_user_checkins_newest_first_by_time(client, services, merchant):
    user = await register(client)
    a = await new_store(client, merchant)
    first = (await checkin(client, user, a)).json()["checkin"]["id"]
    await backdate_checkins(services, user, timedelta(hours=3))
    second = (await checkin(client, user, a)).json()["checkin"]["id"]
    body = (await client.get(f"/v1/users/{user.id}/checkins", headers=user.headers)).json()
    assert [c["id"] for c in body["items"]] == [second, first]
    assert body["items"][0]["created_at"] > body["items"][1]["created_at"]


async def test_user_checkins_errors(client):
    user = await register(client)
    for bad in [str(ObjectId()), "nope"]:
        resp = await client.get(f"/v1/users/{bad}/checkins", headers=user.headers)
        assert resp.status_code == 404
    resp = await client.get(f"/v1/users/{user.id}/checkins", params={"cursor": "x" * 40}, headers=user.headers)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_cursor"
    resp = await client.get(f"/v1/users/{user.id}/checkins", params={"limit": 0}, headers=user.headers)
    assert resp.status_code == 422
    resp = await client.get(f"/v1/users/{user.id}/checkins", headers=user.headers)
    assert resp.json() == {"items": [], "next_cursor": None}


async def test_default_text_does_not_tag_or_mention(client, merchant):
    user = await register(client)
    target = await register(client)
    store = await new_store(client, merchant, name=f"Bar # @{target.username} #1 ##")
    resp = await checkin(client, user, store)
    assert resp.status_code == 201, resp.text
    post = resp.json()["post"]
    assert post["topics"] == [] and post["mentions"] == []
    assert post["text"].startswith("checked in at Bar ")


async def test_user_checkins_are_empty_between_a_blocker_and_the_blocked(client, services, merchant):
    """Where someone goes is content: a user they block (or who blocks them) sees none of their
    check-ins, as none of their posts; anyone else still does, and a moderator always."""
    from tests.support import make_account

    user, blocked, other = await register(client), await register(client), await register(client)
    moderator = await make_account(services, "moderator")
    store = await new_store(client, merchant)
    assert (await checkin(client, user, store)).status_code == 201
    resp = await client.post(f"/v1/users/{blocked.id}/block", headers=user.headers)
    assert resp.status_code == 204, resp.text

    async def listed(viewer, whose) -> int:
        resp = await client.get(f"/v1/users/{whose.id}/checkins", headers=viewer.headers)
        assert resp.status_code == 200, resp.text
        return len(resp.json()["items"])

    assert await listed(blocked, user) == 0
    assert await listed(other, user) == 1 and await listed(moderator, user) == 1 and await listed(user, user) == 1
    assert (await checkin(client, blocked, store)).status_code == 201
    assert await listed(user, blocked) == 0  # both ways
