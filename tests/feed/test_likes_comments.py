"""Likes (idempotent, no drift under concurrency) and comments (one level of replies, deletion rules)."""

from __future__ import annotations

import asyncio

from bson import ObjectId

from tests.feed.helpers import all_ids, events, post
from tests.support import make_account, register


async def test_likes_idempotent_and_notify_once(client, services):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "like me")
    for _ in range(3):
        resp = await client.post(f"/v1/posts/{p['id']}/like", headers=fan.headers)
        assert resp.status_code == 200 and resp.json() == {"like_count": 1, "liked_by_me": True}
    got = await client.get(f"/v1/posts/{p['id']}", headers=fan.headers)
    assert got.json()["liked_by_me"] is True and got.json()["like_count"] == 1
    assert (await client.get(f"/v1/posts/{p['id']}", headers=author.headers)).json()["liked_by_me"] is False
    likes = [e for e in await events(services, author, "notification") if e["data"]["kind"] == "like"]
    assert len(likes) == 1 and likes[0]["data"]["post"]["id"] == p["id"]
    for _ in range(2):
        resp = await client.delete(f"/v1/posts/{p['id']}/like", headers=fan.headers)
        assert resp.status_code == 200 and resp.json() == {"like_count": 0, "liked_by_me": False}


async def test_concurrent_likes_never_drift(client, services):
    author = await register(client)
    fans = [await register(client) for _ in range(8)]
    p = await post(client, author, "popular")

    async def flap(fan):
        for _ in range(3):
            await asyncio.gather(*(client.post(f"/v1/posts/{p['id']}/like", headers=fan.headers) for _ in range(2)))
            await asyncio.gather(*(client.delete(f"/v1/posts/{p['id']}/like", headers=fan.headers) for _ in range(2)))
        await client.post(f"/v1/posts/{p['id']}/like", headers=fan.headers)

    await asyncio.gather(*(flap(f) for f in fans))
    doc = await services.db.posts.find_one({"_id": ObjectId(p["id"])})
    assert doc["like_count"] == len(fans) == await services.db.likes.count_documents({"post_id": doc["_id"]})


async def test_cannot_like_or_comment_deleted_posts(client, services):
    author, fan = await register(client), await register(client)
    p = await post(client, author, "short-lived")
    assert (await client.delete(f"/v1/posts/{p['id']}", headers=author.headers)).status_code == 204
    resp = await client.post(f"/v1/posts/{p['id']}/like", headers=fan.headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = await client.post(f"/v1/posts/{p['id']}/comments", json={"text": "hi"}, headers=fan.headers)
    assert resp.status_code == 404
    assert await services.db.likes.count_documents({"post_id": ObjectId(p["id"])}) == 0
    assert await services.db.comments.count_documents({"post_id": ObjectId(p["id"])}) == 0


async def test_comments_replies_and_counts(client, services):
    author, fan, other = await register(client), await register(client), await register(client)
    p = await post(client, author, "discuss")
    resp = await client.post(f"/v1/posts/{p['id']}/comments", json={"text": "first"}, headers=fan.headers)
    assert resp.status_code == 201
    first = resp.json()
    assert set(first) >= {"id", "post_id", "author", "text", "reply_to", "created_at"}
    assert first["reply_to"] is None and first["author"]["id"] == fan.id
    reply = (await client.post(f"/v1/posts/{p['id']}/comments", json={"text": "re", "reply_to": first["id"]},
                               headers=other.headers)).json()
    assert reply["reply_to"] == first["id"]
    deeper = (await client.post(f"/v1/posts/{p['id']}/comments", json={"text": "re re", "reply_to": reply["id"]},
                                headers=fan.headers)).json()
    assert deeper["reply_to"] == first["id"]  # one level of replies
    listed = await all_ids(client, author, f"/v1/posts/{p['id']}/comments", limit=2)
    assert listed == [first["id"], reply["id"], deeper["id"]]
    assert (await client.get(f"/v1/posts/{p['id']}", headers=author.headers)).json()["comment_count"] == 3
    kinds = [e["data"]["kind"] for e in await events(services, author, "notification")]
    assert kinds.count("comment") == 3
    replied = [e["data"] for e in await events(services, fan, "notification") if e["data"]["kind"] == "reply"]
    assert [r["comment"]["id"] for r in replied] == [reply["id"]]


async def test_bad_comments_write_nothing(client, services):
    author, fan = await register(client), await register(client)
    p, elsewhere = await post(client, author, "a"), await post(client, author, "b")
    foreign = (await client.post(f"/v1/posts/{elsewhere['id']}/comments", json={"text": "x"},
                                 headers=fan.headers)).json()
    for body, code in [({"text": "x", "reply_to": foreign["id"]}, "invalid_reply_to"),
                       ({"text": "x", "reply_to": "0" * 24}, "invalid_reply_to"),
                       ({"text": "x", "reply_to": "nope"}, "invalid_reply_to"),
                       ({"text": ""}, "invalid"), ({"text": "   "}, "invalid"), ({"text": "x" * 501}, "invalid"),
                       ({"text": "x", "spam": True}, "invalid")]:
        resp = await client.post(f"/v1/posts/{p['id']}/comments", json=body, headers=fan.headers)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["code"] == code
    assert await services.db.comments.count_documents({"post_id": ObjectId(p["id"])}) == 0
    assert (await client.get(f"/v1/posts/{p['id']}", headers=author.headers)).json()["comment_count"] == 0


async def test_comment_deletion_rules(client, services):
    author, fan, stranger = await register(client), await register(client), await register(client)
    mod = await make_account(services, "moderator")
    p = await post(client, author, "rules")

    async def comment(who, text="c", reply_to=None):
        body = {"text": text, **({"reply_to": reply_to} if reply_to else {})}
        return (await client.post(f"/v1/posts/{p['id']}/comments", json=body, headers=who.headers)).json()

    c1, c2, c3 = await comment(fan), await comment(fan), await comment(fan)
    r1 = await comment(stranger, reply_to=c1["id"])
    assert (await client.delete(f"/v1/comments/{c1['id']}", headers=stranger.headers)).status_code == 403
    assert (await client.delete(f"/v1/comments/{c1['id']}", headers=fan.headers)).status_code == 204
    assert (await client.delete(f"/v1/comments/{c2['id']}", headers=author.headers)).status_code == 204
    assert (await client.delete(f"/v1/comments/{c3['id']}", headers=mod.headers)).status_code == 204
    assert (await client.delete(f"/v1/comments/{c3['id']}", headers=fan.headers)).status_code == 404
    assert (await client.delete(f"/v1/comments/{'0' * 24}", headers=fan.headers)).status_code == 404
    listed = await all_ids(client, author, f"/v1/posts/{p['id']}/comments")
    assert listed == []  # the reply went with its parent
    assert r1["reply_to"] == c1["id"]
    assert (await client.get(f"/v1/posts/{p['id']}", headers=author.headers)).json()["comment_count"] == 0
