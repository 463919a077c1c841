"""The demo city, seeded into a database of its own (and Redis databases of its own, so its
topics and feeds never meet the other tests' data)."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from geo.distance import geodesic_m
from solomo.seed import CENTER, PASSWORD
from tests.web.guards import require_routes


def _with_db(url: str, db: int) -> str:
    head, _, tail = url.rpartition("/")
    return f"{head}/{db}" if tail.isdigit() else f"{url.rstrip('/')}/{db}"


@pytest.fixture
async def empty_services(settings):
    from solomo.core.settings import load_settings
    from solomo.services import open_services

    name = f"seed_{uuid.uuid4().hex[:8]}"
    # log_level INFO, as in `make run`: the seed's app sets the root level from it (caplog restores it)
    isolated = load_settings(mongo_db=name, redis_url=_with_db(settings.effective_redis_url, 2),
                             broker_url=_with_db(settings.effective_broker_url, 3), log_level="INFO")
    services = await open_services(isolated)
    try:
        yield services
    finally:
        await services.mongo.drop_database(name)
        await services.redis.flushdb()
        from redis.asyncio import Redis

        broker = Redis.from_url(isolated.effective_broker_url)
        await broker.flushdb()
        await broker.aclose()
        await services.close()


async def test_seed_builds_a_living_city(client, empty_services, caplog):
    await require_routes(client, "POST /v1/stores", "POST /v1/checkins", "POST /v1/users/{id}/follow",
                         "POST /v1/posts/{id}/repost",
                         "POST /v1/stores/{id}/follow", "POST /v1/posts", "POST /v1/posts/{id}/like",
                         "POST /v1/posts/{id}/comments", "POST /v1/stores/{id}/offers", "POST /v1/posts/{id}/reports")
    from solomo.seed import seed_demo_city

    services = empty_services
    db = services.db
    with caplog.at_level(logging.INFO):
        text = await seed_demo_city(services, base_url="http://127.0.0.1:8000/")
    # quiet: none of its hundreds of requests is logged (neither by the app nor by its client)
    assert not [r for r in caplog.records if r.name in ("solomo.access", "httpx2")]
    assert logging.getLogger("solomo.access").level == logging.NOTSET  # and the loggers are as they were
    users = await db.users.find().to_list(None)
    roles = Counter(u["role"] for u in users)
    assert roles["user"] >= 12 and roles["merchant"] >= 3 and roles["moderator"] == 1
    for u in users:  # every account it made is printed, with the password that opens it
        assert u["username"] in text
    assert PASSWORD in text and "http://127.0.0.1:8000/" in text
    someone = next(u for u in users if u["role"] == "user")
    assert (await services.accounts.login(someone["username"], PASSWORD))[1]

    stores = await db.stores.find().to_list(None)
    assert 10 <= len(stores) <= 15
    assert len({s["category"] for s in stores}) >= 6
    merchants = {u["_id"] for u in users if u["role"] == "merchant"}
    assert {s["owner_id"] for s in stores} <= merchants and len({s["owner_id"] for s in stores}) >= 3
    for s in stores:
        lng, lat = s["location"]["coordinates"]
        assert geodesic_m(lat, lng, *CENTER) < 1500, s["name"]
    assert sum(1 for s in stores if s.get("mayor_id")) >= 5

    checkins = await db.checkins.find().to_list(None)
    assert len(checkins) >= 60
    now = datetime.now(UTC)
    assert all(now - timedelta(days=92) < c["created_at"] <= now for c in checkins)  # three months
    assert len({c["day"] for c in checkins}) >= 10  # a history, not one burst
    assert sum(s["checkins_count"] for s in stores) == len(checkins)
    per_user = Counter((c["user_id"], c["store_id"], c["day"]) for c in checkins)
    assert max(per_user.values()) == 1
    # three months of visits for the insights (issue 17), their day rollups in step with the check-ins
    assert len({c["day"] for c in checkins}) >= 80 and len(checkins) >= 600
    for s in stores:
        rows = await db.store_days.find({"store_id": s["_id"]}).to_list(None)
        assert sum(r.get("checkins", 0) for r in rows) == s["checkins_count"], s["name"]

    posts = await db.posts.find().to_list(None)
    assert sum(1 for p in posts if p["kind"] == "checkin") == len(checkins)
    keys = Counter(k for p in posts for k in p["topic_keys"])
    assert keys["人民广场"] >= 5 and keys["上海美食"] >= 3 and keys["shanghai"] >= 1 and keys["foodie"] >= 1
    assert any(p.get("store_owner_post") for p in posts)
    assert all(p["status"] == "published" for p in posts)
    elsewhere = [p for p in posts if "北京初雪" in p["topic_keys"]]  # local topics: a second city's own topic
    assert len({p["author_id"] for p in elsewhere}) >= 3
    assert all(geodesic_m(*p["location"]["coordinates"][::-1], *CENTER) > 1_000_000 for p in elsewhere)
    with_photos = [p for p in posts if p.get("media")]  # photos (issue 15): a nine-grid, a check-in's
    assert len(with_photos) >= 3 and max(len(p["media"]) for p in with_photos) == 9
    assert any(p["kind"] == "checkin" for p in with_photos)
    assert await db.media.count_documents({"status": "attached"}) == sum(len(p["media"]) for p in with_photos)

    follows = await db.follows.find().to_list(None)
    following = Counter((f["follower_id"], f["target_type"]) for f in follows)
    for u in users:
        if u["role"] == "user":
            assert following[(u["_id"], "user")] >= 3 and following[(u["_id"], "store")] >= 2
    assert await db.likes.count_documents({}) >= 30
    assert await db.comments.count_documents({"reply_to": {"$ne": None}}) >= 1
    assert await db.offers.count_documents({}) == 5
    assert {d["audience"] async for d in db.offers.find({}, {"audience": 1})} >= {"visitors", "regulars"}
    assert await db.offers.count_documents({"status": "ended"}) == 1  # the list of offers shows statuses
    assert await db.users.count_documents({"bio": {"$exists": True}}) >= 3
    assert await db.reports.count_documents({}) >= 1
    assert await db.blocks.count_documents({}) == 1 and await db.mutes.count_documents({}) == 1

    # every demo user's inbox has something, newest unread on top, older ones read
    for u in users:
        if u["role"] == "user":
            inbox = await db.notifications.find({"recipient_id": u["_id"]}).to_list(None)
            assert "mention" in {n["kind"] for n in inbox} and len(inbox) >= 2, u["username"]
            assert {True, False} <= {n["read"] for n in inbox} or len(inbox) <= 4, u["username"]
    reposts = [p for p in posts if p.get("repost_of")]  # reposts, one a //@ chain, counted on their originals
    assert len(reposts) >= 4 and any(p.get("repost_via") and "//@" in p["text"] for p in reposts)
    by_id = {p["_id"]: p for p in posts}
    assert all(by_id[r["repost_of"]]["repost_count"] >= 1 and not by_id[r["repost_of"]].get("repost_of")
               for r in reposts)

    # loyalty points (issue 17): two partner stores, balances earned there and some spent
    partners = [s for s in stores if (s.get("loyalty") or {}).get("enabled")]
    assert len(partners) == 2 and len({s["owner_id"] for s in partners}) == 2
    balances = await db.points_balances.find().to_list(None)
    assert len(balances) >= 5 and sum(1 for b in balances if b["spent"] > 0) == 2
    for b in balances:
        entries = await db.points_ledger.find({"user_id": b["_id"]}).to_list(None)
        assert b["balance"] == sum(e["points"] for e in entries) > 0
        assert {e["store_id"] for e in entries} <= {s["_id"] for s in partners}

    # a second run, and any database that has users, is left alone
    before = {name: await db[name].count_documents({}) for name in ("users", "stores", "posts", "checkins")}
    again = await seed_demo_city(services)
    assert "nothing seeded" in again
    assert before == {name: await db[name].count_documents({}) for name in ("users", "stores", "posts", "checkins")}

    # ... until the city goes quiet (nothing posted for a while) and its offers run out: the next
    # start gives it a new day, through the same routes (posts with topics, likes, offers again)
    from solomo.seed import POSTS_NOW, STORE_NEWS

    await db.offers.update_many({}, {"$set": {"expires_at": now - timedelta(minutes=1)}})
    seeded = {p["_id"] async for p in db.posts.find({}, {"_id": 1})}
    started = datetime.now(UTC)
    woken = await seed_demo_city(services, stale_after=timedelta(0))
    assert "gone quiet" in woken, woken
    fresh = await db.posts.find({"_id": {"$nin": list(seeded)}}).to_list(None)
    assert len(fresh) == len(POSTS_NOW) + len(STORE_NEWS) and all(p["status"] == "published" for p in fresh)
    assert Counter(k for p in fresh for k in p["topic_keys"])["人民广场"] >= 2
    assert await db.likes.count_documents({"post_id": {"$in": [p["_id"] for p in fresh]}}) >= len(fresh)
    assert await db.offers.count_documents({"expires_at": {"$gt": started}}) == 2
    assert {name: await db[name].count_documents({}) for name in ("users", "stores", "checkins")} == {
        name: before[name] for name in ("users", "stores", "checkins")}
    assert "nothing seeded" in await seed_demo_city(services)  # awake now: left alone again


async def test_seed_never_touches_a_database_with_users(empty_services):
    from solomo.seed import seed_demo_city

    services = empty_services
    await services.accounts.create_user("someone_real", "password123")
    assert "nothing seeded" in await seed_demo_city(services)
    assert await services.db.users.count_documents({}) == 1
    assert await services.db.stores.count_documents({}) == 0
