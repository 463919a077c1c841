"""DELETE /v1/me (issue 16): the account's personal data is erased everywhere.

After a deletion the test reads EVERY MongoDB collection (listed from the server, raw BSON, so a
new collection is read too) and EVERY Redis key (SCAN over every node) and looks for the user's id.
What may still hold it is listed in :data:`MONGO` with the reason; a collection that is not listed
there fails the test, so a feature that adds a collection must add its erasure step
(``profiles/erasure.py``) and its line here.
"""

from __future__ import annotations

import json
from typing import Any

from bson import BSON, ObjectId

from feed import followerpages
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.realtime.wsclient import open_ws, recv_json, recv_type
from tests.support import offset, register, wait_until

MONGO: dict[str, str] = {
    "users": "the tombstone: username kept reserved, everything else erased (checked below)",
    "tokens": "erased",
    "posts": ("the user's own posts stay as deleted tombstones without text (nor, once retracted, the words "
              "derived from it or their position); others' mention_ids pulled"),
    "comments": "the user's comments stay as deleted tombstones without text",
    "likes": "erased",
    "follows": "erased both ways",
    "follower_pages": "erased: the user's id pulled from the pages of whom they follow; their own pages gone",
    "checkins": "erased (they hold the device fix)",
    "checkin_guards": "erased",
    "store_visitors": "erased",
    "stores": "mayor seats the user held are cleared; stores a merchant owned stay (a business)",
    "offers": "a merchant's live offers end; no user data otherwise",
    "vouchers": "anonymised (the user id replaced by one that points at nobody)",
    "reports": "anonymised likewise",
    "idempotency": "erased (stored answers)",
    "blocks": "erased both ways",
    "mutes": "erased both ways",
    "audit": "kept: the append-only record of moderators' decisions",
    "words": "no user data",
    "migrations": "no user data",
    "media": "erased with their files (profiles.erasure._media)",
    "mediafs.files": "erased with their media documents",
    "mediafs.chunks": "erased with their media documents",
    "notifications": "the user's inbox erased, the user dropped from others' entries",
    "offer_deliveries": "the user dropped from every delivery's recipients",
    "offer_inbox_marks": "the user's mark erased",
    "push_subscriptions": "erased",
    "topic_counts": "no user data (topic names and counts)",
    "store_days": "no user data (a store's anonymous counts per local day)",
    "store_topic_days": "no user data (a store's topic counts per local day)",
    "points_ledger": "anonymised: entries stay for the stores' settlement, user_id and once removed",
    "points_balances": "erased",
    "points_spend_codes": "erased",
}
"""Every collection there is, and what erasure leaves in it."""

FROM_THE_WORDS_AND_PLACE = ("search_keys", "topics", "topic_keys", "mentions", "mention_ids", "flags", "location")
"""What an erased account's post derived from its text and where it was written: empty once retracted."""

TOMBSTONE_FIELDS = {"_id", "username", "username_lower", "role", "status", "created_at", "deleted_at", "socket_close"}

REDIS_KEPT_PREFIXES = ("rl:",)
"""Rate-limit windows name the user but hold only counts, and expire with their window."""


def _mentions(raw: bytes, oid: ObjectId) -> bool:
    return oid.binary in raw or str(oid).encode() in raw


async def _mongo_traces(services: Any, oid: ObjectId) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for name in await services.db.list_collection_names():
        async for batch in services.db[name].find_raw_batches({}):
            if not _mentions(batch, oid):
                continue
            for doc in _split(batch):
                if _mentions(BSON(doc).encode() if isinstance(doc, dict) else doc, oid):
                    found.setdefault(name, []).append(BSON(doc).decode())
    return found


def _split(batch: bytes) -> list[bytes]:
    docs, i = [], 0
    while i < len(batch):
        size = int.from_bytes(batch[i:i + 4], "little")
        docs.append(batch[i:i + size])
        i += size
    return docs


async def _redis_traces(services: Any, uid: str) -> list[str]:
    redis, found = services.redis, []
    async for key in redis.scan_iter(count=1000):
        key = key.decode() if isinstance(key, bytes) else key
        if key.startswith(REDIS_KEPT_PREFIXES):
            continue
        if uid in key:
            found.append(key)
            continue
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            content: Any = await redis.get(key)
        elif kind == "set":
            content = await redis.smembers(key)
        elif kind == "zset":
            content = await redis.zrange(key, 0, -1)
        elif kind == "hash":
            content = await redis.hgetall(key)
        elif kind == "list":
            content = await redis.lrange(key, 0, -1)
        elif kind == "stream":
            content = await redis.xrange(key)
        else:
            continue
        if uid in str(content):
            found.append(key)
    return found


async def test_delete_account_erases_everything(live_server, client, services, celery_worker):
    victim, friend = await register(client), await register(client)
    merchant, store = await merchant_with_store(client)
    h = victim.headers
    assert (await client.post(f"/v1/users/{friend.id}/follow", headers=h)).status_code == 204
    assert (await client.post(f"/v1/users/{victim.id}/follow", headers=friend.headers)).status_code == 204
    for audience in (friend.id, victim.id):  # both audiences' follower pages built (a big audience's are)
        assert await followerpages.build(services, "user", ObjectId(audience))
    await follow_store(client, victim, store["id"])
    ws = await open_ws(live_server, victim.token)
    near = offset(store["lat"], store["lng"], north_m=50)
    await ws.send(json.dumps({"type": "location", "lat": near[0], "lng": near[1]}))
    await ws.send(json.dumps({"type": "ping"}))
    await recv_type(ws, "pong")
    offer = await create_offer(client, merchant, store["id"], radius_m=500)
    assert (await recv_type(ws, "offer"))["data"]["id"] == offer["id"]  # delivered set + event history
    other, _ = await merchant_with_store(client)  # a store the victim does not follow, next door
    door = await client.post("/v1/stores", json={"name": "Next door", "lat": near[0], "lng": near[1]},
                             headers=other.headers)
    assert door.status_code == 201, door.text
    nearby = await create_offer(client, other, door.json()["id"], radius_m=500, audience="nearby")
    assert (await recv_type(ws, "offer"))["data"]["id"] == nearby["id"]  # a place in today's nearby-cap set
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=h)).status_code == 201

    mine = await client.post("/v1/posts", json={"text": "secret #erasetopic", "lat": near[0], "lng": near[1]},
                             headers={**h, "Idempotency-Key": "erase-me-1"})
    assert mine.status_code == 201, mine.text
    programme = {"enabled": True, "checkin_points": 10, "redemption_points": 5}
    assert (await client.put(f"/v1/stores/{store['id']}/loyalty", json=programme,
                             headers=merchant.headers)).status_code == 200
    checkin = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": near[0], "lng": near[1]},
                                headers=h)
    assert checkin.status_code == 201, checkin.text
    assert (await client.get("/v1/me/points", headers=h)).json()["balance"] == 10  # a ledger entry, a balance
    assert (await client.post("/v1/me/points/spend-codes", headers=h)).status_code == 201
    theirs = await client.post("/v1/posts", json={"text": f"hi @{victim.username}"}, headers=friend.headers)
    their_id = theirs.json()["id"]
    assert (await client.post(f"/v1/posts/{their_id}/like", headers=h)).status_code == 200
    assert (await client.post(f"/v1/posts/{mine.json()['id']}/like", headers=friend.headers)).status_code == 200
    assert (await client.post(f"/v1/posts/{their_id}/comments", json={"text": "nice"}, headers=h)).status_code == 201
    assert (await client.post(f"/v1/posts/{their_id}/reports", json={"reason": "spam"}, headers=h)).status_code == 201
    oid = ObjectId(victim.id)
    await services.db.blocks.insert_one({"blocker_id": oid, "blocked_id": ObjectId(merchant.id)})
    await services.db.mutes.insert_one({"muter_id": ObjectId(merchant.id), "muted_id": oid})
    # the fan-out has run: the friend's home feed has the victim's post
    async def in_friends_home() -> bool:
        page = (await client.get("/v1/feed/home", headers=friend.headers)).json()
        return mine.json()["id"] in [p["id"] for p in page["items"]]

    await wait_until(in_friends_home)

    async def in_victims_home() -> bool:  # (a fan-out still running during the deletion could mark the
        # victim as told of the post afterwards: a day-long dedupe set, see profiles/erasure.py)
        page = (await client.get("/v1/feed/home", headers=h)).json()
        return their_id in [p["id"] for p in page["items"]]

    await wait_until(in_victims_home)

    async def all_fanned_out() -> bool:  # the check-in's post too: a fan-out that marks the victim
        # as told of a post after the erasure's step for those marks would leave a day-long set
        pending = await services.db.posts.count_documents(
            {"author_id": {"$in": [oid, ObjectId(friend.id)]}, "fanout": {"$ne": "done"}})
        return pending == 0

    await wait_until(all_fanned_out, timeout=30)

    wrong = await client.request("DELETE", "/v1/me", json={"password": "not-my-password"}, headers=h)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_credentials"
    assert (await client.get("/v1/me", headers=h)).status_code == 200
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=h)
    assert resp.status_code == 204, resp.text

    # sockets closed at once, tokens dead, the name stays reserved
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            await recv_json(ws, timeout=5)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4401
    assert (await client.get("/v1/me", headers=h)).status_code == 401
    login = await client.post("/v1/auth/login", json={"username": victim.username, "password": "password123"})
    assert login.status_code == 401
    again = await client.post("/v1/auth/register", json={"username": victim.username, "password": "password123"})
    assert again.status_code == 409
    # posts and comments left every feed; counters followed
    assert (await client.get(f"/v1/posts/{mine.json()['id']}", headers=friend.headers)).status_code == 404
    await wait_until(lambda: _not(in_friends_home))
    topic = (await client.get("/v1/topics/erasetopic/posts", headers=friend.headers)).json()
    assert mine.json()["id"] not in [p["id"] for p in topic["items"]]
    local = (await client.get("/v1/feed/local", params={"lat": near[0], "lng": near[1], "radius_m": 500},
                              headers=friend.headers)).json()
    assert not [p for p in local["items"] if p["author"]["id"] == victim.id]
    post = (await client.get(f"/v1/posts/{their_id}", headers=friend.headers)).json()
    assert post["like_count"] == 0 and post["comment_count"] == 0
    comments = (await client.get(f"/v1/posts/{their_id}/comments", headers=friend.headers)).json()
    assert comments["items"] == []
    me = (await client.get("/v1/me", headers=friend.headers)).json()
    assert me["followers_count"] == 0 and me["following_count"] == 0
    assert (await client.get(f"/v1/users/{victim.id}", headers=friend.headers)).status_code == 404

    # every MongoDB collection: only what MONGO says may stay, in the shape it says
    collections = set(await services.db.list_collection_names())
    assert collections <= set(MONGO), f"add an erasure step and a line in MONGO for {collections - set(MONGO)}"
    traces = await _mongo_traces(services, oid)
    assert set(traces) <= {"users", "posts", "comments"}, {k: v[:2] for k, v in traces.items()}
    [tomb] = traces["users"]
    assert set(tomb) <= TOMBSTONE_FIELDS and tomb["status"] == "deleted" and tomb["username"] == victim.username
    for doc in traces.get("posts", []):
        assert doc["author_id"] == oid and doc["status"] == "deleted" and doc["text"] == ""
    for doc in traces.get("comments", []):
        assert doc["author_id"] == oid and doc["status"] == "deleted" and doc["text"] == ""
    kept = await services.db.points_ledger.find({"store_id": ObjectId(store["id"])}).to_list(None)
    assert [(e["kind"], e["points"], "user_id" in e, "once" in e) for e in kept] == [("checkin", 10, False, False)]
    # every Redis key (live position, feeds, histories, sockets, delivered and dedupe sets, caches)
    async def redis_clean() -> bool:
        return not await _redis_traces(services, victim.id)

    try:
        await wait_until(redis_clean, timeout=10)
    except AssertionError:
        raise AssertionError(f"Redis keys still holding the user: {await _redis_traces(services, victim.id)}") from None


async def _not(predicate: Any) -> bool:
    return not await predicate()


async def test_delete_account_bad_input(client, services):
    acct = await register(client)
    for body in ({}, {"password": ""}, {"password": 12345678}, {"password": "password123", "extra": 1}):
        resp = await client.request("DELETE", "/v1/me", json=body, headers=acct.headers)
        assert resp.status_code == 422, (body, resp.text)
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"})
    assert resp.status_code == 401
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200


async def test_an_erasure_cut_short_is_finished_by_the_sweep(client, services, celery_worker):
    """The deletion's request died after the tombstone (an outage): the account is unusable at once,
    and the maintenance sweep runs the steps again through the real worker."""
    from datetime import UTC, datetime, timedelta

    from profiles.erasure import STEPS
    from solomo.core import tasknames

    victim, friend = await register(client), await register(client)
    assert (await client.post(f"/v1/users/{friend.id}/follow", headers=victim.headers)).status_code == 204
    post = await client.post("/v1/posts", json={"text": "left behind"}, headers=victim.headers)
    oid = ObjectId(victim.id)
    await STEPS[0](services, oid)  # only the tombstone was written
    assert (await client.post("/v1/auth/login", json={"username": victim.username,
                                                      "password": "password123"})).status_code == 401
    assert (await services.db.users.find_one({"_id": oid}))["erasure"] == "pending"
    assert await services.db.follows.count_documents({"follower_id": oid}) == 1
    await services.db.users.update_one({"_id": oid}, {"$set": {"deleted_at": datetime.now(UTC) - timedelta(minutes=5)}})
    await services.tasks.send(tasknames.ERASURE_SWEEP)

    async def finished() -> bool:
        doc = await services.db.users.find_one({"_id": oid})
        return "erasure" not in doc

    await wait_until(finished, timeout=30)
    assert await services.db.follows.count_documents({"follower_id": oid}) == 0
    assert await services.db.tokens.count_documents({"user_id": oid}) == 0
    assert (await services.db.posts.find_one({"_id": ObjectId(post.json()["id"])}))["status"] == "deleted"
    assert (await client.get("/v1/me", headers=friend.headers)).json()["followers_count"] == 0


async def test_a_home_rebuild_that_runs_after_the_erasure_leaves_no_feed(client, services):
    """A home read just before the deletion queues a rebuild (the feed was missing); the worker may
    run it after the erasure dropped the feed. It must not leave the deleted user a feed behind."""
    from feed.home import rebuild_home
    from solomo.core.keys import home_key

    victim, friend = await register(client), await register(client)
    assert (await client.post(f"/v1/users/{friend.id}/follow", headers=victim.headers)).status_code == 204
    assert (await client.post("/v1/posts", json={"text": "for my followers"},
                              headers=friend.headers)).status_code == 201
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=victim.headers)
    assert resp.status_code == 204, resp.text
    await rebuild_home(services, ObjectId(victim.id))  # the late task
    assert not await services.redis.exists(home_key(victim.id))
    # a live user's rebuild still builds
    await rebuild_home(services, ObjectId(friend.id))
    assert await services.redis.exists(home_key(friend.id))


async def test_told_marks_are_found_from_the_event_history_when_the_home_feed_is_not_built(client, services):
    """A reader whose home feed was never built in Redis (read from MongoDB while its rebuild waited)
    was still told of posts on their socket: the erasure finds those marks in the event history."""
    from profiles.erasure import _reader_marks
    from solomo.core.keys import bucket_of, event_history, feed_new_sent, home_key

    reader = await register(client)
    post_id = str(ObjectId())
    told = feed_new_sent(post_id, bucket_of(reader.id))
    await services.redis.sadd(told, reader.id, "someone-else")
    await services.redis.xadd(event_history(reader.id),
                              {"type": "feed.new", "data": json.dumps({"post_id": post_id})})
    assert not await services.redis.exists(home_key(reader.id))
    await _reader_marks(services, ObjectId(reader.id))
    assert await services.redis.smembers(told) == {"someone-else"}


async def test_no_cached_view_keeps_an_erased_posts_text(client, services, monkeypatch):
    """A reader may fill a post's cached view right after the erasure's invalidation (a page still
    listing the post before its retraction): that view holds no text; nor does the cached view of a
    post the user had deleted before (its text goes at the erasure's end)."""
    from feed import postcache
    from feed.fanout import fanout_post
    from profiles import erasure
    from solomo.core.keys import post_view_key

    victim = await register(client)
    live = await client.post("/v1/posts", json={"text": "secret live words"}, headers=victim.headers)
    gone = await client.post("/v1/posts", json={"text": "secret deleted words"}, headers=victim.headers)
    assert live.status_code == gone.status_code == 201
    assert (await client.delete(f"/v1/posts/{gone.json()['id']}", headers=victim.headers)).status_code == 204
    ids = [ObjectId(live.json()["id"]), ObjectId(gone.json()["id"])]
    await fanout_post(services, ids[1])  # the deletion's retraction done (it drops the views once)
    await postcache.load(services, ids)  # both views cached (a repost's page fills a deleted post's)
    for pid in ids:
        assert "secret" in str(await services.redis.get(post_view_key(pid))), pid
    real = postcache.invalidate
    read_after: list[ObjectId] = []

    async def then_read(services: Any, post_ids: list[ObjectId]) -> None:  # a reader's page right after
        await real(services, post_ids)
        await postcache.load(services, list(post_ids))
        read_after.extend(post_ids)

    monkeypatch.setattr(erasure.postcache, "invalidate", then_read)
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=victim.headers)
    assert resp.status_code == 204, resp.text
    assert set(ids) <= set(read_after), read_after  # each post's view was filled again after its invalidation
    for pid in ids:
        assert "secret" not in str(await services.redis.get(post_view_key(pid))), pid


async def test_an_erased_users_likes_and_comments_leave_the_cached_counts(client, services):
    import uuid

    victim, friend = await register(client), await register(client)
    topic = f"er{uuid.uuid4().hex[:10]}"
    theirs = await client.post("/v1/posts", json={"text": f"counted #{topic}"}, headers=friend.headers)
    assert theirs.status_code == 201, theirs.text
    url = f"/v1/posts/{theirs.json()['id']}"
    assert (await client.post(f"{url}/like", headers=victim.headers)).status_code == 200
    assert (await client.post(f"{url}/comments", json={"text": "nice"}, headers=victim.headers)).status_code == 201

    async def counts() -> tuple[int, int]:
        page = (await client.get(f"/v1/topics/{topic}/posts", headers=friend.headers)).json()["items"]
        [shown] = [p for p in page if p["id"] == theirs.json()["id"]]
        return shown["like_count"], shown["comment_count"]

    assert await counts() == (1, 1)  # the view cached with them
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=victim.headers)
    assert resp.status_code == 204, resp.text
    assert await counts() == (0, 0)


async def test_an_erased_users_posts_lose_the_words_derived_from_their_text(client, services, monkeypatch,
                                                                          hold_tasks):
    """Search keys, topics and mentions come from the words, the position from where it was written:
    they outlive the blanked text only until the post's retraction has used them (the topic's count
    goes back down), then go. Three posts: one
    live at the erasure, one deleted and retracted before it, and one deleted before it whose
    retraction read the post before the erasure and marks it done after (the race the
    pipeline updates close)."""
    import uuid

    from feed import fanout
    from solomo.core import tasknames

    held = hold_tasks()
    victim, friend = await register(client), await register(client)
    topic = f"words{uuid.uuid4().hex[:10]}"

    async def written(text: str) -> ObjectId:
        resp = await client.post("/v1/posts", json={"text": f"{text} 拿铁 #{topic} @{friend.username}",
                                                    "lat": 31.2304, "lng": 121.4737}, headers=victim.headers)
        assert resp.status_code == 201, resp.text
        post_id = ObjectId(resp.json()["id"])
        assert await fanout.fanout_post(services, ObjectId(await held.take(tasknames.FANOUT_POST))) == "published"
        return post_id

    async def deleted(post_id: ObjectId) -> None:
        assert (await client.delete(f"/v1/posts/{post_id}", headers=victim.headers)).status_code == 204
        assert await held.take(tasknames.FANOUT_RETRACT) == str(post_id)

    async def counted() -> int:
        doc = await services.db.topic_counts.find_one({"key": topic})
        return int(doc["post_count"]) if doc else 0

    live, earlier, racing = await written("live"), await written("earlier"), await written("racing")
    photos = await written("photos")
    assert await counted() == 4
    for post_id in (earlier, photos):
        await deleted(post_id)
        assert await fanout.fanout_post(services, post_id) == "retracted"
    await services.db.posts.update_one({"_id": photos}, {"$set": {"text": ""}})  # as a photos-only post has
    await deleted(racing)
    real_finish = fanout._finish
    erased_meanwhile: list[int] = []

    async def erase_then_finish(services: Any, post: dict[str, Any]) -> bool:
        if post["_id"] == racing and not erased_meanwhile:  # read before the erasure, marked done after it
            assert "account_deleted" not in post
            resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=victim.headers)
            erased_meanwhile.append(resp.status_code)
        return await real_finish(services, post)

    monkeypatch.setattr(fanout, "_finish", erase_then_finish)
    assert await fanout.fanout_post(services, racing) == "retracted"
    assert erased_meanwhile == [204]
    for post_id in (earlier, photos, racing):  # deleted before: the erasure's write or the retraction's took them
        doc = await services.db.posts.find_one({"_id": post_id})
        assert doc["text"] == "" and not any(doc.get(f) for f in FROM_THE_WORDS_AND_PLACE), doc
    doc = await services.db.posts.find_one({"_id": live})  # its retraction has not run: the words stay for it
    assert doc["text"] == "" and doc["topic_keys"] == [topic] and doc["mention_ids"] == [ObjectId(friend.id)]
    assert doc["location"]["coordinates"] == [121.474, 31.23]
    assert await counted() == 1
    assert await held.take(tasknames.FANOUT_RETRACT) == str(live)
    assert await fanout.fanout_post(services, live) == "retracted"
    assert await counted() == 0  # the retraction read the topic before the words went
    doc = await services.db.posts.find_one({"_id": live})
    assert doc["fanout"] == "done" and not any(doc.get(f) for f in FROM_THE_WORDS_AND_PLACE), doc
