"""The notifications inbox against the real servers: grouping, dedupe, counts per kind, mark read,
who is never told, replies vs comments, offers, the cap, and the socket event with the unread total."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from feed.fanout import fanout_post
from notifications import offerinbox, recorder
from solomo.core import tasknames
from solomo.core.timeutil import ms_of
from tests.feed.helpers import events, follow, post
from tests.offers.helpers import offer_to_a_follower
from tests.realtime.wsclient import open_ws, recv_type
from tests.support import Account, make_account, register, wait_until


async def inbox(client: Any, account: Account, **params: Any) -> list[dict[str, Any]]:
    resp = await client.get("/v1/notifications", params=params, headers=account.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


async def unread(client: Any, account: Account) -> dict[str, Any]:
    resp = await client.get("/v1/notifications/unread", headers=account.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def like(client: Any, account: Account, post_id: str, on: bool = True) -> None:
    resp = await (client.post if on else client.delete)(f"/v1/posts/{post_id}/like", headers=account.headers)
    assert resp.status_code == 200, resp.text


async def comment(client: Any, account: Account, post_id: str, text: str, reply_to: str | None = None
                  ) -> dict[str, Any]:
    body = {"text": text, **({"reply_to": reply_to} if reply_to else {})}
    resp = await client.post(f"/v1/posts/{post_id}/comments", json=body, headers=account.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def mark_read(client: Any, account: Account, **body: Any) -> None:
    resp = await client.post("/v1/notifications/read", json=body, headers=account.headers)
    assert resp.status_code == 204, resp.text


async def test_likes_group_per_post_newest_first_and_a_repeat_is_one_actor(client, services):
    author = await register(client)
    fans = [await register(client) for _ in range(4)]
    p = await post(client, author, "group me")
    other = await post(client, author, "and me")
    for fan in fans:
        await like(client, fan, p["id"])
    # like, unlike, like again: still one actor, and no new event
    before = len(await events(services, author, "notification"))
    await like(client, fans[0], p["id"], on=False)
    await like(client, fans[0], p["id"])
    assert len(await events(services, author, "notification")) == before == 4
    await like(client, fans[1], other["id"])

    items = await inbox(client, author)
    assert [(n["kind"], n["post"]["id"]) for n in items] == [("like", other["id"]), ("like", p["id"])]
    group = items[1]
    assert group["actor_count"] == 4 and group["read"] is False
    assert [a["id"] for a in group["actors"]] == [fans[3].id, fans[2].id, fans[1].id]  # newest first, 3
    assert group["actors"][0] == {"id": fans[3].id, "username": fans[3].username, "display_name": fans[3].username}
    assert group["comment"] is None and group["offer"] is None
    assert group["post"]["text"] == "group me" and group["post"]["liked_by_me"] is False
    assert await unread(client, author) == {"total": 5, "by_kind": {
        "like": 5, "comment": 0, "reply": 0, "mention": 0, "repost": 0, "follow": 0, "offer": 0}}


async def test_nobody_hears_of_their_own_actions_nor_of_users_they_block_or_mute(client, services):
    author, blocked, muted, fan = [await register(client) for _ in range(4)]
    now = datetime.now(UTC)
    me = ObjectId(author.id)
    await services.db.blocks.insert_one({"_id": ObjectId(), "blocker_id": me, "blocked_id": ObjectId(blocked.id),
                                         "created_at": now, "created_ms": ms_of(now)})
    await services.db.mutes.insert_one({"_id": ObjectId(), "muter_id": me, "muted_id": ObjectId(muted.id),
                                        "created_at": now, "created_ms": ms_of(now)})
    p = await post(client, author, "quiet please")
    await like(client, author, p["id"])
    await comment(client, author, p["id"], "talking to myself")
    await like(client, muted, p["id"])
    await comment(client, muted, p["id"], f"hey @{author.username}")
    await follow(client, muted, author)
    # a blocked user cannot interact at all (403 blocked, nothing recorded)
    refused = [await client.post(f"/v1/posts/{p['id']}/like", headers=blocked.headers),
               await client.post(f"/v1/posts/{p['id']}/comments", json={"text": f"hey @{author.username}"},
                                 headers=blocked.headers),
               await client.post(f"/v1/users/{author.id}/follow", headers=blocked.headers)]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert await inbox(client, author) == []
    assert (await unread(client, author))["total"] == 0
    assert await events(services, author, "notification") == []
    await like(client, fan, p["id"])  # anyone else still gets through
    assert [(n["kind"], n["actors"][0]["id"]) for n in await inbox(client, author)] == [("like", fan.id)]


@pytest.mark.parametrize("kind", ["block", "mute"])
async def test_blocking_or_muting_later_takes_their_past_actions_out_of_the_inbox(client, services, kind):
    author, pest, fan = [await register(client) for _ in range(3)]
    p = await post(client, author, "before the block")
    other = await post(client, author, "theirs alone")
    await like(client, fan, p["id"])
    await like(client, pest, p["id"])
    await like(client, pest, other["id"])
    await follow(client, pest, author)
    assert (await unread(client, author))["total"] == 4
    for _ in range(2):  # the route, and its repeat (idempotent)
        resp = await client.post(f"/v1/users/{pest.id}/{kind}", headers=author.headers)
        assert resp.status_code == 204, resp.text
    got = await inbox(client, author)
    assert [(n["kind"], (n["post"] or {}).get("id"), n["actor_count"], [a["id"] for a in n["actors"]])
            for n in got] == [("like", p["id"], 1, [fan.id])]
    assert (await unread(client, author))["total"] == 1


async def test_a_deleted_account_leaves_the_inboxes(client, services):
    author, gone, fan = [await register(client) for _ in range(3)]
    p = await post(client, author, "who was it")
    await like(client, gone, p["id"])
    await like(client, fan, p["id"])
    await follow(client, author, gone)
    await services.accounts.delete_user(ObjectId(gone.id))  # the tombstone: no longer shown at once
    [group] = await inbox(client, author)
    assert ([a["id"] for a in group["actors"]], group["actor_count"]) == ([fan.id], 2)
    for _ in range(2):  # then the erasure step (idempotent): their inbox goes, they leave others'
        await recorder.erase_user(services, ObjectId(gone.id))
    [group] = await inbox(client, author)
    assert ([a["id"] for a in group["actors"]], group["actor_count"]) == ([fan.id], 1)
    assert await services.db.notifications.count_documents(
        {"$or": [{"recipient_id": ObjectId(gone.id)}, {"actor_ids": ObjectId(gone.id)}]}) == 0


async def test_comment_reply_and_mention_each_reach_their_user_once(client, services):
    author, fan, replier, named = [await register(client) for _ in range(4)]
    p = await post(client, author, "discuss")
    first = await comment(client, fan, p["id"], "first")
    reply = await comment(client, replier, p["id"], f"re @{named.username} @{author.username}", reply_to=first["id"])
    # the post's author: a comment for each (mentioned in the reply too, but told once, as its author)
    got = await inbox(client, author)
    assert [(n["kind"], n["comment"]["id"]) for n in got] == [("comment", reply["id"]), ("comment", first["id"])]
    assert got[0]["post"]["id"] == p["id"] and got[0]["actors"][0]["id"] == replier.id
    # the replied-to comment's author: a reply, not a comment
    assert [(n["kind"], n["comment"]["id"]) for n in await inbox(client, fan)] == [("reply", reply["id"])]
    assert [(n["kind"], n["comment"]["id"], n["post"]["id"]) for n in await inbox(client, named)] == [
        ("mention", reply["id"], p["id"])]
    assert (await unread(client, fan))["by_kind"]["reply"] == 1
    # a reply to your own comment on your own post: told once, as a reply
    mine = await comment(client, author, p["id"], "my own")
    again = await comment(client, fan, p["id"], "answer", reply_to=mine["id"])
    assert [(n["kind"], n["comment"]["id"]) for n in (await inbox(client, author))[:1]] == [("reply", again["id"])]
    assert len(await inbox(client, author)) == 3


async def test_a_posts_mentions_are_recorded_once_by_its_fan_out(client, services, hold_tasks):
    held = hold_tasks()
    author, named, blocker = [await register(client) for _ in range(3)]
    now = datetime.now(UTC)
    await services.db.blocks.insert_one({"_id": ObjectId(), "blocker_id": ObjectId(blocker.id),
                                         "blocked_id": ObjectId(author.id), "created_at": now,
                                         "created_ms": ms_of(now)})
    p = await post(client, author, f"hi @{named.username} @{blocker.username} @{author.username}")
    assert await held.take(tasknames.FANOUT_POST) == p["id"]
    for _ in range(2):  # the task, then a redelivery
        await fanout_post(services, ObjectId(p["id"]))
    got = await inbox(client, named)
    assert [(n["kind"], n["post"]["id"], n["comment"], [a["id"] for a in n["actors"]]) for n in got] == [
        ("mention", p["id"], None, [author.id])]
    assert len(await events(services, named, "notification")) == 1
    assert await inbox(client, blocker) == [] and await inbox(client, author) == []


class Killed(Exception):
    """Where a SIGKILL would stop the worker (an exception the recording does not swallow)."""


async def test_a_fan_out_killed_after_announcing_a_mention_tells_the_user_once(client, services, monkeypatch,
                                                                              hold_tasks):
    """The worker dies after the mention's event is out but before its entry's ``announce`` flag is
    cleared: the retried fan-out finds the flag set and announces again, and the version's dedupe
    set (written by the same script as the event) keeps the user from being told twice."""
    from pymongo.asynchronous.collection import AsyncCollection

    held = hold_tasks()
    author, named = await register(client), await register(client)
    p = await post(client, author, f"hi @{named.username}")
    assert await held.take(tasknames.FANOUT_POST) == p["id"]
    real_update_one = AsyncCollection.update_one
    killed: list[Any] = []

    async def killed_before_the_mark(self: Any, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "notifications" and update == {"$unset": {"announce": ""}}:
            killed.append(filter["_id"])
            raise Killed("the worker was killed")  # (strict: the mention's recording raises it on)
        return await real_update_one(self, filter, update, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "update_one", killed_before_the_mark)
    with pytest.raises(Killed):
        await fanout_post(services, ObjectId(p["id"]))
    monkeypatch.setattr(AsyncCollection, "update_one", real_update_one)
    assert len(killed) == 1 and len(await events(services, named, "notification")) == 1
    entry = await services.db.notifications.find_one({"_id": killed[0]})
    assert entry["announce"] is True  # the mark never landed: the retry announces it again
    assert await fanout_post(services, ObjectId(p["id"])) == "published"  # the retried task
    assert len(await events(services, named, "notification")) == 1
    assert "announce" not in await services.db.notifications.find_one({"_id": killed[0]})


async def test_follow_unfollow_follow_is_one_notification(client, services):
    star, fan = await register(client), await register(client)
    for _ in range(2):
        await follow(client, fan, star)
        resp = await client.delete(f"/v1/users/{star.id}/follow", headers=fan.headers)
        assert resp.status_code == 204
    await follow(client, fan, star)
    got = await inbox(client, star, kind="follow")
    assert [(n["kind"], [a["id"] for a in n["actors"]], n["post"]) for n in got] == [("follow", [fan.id], None)]
    assert len(await events(services, star, "notification")) == 1


async def test_mark_read_up_to_one_closes_groups_and_kind_filter_pages(client, services):
    author = await register(client)
    fans = [await register(client) for _ in range(3)]
    posts = [await post(client, author, f"p{i}") for i in range(3)]
    for fan, p in zip(fans, posts, strict=True):
        await like(client, fan, p["id"])
    await follow(client, fans[0], author)
    newest_first = await inbox(client, author)
    assert [n["kind"] for n in newest_first] == ["follow", "like", "like", "like"]
    # one page at a time, of one kind
    page1 = (await client.get("/v1/notifications", params={"kind": "like", "limit": 2},
                              headers=author.headers)).json()
    page2 = (await client.get("/v1/notifications", params={"kind": "like", "limit": 2,
                                                           "cursor": page1["next_cursor"]},
                              headers=author.headers)).json()
    assert [n["id"] for n in page1["items"] + page2["items"]] == [n["id"] for n in newest_first[1:]]
    assert page2["next_cursor"] is None

    await mark_read(client, author, up_to=newest_first[2]["id"])  # it and everything older
    assert [n["read"] for n in await inbox(client, author)] == [False, False, True, True]
    assert (await unread(client, author))["by_kind"] == {
        "like": 1, "comment": 0, "reply": 0, "mention": 0, "repost": 0, "follow": 1, "offer": 0}
    # a read group is closed: the next like of that post starts a new entry; an old liker stays counted
    late = await register(client)
    await like(client, late, posts[0]["id"])
    await like(client, fans[0], posts[0]["id"], on=False)
    await like(client, fans[0], posts[0]["id"])
    got = await inbox(client, author)
    assert (got[0]["kind"], got[0]["actor_count"], got[0]["read"]) == ("like", 1, False)
    assert [a["id"] for a in got[0]["actors"]] == [late.id]
    assert len(got) == 5
    await mark_read(client, author)
    assert (await unread(client, author))["total"] == 0
    assert all(n["read"] for n in await inbox(client, author))


async def test_bad_requests_write_nothing(client, services):
    author, other = await register(client), await register(client)
    fan = await register(client)
    p = await post(client, other, "theirs")
    await like(client, fan, p["id"])
    theirs = (await inbox(client, other))[0]["id"]
    for body, status, code in [({"up_to": theirs}, 404, "not_found"), ({"up_to": "nope"}, 404, "not_found"),
                               ({"up_to": 5}, 422, "invalid"), ({"all": True}, 422, "invalid")]:
        resp = await client.post("/v1/notifications/read", json=body, headers=author.headers)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code
    assert (await unread(client, other))["total"] == 1
    for params, code in [({"kind": "poke"}, "invalid"), ({"cursor": "forged"}, "invalid_cursor"),
                         ({"limit": 0}, "invalid")]:
        resp = await client.get("/v1/notifications", params=params, headers=author.headers)
        assert resp.status_code in (400, 422) and resp.json()["error"]["code"] == code, resp.text
    assert (await client.get("/v1/notifications/unread")).status_code == 401


async def test_offers_delivered_appear_once_as_kind_offer(client, services):
    merchant, fan, offer, deliver = await offer_to_a_follower(client, services)
    # the owner never gets their own offer
    assert await deliver([(fan.id, 80.0), (merchant.id, 0.0)]) == 2
    assert await deliver([(fan.id, 80.0)]) == 0  # delivered once
    got = await inbox(client, fan)
    assert [(n["kind"], n["offer"]["id"], n["offer"]["title"], n["actors"], n["actor_count"]) for n in got] == [
        ("offer", offer["id"], "Half-price tea", [], 0)]
    assert (await unread(client, fan))["by_kind"]["offer"] == 1
    assert await inbox(client, merchant) == []
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    await offerinbox.record_offers(services, doc, [fan.id])  # the same delivery recorded again (a redone chunk)
    assert len(await inbox(client, fan)) == 1
    # a moderator removes it: the entry stays, without the offer, as GET /v1/offers/{id} is 404 to the fan
    moderator = await make_account(services, "moderator")
    resp = await client.post(f"/v1/moderation/offers/{offer['id']}", headers=moderator.headers,
                             json={"action": "remove", "reason": "misleading"})
    assert resp.status_code == 200, resp.text
    assert (await client.get(f"/v1/offers/{offer['id']}", headers=fan.headers)).status_code == 404
    assert [(n["kind"], n["offer"]) for n in await inbox(client, fan)] == [("offer", None)]


async def test_reposts_group_like_likes(client, services):
    author = await register(client)
    reposters = [await register(client) for _ in range(3)]
    p = await post(client, author, "share me")
    original = await services.db.posts.find_one({"_id": ObjectId(p["id"])})
    for r in reposters:
        assert await recorder.record(services, "repost", original["author_id"], ObjectId(r.id),
                                     post_id=original["_id"]) is True
    assert await recorder.record(services, "repost", original["author_id"], ObjectId(reposters[0].id),
                                 post_id=original["_id"]) is False
    assert await recorder.record(services, "repost", original["author_id"], original["author_id"],
                                 post_id=original["_id"]) is False
    [group] = await inbox(client, author, kind="repost")
    assert group["actor_count"] == 3 and [a["id"] for a in group["actors"]] == [r.id for r in reversed(reposters)]
    assert group["post"]["id"] == p["id"]


async def test_one_account_cannot_grow_an_inbox_without_bound(client, services, monkeypatch):
    monkeypatch.setattr(recorder, "INBOX_CAP", 3)
    target = await register(client)
    actors = [ObjectId() for _ in range(5)]
    for actor in actors:
        assert await recorder.record(services, "follow", ObjectId(target.id), actor, strict=True)
    docs = await services.db.notifications.find({"recipient_id": ObjectId(target.id)}).sort("updated_ms", -1).to_list(
        None)
    assert [d["actor_ids"] for d in docs] == [[a] for a in reversed(actors[-3:])]
    assert all(d["expires_at"] > datetime.now(UTC) for d in docs)  # and each expires (TTL)


async def test_the_socket_event_carries_the_notification_and_the_unread_total(live_server, client, services):
    author, fan, second = (await register(client), await register(client), await register(client))
    p = await post(client, author, "live")
    ws = await open_ws(live_server, author.token)
    try:
        await wait_until(lambda: _online(services, author.id))
        await like(client, fan, p["id"])
        msg = await recv_type(ws, "notification", timeout=10)
        data = msg["data"]
        assert (data["kind"], data["post"]["id"], data["actor_count"], data["total"]) == ("like", p["id"], 1, 1)
        assert data["actors"] == [{"id": fan.id, "username": fan.username, "display_name": fan.username}]
        await like(client, second, p["id"])
        data = (await recv_type(ws, "notification", timeout=10))["data"]
        assert (data["id"], data["actor_count"], data["total"]) == (msg["data"]["id"], 2, 2)
        assert [a["id"] for a in data["actors"]] == [second.id, fan.id]
        await follow(client, fan, author)
        data = (await recv_type(ws, "notification", timeout=10))["data"]
        assert (data["kind"], data["total"]) == ("follow", 3)
    finally:
        await ws.close()


async def _online(services: Any, user_id: str) -> bool:
    from solomo.core.presence import is_online

    return (await is_online(services.redis, [user_id]))[0]


async def test_offers_pulled_into_an_inbox_keep_it_within_the_cap(client, services, monkeypatch):
    monkeypatch.setattr(recorder, "INBOX_CAP", 3)
    busy, quiet = await register(client), await register(client)
    owner = ObjectId()
    offers = [{"_id": ObjectId(), "owner_id": owner} for _ in range(5)]
    for offer in offers:
        await offerinbox.record_offers(services, offer, [busy.id])
    shared = {"_id": ObjectId(), "owner_id": owner}
    assert await offerinbox.record_offers(services, shared, [busy.id, quiet.id]) == 2
    assert await offerinbox.pull(services, ObjectId(busy.id)) == 3  # the newest three of six
    kept = await services.db.notifications.find({"recipient_id": ObjectId(busy.id)}).sort(
        [("updated_ms", -1), ("_id", -1)]).to_list(None)
    assert [d["offer_id"] for d in kept] == [shared["_id"], *(o["_id"] for o in reversed(offers[-2:]))]
    assert await offerinbox.pull(services, ObjectId(quiet.id)) == 1


async def test_a_mute_made_after_the_cached_shut_out_set_silences_at_once(client, services):
    """``silences`` answers from the recipient's cached shut-out set (feed.blocks.Screen): a mute or
    an unmute through the API drops it, so the next action is judged on the new list."""
    author, pest = await register(client), await register(client)
    p = await post(client, author, "first")
    assert (await client.get("/v1/feed/home", headers=author.headers)).status_code == 200  # set built, cached
    assert (await client.post(f"/v1/users/{pest.id}/mute", headers=author.headers)).status_code == 204
    await like(client, pest, p["id"])
    assert await inbox(client, author) == []
    assert (await client.delete(f"/v1/users/{pest.id}/mute", headers=author.headers)).status_code == 204
    second = await post(client, author, "second")
    await like(client, pest, second["id"])
    assert [(n["kind"], n["actors"][0]["id"]) for n in await inbox(client, author)] == [("like", pest.id)]
