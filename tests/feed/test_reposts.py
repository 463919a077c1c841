"""Reposts (contract: Reposts): the root rule and the //@ chain, counters under concurrency,
Idempotency-Key, the unavailable original, 404/403, fan-out to the reposter's followers, bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from solomo.core.timeutil import ms_of
from tests.feed.helpers import all_ids, fanned_out, follow, ids, post, ready_home
from tests.support import make_account, register, unique_name, wait_until


async def repost(client, account, post_id: str, text: str | None = None, **headers: str):
    body = {} if text is None else {"text": text}
    return await client.post(f"/v1/posts/{post_id}/repost", json=body, headers={**account.headers, **headers})


async def reposted(client, account, post_id: str, text: str | None = None) -> dict:
    resp = await repost(client, account, post_id, text)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def get_post(client, account, post_id: str) -> dict:
    resp = await client.get(f"/v1/posts/{post_id}", headers=account.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def counts(services, *post_ids: str) -> list[int]:
    docs = {d["_id"]: d async for d in services.db.posts.find({"_id": {"$in": [ObjectId(p) for p in post_ids]}})}
    return [docs[ObjectId(p)].get("repost_count", 0) for p in post_ids]


async def block(services, blocker, blocked) -> None:
    """A block as feed.blocks reads it (the write route is another module's)."""
    now = datetime.now(UTC)
    await services.db.blocks.insert_one({"blocker_id": ObjectId(blocker.id), "blocked_id": ObjectId(blocked.id),
                                         "created_at": now, "created_ms": ms_of(now)})


async def test_chain_root_rule_topics_and_counts(client, services):
    alice, bob, carol, dave = [await register(client) for _ in range(4)]
    topic = unique_name("t")
    root = await post(client, alice, f"the original #{topic}#")
    assert root["repost_count"] == 0 and root["repost_of"] is None

    first = await reposted(client, bob, root["id"], f"so true #{topic}x# @{dave.username}")
    assert first["repost_of"]["id"] == root["id"] and first["repost_of"]["text"] == "the original #" + topic + "#"
    assert first["repost_of"]["repost_count"] == 1 and first["repost_of"]["author"]["id"] == alice.id
    assert first["text"] == f"so true #{topic}x# @{dave.username}"  # a repost of the root carries no chain
    assert first["topics"] == [f"{topic}x"] and first["mentions"] == [dave.username]

    second = await reposted(client, carol, first["id"], "wow")
    assert second["repost_of"]["id"] == root["id"]  # the root, never the repost
    assert second["text"] == f"wow //@{bob.username}: so true #{topic}x# @{dave.username}"
    assert second["topics"] == [] and second["mentions"] == []  # only the repost's own text counts

    third = await reposted(client, dave, second["id"])  # no comment of its own
    assert third["text"] == f"//@{carol.username}: {second['text']}" and third["repost_of"]["id"] == root["id"]
    assert third["repost_of"]["repost_count"] == 3

    assert await counts(services, root["id"], first["id"], second["id"], third["id"]) == [3, 1, 1, 0]
    seen = await get_post(client, dave, root["id"])
    assert seen["repost_count"] == 3 and seen["repost_of"] is None
    assert (await get_post(client, alice, first["id"]))["repost_count"] == 1  # the cached view moved too
    assert await all_ids(client, alice, f"/v1/posts/{root['id']}/reposts", limit=2) == [
        third["id"], second["id"], first["id"]]
    assert await all_ids(client, alice, f"/v1/posts/{first['id']}/reposts") == [second["id"]]
    listed = (await client.get(f"/v1/posts/{root['id']}/reposts", headers=alice.headers)).json()["items"]
    assert listed[0]["repost_of"]["id"] == root["id"] and listed[0]["author"]["id"] == dave.id

    # the topic of the repost's own text lists it, the chain's topics do not
    assert await ids(client, alice, f"/v1/topics/{topic}x/posts") == [first["id"]]

    # deleting a repost takes it out of both counters it was in
    assert (await client.delete(f"/v1/posts/{second['id']}", headers=carol.headers)).status_code == 204
    assert await counts(services, root["id"], first["id"]) == [2, 0]
    assert (await get_post(client, bob, root["id"]))["repost_count"] == 2
    assert await all_ids(client, alice, f"/v1/posts/{root['id']}/reposts") == [third["id"], first["id"]]
    # the chain stays in the reposts made of it, as on Weibo
    assert (await get_post(client, alice, third["id"]))["text"].startswith(f"//@{carol.username}: wow")


async def test_chain_is_cut_to_2000_characters(client, services):
    alice, bob, carol = [await register(client) for _ in range(3)]
    root = await post(client, alice, "root")
    long = await reposted(client, bob, root["id"], "x" * 1990)
    cut = await reposted(client, carol, long["id"], "y" * 100)
    assert len(cut["text"]) == 2000 and cut["text"].startswith("y" * 100 + f" //@{bob.username}: xxx")
    stored = await services.db.posts.find_one({"_id": ObjectId(cut["id"])})
    assert stored["text"] == cut["text"] and stored["repost_of"] == ObjectId(root["id"])


async def test_counts_never_drift_under_concurrent_reposts_and_deletions(client, services):
    author = await register(client)
    users = [await register(client) for _ in range(10)]
    root = await post(client, author, "go viral")
    middle = await reposted(client, users[0], root["id"], "middle")

    async def churn(i: int, user) -> None:
        target = middle["id"] if i % 2 else root["id"]
        made = await asyncio.gather(*(repost(client, user, target, f"r{i}.{k}") for k in range(3)))
        assert all(r.status_code == 201 for r in made), [r.text for r in made]
        doomed = made[0].json()["id"]
        # two deletions of one repost racing each other and the other reposts: counted once
        gone = await asyncio.gather(*(client.delete(f"/v1/posts/{doomed}", headers=user.headers) for _ in range(2)))
        assert sorted(r.status_code for r in gone) in ([204, 204], [204, 404])

    await asyncio.gather(*(churn(i, u) for i, u in enumerate(users)))
    live = {"status": {"$ne": "deleted"}}
    expect_root = await services.db.posts.count_documents({"repost_of": ObjectId(root["id"]), **live})
    expect_middle = await services.db.posts.count_documents({"repost_via": ObjectId(middle["id"]), **live})
    assert expect_root == 1 + 10 * 2 and expect_middle == 5 * 2
    assert await counts(services, root["id"], middle["id"]) == [expect_root, expect_middle]
    assert (await get_post(client, author, root["id"]))["repost_count"] == expect_root


async def test_reposts_racing_the_originals_deletion_write_all_or_nothing(client, services):
    author = await register(client)
    users = [await register(client) for _ in range(8)]
    root = await post(client, author, "about to vanish")
    answers = await asyncio.gather(*(repost(client, u, root["id"], "quick") for u in users),
                                   client.delete(f"/v1/posts/{root['id']}", headers=author.headers))
    assert answers[-1].status_code == 204
    made = [r.json()["id"] for r in answers[:-1] if r.status_code == 201]
    assert all(r.status_code in (201, 404) for r in answers[:-1]), [r.text for r in answers[:-1]]
    stored = [str(d["_id"]) async for d in services.db.posts.find({"repost_of": ObjectId(root["id"])})]
    assert sorted(stored) == sorted(made)  # a 404 wrote nothing, every 201 is there
    assert await counts(services, root["id"]) == [len(made)]


async def test_idempotency_key(client, services):
    alice, bob = await register(client), await register(client)
    root = await post(client, alice, "once")
    key = {"Idempotency-Key": unique_name("k")}
    first = await repost(client, bob, root["id"], "mine", **key)
    again = await repost(client, bob, root["id"], "mine", **key)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await repost(client, bob, root["id"], "another text", **key)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert await services.db.posts.count_documents({"repost_of": ObjectId(root["id"])}) == 1
    assert await counts(services, root["id"]) == [1]


async def test_unavailable_original_deleted_removed_hidden_blocked(client, services):
    alice, bob, carol, eve = [await register(client) for _ in range(4)]
    mod = await make_account(services, "moderator")

    # deleted by its author
    gone = await post(client, alice, "soon deleted")
    r1 = await reposted(client, bob, gone["id"], "saw it")
    assert (await get_post(client, carol, r1["id"]))["repost_of"]["text"] == "soon deleted"  # cached now
    assert (await client.delete(f"/v1/posts/{gone['id']}", headers=alice.headers)).status_code == 204
    assert (await get_post(client, carol, r1["id"]))["repost_of"] == {"id": gone["id"], "status": "unavailable"}
    # reposting the repost of a deleted post: 404, nothing written
    resp = await repost(client, carol, r1["id"], "and again")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert await services.db.posts.count_documents({"repost_via": ObjectId(r1["id"])}) == 0

    # removed by a moderator: every repost shows it unavailable, restored: back again
    bad = await post(client, alice, "to be removed")
    r2 = await reposted(client, bob, bad["id"])
    r3 = await reposted(client, carol, r2["id"], "chain")
    assert (await get_post(client, eve, r3["id"]))["repost_of"]["text"] == "to be removed"  # cached now
    resp = await client.post(f"/v1/moderation/posts/{bad['id']}", headers=mod.headers,
                             json={"action": "remove", "reason": "test"})
    assert resp.status_code == 200, resp.text
    for viewer in (eve, alice, bob):
        page = (await client.get(f"/v1/posts/{bad['id']}/reposts", headers=viewer.headers))
        assert page.status_code == 404  # the original itself is gone for everyone
        for rid in (r2["id"], r3["id"]):
            assert (await get_post(client, viewer, rid))["repost_of"] == {"id": bad["id"], "status": "unavailable"}
    resp = await repost(client, eve, r2["id"])
    assert resp.status_code == 404
    resp = await client.post(f"/v1/moderation/posts/{bad['id']}", headers=mod.headers,
                             json={"action": "restore", "reason": "test"})
    assert resp.status_code == 200, resp.text
    assert (await get_post(client, eve, r3["id"]))["repost_of"]["id"] == bad["id"]
    assert (await get_post(client, eve, r3["id"]))["repost_of"]["status"] == "published"

    # hidden: its author still sees it in the repost, everybody else sees it unavailable
    hid = await post(client, alice, "to be hidden")
    r4 = await reposted(client, bob, hid["id"])
    assert (await get_post(client, carol, r4["id"]))["repost_of"]["text"] == "to be hidden"  # cached now
    resp = await client.post(f"/v1/moderation/posts/{hid['id']}", headers=mod.headers,
                             json={"action": "hide", "reason": "test"})
    assert resp.status_code == 200, resp.text
    assert (await get_post(client, carol, r4["id"]))["repost_of"]["status"] == "unavailable"
    assert (await get_post(client, alice, r4["id"]))["repost_of"]["status"] == "hidden"
    # the author may see their hidden post but cannot spread it
    resp = await repost(client, alice, hid["id"])
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "not_repostable"

    # a block between the viewer and the original's author, either way
    fine = await post(client, alice, "blocked from some")
    r5 = await reposted(client, bob, fine["id"])
    await block(services, alice, eve)
    assert (await get_post(client, eve, r5["id"]))["repost_of"] == {"id": fine["id"], "status": "unavailable"}
    await block(services, carol, alice)
    assert (await get_post(client, carol, r5["id"]))["repost_of"]["status"] == "unavailable"
    assert (await get_post(client, bob, r5["id"]))["repost_of"]["text"] == "blocked from some"
    # in a page of the home feed as in a single post
    home = (await client.get("/v1/feed/home", headers=bob.headers)).json()["items"]
    assert {p["id"]: p["repost_of"]["status"] for p in home if p["id"] in (r1["id"], r5["id"])} == {
        r1["id"]: "unavailable", r5["id"]: "published"}


async def test_not_found_and_blocked(client, services):
    alice, bob, carol = [await register(client) for _ in range(3)]
    for bad_id in ("0" * 24, "nope"):
        resp = await repost(client, bob, bad_id)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
        assert (await client.get(f"/v1/posts/{bad_id}/reposts", headers=bob.headers)).status_code == 404
    root = await post(client, alice, "mine")
    via = await reposted(client, carol, root["id"])
    await block(services, alice, bob)
    for target in (root["id"], via["id"]):  # the blocker's post, directly or through someone's repost
        resp = await repost(client, bob, target, "sneaky")
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "blocked"
    # the blocker cannot repost the blocked user's posts either (a block works both ways)
    theirs = await post(client, bob, "bob's")
    resp = await repost(client, alice, theirs["id"])
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "blocked"
    assert await counts(services, root["id"], via["id"], theirs["id"]) == [1, 0, 0]
    # the blocked user's reposts are not listed to the blocker
    assert await all_ids(client, alice, f"/v1/posts/{root['id']}/reposts") == [via["id"]]
    # nor is the blocker's post's list shown to the blocked user: 404, as the post and its comments
    for path in (f"/v1/posts/{root['id']}", f"/v1/posts/{root['id']}/comments", f"/v1/posts/{root['id']}/reposts",
                 f"/v1/posts/{theirs['id']}/reposts"):
        viewer = bob if root["id"] in path else alice
        resp = await client.get(path, headers=viewer.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", (path, resp.text)


async def test_held_repost_and_bad_input_write_nothing(client, services):
    alice, bob = await register(client), await register(client)
    mod = await make_account(services, "moderator")
    words = (await client.get("/v1/moderation/words", headers=mod.headers)).json()
    block_word, review_word = unique_name("blk"), unique_name("rev")
    resp = await client.put("/v1/moderation/words", headers=mod.headers, json={
        "block": words["block"] + [block_word], "review": words["review"] + [review_word], "reason": "test"})
    assert resp.status_code == 200, resp.text
    try:
        root = await post(client, alice, "an original")
        resp = await repost(client, bob, root["id"], f"say {block_word}")
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "content_rejected"
        held = await reposted(client, bob, root["id"], f"say {review_word}")
        assert held["status"] == "pending_review"
    finally:
        resp = await client.put("/v1/moderation/words", headers=mod.headers, json={**words, "reason": "restore"})
        assert resp.status_code == 200, resp.text
    # a repost held for review is seen by its author only, so nobody else can repost it
    assert (await repost(client, alice, held["id"])).status_code == 404
    assert await all_ids(client, alice, f"/v1/posts/{root['id']}/reposts") == []

    before = await services.db.posts.count_documents({"repost_of": ObjectId(root["id"])})
    for body, code in (({"text": "x" * 2001}, 422), ({"text": 5}, 422), ({"text": "ok", "extra": 1}, 422),
                       ({"text": "#\u200b#"}, 422)):
        resp = await client.post(f"/v1/posts/{root['id']}/repost", json=body, headers=bob.headers)
        assert resp.status_code == code, (body, resp.text)
        assert "error" in resp.json()
    resp = await client.post(f"/v1/posts/{root['id']}/repost", content=b"", headers=bob.headers)
    assert resp.status_code in (400, 415)
    assert await services.db.posts.count_documents({"repost_of": ObjectId(root["id"])}) == before
    assert await counts(services, root["id"]) == [before]  # the held repost counts, the refused ones do not


async def test_repost_reaches_the_reposters_followers(client, services, celery_worker):
    alice, bob, fan = [await register(client) for _ in range(3)]
    await follow(client, fan, bob)  # the fan follows the reposter, not the original's author
    await ready_home(client, services, fan)
    root = await post(client, alice, "worth spreading")
    r = await reposted(client, bob, root["id"], "look at this")
    await fanned_out(services, r["id"])
    home = (await client.get("/v1/feed/home", headers=fan.headers)).json()["items"]
    assert home[0]["id"] == r["id"] and root["id"] not in [p["id"] for p in home]
    assert home[0]["repost_of"]["id"] == root["id"] and home[0]["repost_of"]["text"] == "worth spreading"
    assert home[0]["repost_of"]["author"]["id"] == alice.id and home[0]["repost_of"]["repost_count"] == 1


async def test_a_removal_whose_view_drop_failed_is_put_right_by_its_fanout(client, services, celery_worker,
                                                                           monkeypatch):
    """The removal commits and Redis fails before the cached view is dropped: the removal's fan-out
    task (retried, and re-sent by the sweep) drops it, so no repost keeps showing the post."""
    from moderation import actions
    from solomo.core.errors import Unavailable

    alice, bob, carol = [await register(client) for _ in range(3)]
    mod = await make_account(services, "moderator")
    bad = await post(client, alice, "removed while redis failed")
    shared = await reposted(client, bob, bad["id"])
    assert (await get_post(client, carol, shared["id"]))["repost_of"]["text"] == "removed while redis failed"

    class RedisDown:
        @staticmethod
        async def invalidate(*args: Any, **kwargs: Any) -> None:
            raise Unavailable("injected: redis is down")

    with monkeypatch.context() as patched:
        patched.setattr(actions, "postcache", RedisDown)
        resp = await client.post(f"/v1/moderation/posts/{bad['id']}", headers=mod.headers,
                                 json={"action": "remove", "reason": "test"})
        assert resp.status_code == 503, resp.text

    async def retracted() -> bool:
        doc = await services.db.posts.find_one({"_id": ObjectId(bad["id"])}, {"fanout": 1, "status": 1})
        return doc is not None and doc["status"] == "removed" and doc.get("fanout") == "done"

    await wait_until(retracted, timeout=15)
    assert (await get_post(client, carol, shared["id"]))["repost_of"] == {"id": bad["id"], "status": "unavailable"}
