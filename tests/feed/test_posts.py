"""Posts: creation, topics and mentions, visibility, deletion, and the bad input around them."""

from __future__ import annotations

import pytest
from bson import ObjectId

from geo.privacy import coarsen
from tests.feed.helpers import post
from tests.support import random_point, register, unique_name


async def test_create_post_shape_topics_mentions_location(client, services):
    mentioned = await register(client)
    author = await register(client)
    lat, lng = random_point()
    text = f"在 #上海美食# 吃饭 #Coffee @{mentioned.username} @nobody_{unique_name()}"
    body = await post(client, author, text, lat=lat, lng=lng)
    assert set(body) >= {"id", "author", "text", "topics", "mentions", "store", "lat", "lng", "like_count",
                         "comment_count", "liked_by_me", "status", "created_at"}
    assert body["author"] == {"id": author.id, "username": author.username, "display_name": author.username}
    assert body["topics"] == ["上海美食", "Coffee"]
    assert body["mentions"] == [mentioned.username]
    assert (body["lat"], body["lng"]) == coarsen(lat, lng)  # the public position (contract: Privacy)
    assert body["status"] == "published" and body["store"] is None
    assert body["like_count"] == 0 and body["liked_by_me"] is False
    doc = await services.db.posts.find_one({"_id": ObjectId(body["id"])})
    assert doc["topic_keys"] == ["上海美食", "coffee"]
    assert doc["mention_ids"] == [ObjectId(mentioned.id)]
    assert doc["fanout"] in ("pending", "done") and isinstance(doc["created_ms"], int)
    got = await client.get(f"/v1/posts/{body['id']}", headers=mentioned.headers)
    assert got.status_code == 200 and got.json()["id"] == body["id"]


async def test_post_at_a_store_takes_its_location(client):
    merchant = await register(client, role="merchant")
    lat, lng = random_point()
    resp = await client.post("/v1/stores", json={"name": "Tea", "lat": lat, "lng": lng}, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    store = resp.json()
    body = await post(client, merchant, "new menu", store_id=store["id"])
    assert body["store"] == {"id": store["id"], "name": "Tea", "lat": store["lat"], "lng": store["lng"]}
    assert (body["lat"], body["lng"]) == (store["lat"], store["lng"])


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"text": ""}, 422, "invalid"),
    ({"text": "   "}, 422, "invalid"),
    ({"text": "x" * 2001}, 422, "invalid"),
    ({"text": "#"}, 422, "empty_topic"),
    ({"text": "look at this # "}, 422, "empty_topic"),
    ({"text": "## hi"}, 422, "empty_topic"),
    ({"text": " ".join(f"#t{i}" for i in range(1000))}, 422, "invalid"),
    ({"text": " ".join(f"#t{i}" for i in range(21))}, 422, "too_many_topics"),
    ({"text": "hi", "lat": 10.0}, 422, "invalid"),
    ({"text": "hi", "lat": 91.0, "lng": 0.0}, 422, "invalid"),
    ({"text": "hi", "lat": "10", "lng": "10"}, 422, "invalid"),
    ({"text": "hi", "store_id": "nope"}, 422, "invalid"),
    ({"text": "hi", "store_id": "0" * 24}, 404, "not_found"),
    ({"text": "hi", "extra": 1}, 422, "invalid"),
    ({"text": 12}, 422, "invalid"),
])
async def test_bad_posts_write_nothing(client, services, payload, status, code):
    author = await register(client)
    resp = await client.post("/v1/posts", json=payload, headers=author.headers)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert await services.db.posts.count_documents({"author_id": ObjectId(author.id)}) == 0


async def test_2000_characters_and_cjk_are_fine(client):
    author = await register(client)
    assert len((await post(client, author, "字" * 2000))["text"]) == 2000


async def test_delete_rules_and_visibility(client, services):
    author, other = await register(client), await register(client)
    body = await post(client, author, "to be deleted")
    resp = await client.delete(f"/v1/posts/{body['id']}", headers=other.headers)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    resp = await client.delete(f"/v1/posts/{body['id']}", headers=author.headers)
    assert resp.status_code == 204
    for who in (author, other):
        assert (await client.get(f"/v1/posts/{body['id']}", headers=who.headers)).status_code == 404
    assert (await client.delete(f"/v1/posts/{body['id']}", headers=author.headers)).status_code == 404
    for bad in ("nope", "z" * 24, "0" * 24):
        resp = await client.get(f"/v1/posts/{bad}", headers=author.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


async def test_hidden_and_pending_posts_only_for_their_author(client, services):
    author, other = await register(client), await register(client)
    hidden = await post(client, author, "hidden later")
    pending = await post(client, author, "pending later")
    await services.db.posts.update_one({"_id": ObjectId(hidden["id"])}, {"$set": {"status": "hidden"}})
    await services.db.posts.update_one({"_id": ObjectId(pending["id"])}, {"$set": {"status": "pending_review"}})
    for pid in (hidden["id"], pending["id"]):
        assert (await client.get(f"/v1/posts/{pid}", headers=author.headers)).status_code == 200
        assert (await client.get(f"/v1/posts/{pid}", headers=other.headers)).status_code == 404
    await services.db.posts.update_one({"_id": ObjectId(hidden["id"])}, {"$set": {"status": "removed"}})
    assert (await client.get(f"/v1/posts/{hidden['id']}", headers=author.headers)).status_code == 404
    mine = await client.get(f"/v1/users/{author.id}/posts", headers=author.headers)
    theirs = await client.get(f"/v1/users/{author.id}/posts", headers=other.headers)
    assert [p["id"] for p in mine.json()["items"]] == [pending["id"]]
    assert theirs.json()["items"] == []
