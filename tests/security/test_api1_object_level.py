"""OWASP API1:2023 Broken Object Level Authorization: an object's id in the path is never enough.

Every route that acts on an object owned by someone checks the caller against the owner: another
user's post or comment, another merchant's store stats, offers and redemptions, another user's
voucher, a post waiting for review. Each refusal is also checked for having changed nothing.
"""

from __future__ import annotations

from bson import ObjectId

from tests.security.conftest import World, account, error_code


async def test_another_users_post_cannot_be_deleted(api, world: World):
    post_id = world.post["id"]
    for intruder in (world.bob, world.merchant):
        resp = await api.delete(f"/v1/posts/{post_id}", headers=intruder.headers)
        assert resp.status_code == 403 and error_code(resp) == "forbidden", resp.text
    resp = await api.get(f"/v1/posts/{post_id}", headers=world.bob.headers)
    assert resp.status_code == 200 and resp.json()["status"] == "published"


async def test_another_users_comment_cannot_be_deleted(api, world: World):
    # bob comments on his own post; alice (neither the comment's nor the post's author) may not delete it
    resp = await api.post(f"/v1/posts/{world.bob_post['id']}/comments", json={"text": "bob's comment"},
                          headers=world.bob.headers)
    assert resp.status_code == 201
    comment_id = resp.json()["id"]
    resp = await api.delete(f"/v1/comments/{comment_id}", headers=world.alice.headers)
    assert resp.status_code == 403 and error_code(resp) == "forbidden", resp.text
    resp = await api.delete(f"/v1/comments/{world.comment['id']}", headers=world.bob.headers)
    assert resp.status_code == 403, resp.text
    listed = await api.get(f"/v1/posts/{world.bob_post['id']}/comments", headers=world.bob.headers)
    assert comment_id in [c["id"] for c in listed.json()["items"]]
    listed = await api.get(f"/v1/posts/{world.post['id']}/comments", headers=world.bob.headers)
    assert world.comment["id"] in [c["id"] for c in listed.json()["items"]]


async def test_store_stats_are_for_the_owner_only(api, world: World):
    url = f"/v1/stores/{world.store['id']}/stats"
    for intruder in (world.rival, world.alice, world.moderator):
        resp = await api.get(url, headers=intruder.headers)
        assert resp.status_code == 403 and error_code(resp) == "forbidden", (intruder.role, resp.text)
    resp = await api.get(url, headers=world.merchant.headers)
    assert resp.status_code == 200 and resp.json()["offers"][0]["offer_id"] == world.offer["id"]


async def test_offers_only_for_your_own_store(api, world: World):
    from tests.offers.helpers import in_minutes

    body = {"title": "Free tea (not really)", "radius_m": 500, "expires_at": in_minutes(30)}
    for intruder in (world.rival, world.alice):
        resp = await api.post(f"/v1/stores/{world.store['id']}/offers", json=body, headers=intruder.headers)
        assert resp.status_code == 403, (intruder.role, resp.text)
    stats = (await api.get(f"/v1/stores/{world.store['id']}/stats", headers=world.merchant.headers)).json()
    assert [o["offer_id"] for o in stats["offers"]] == [world.offer["id"]]


async def test_redemption_only_at_your_own_store(api, world: World):
    code = world.voucher["code"]
    # the rival redeems alice's voucher at the rival's own store: another store's code
    resp = await api.post(f"/v1/stores/{world.rival_store['id']}/redemptions", json={"code": code},
                          headers=world.rival.headers)
    assert resp.status_code == 403, resp.text
    # … or at the voucher's store, which the rival does not own; nor may alice redeem her own voucher
    for intruder in (world.rival, world.alice):
        resp = await api.post(f"/v1/stores/{world.store['id']}/redemptions", json={"code": code},
                              headers=intruder.headers)
        assert resp.status_code == 403, (intruder.role, resp.text)
    mine = (await api.get("/v1/me/vouchers", headers=world.alice.headers)).json()["items"]
    assert [(v["id"], v["status"]) for v in mine] == [(world.voucher["id"], "claimed")]


async def test_vouchers_are_private(api, world: World):
    for other in (world.bob, world.merchant, world.rival):
        items = (await api.get("/v1/me/vouchers", headers=other.headers)).json()["items"]
        assert world.voucher["id"] not in [v["id"] for v in items]
        assert all(v["user_id"] == other.id for v in items)
    # claiming the same offer gives bob his own voucher, never alice's
    resp = await api.post(f"/v1/offers/{world.offer['id']}/claim", headers=world.bob.headers)
    assert resp.status_code == 201
    assert resp.json()["user_id"] == world.bob.id and resp.json()["code"] != world.voucher["code"]


async def test_a_post_waiting_for_review_is_seen_by_its_author_only(api, world: World, services, leak_scanner):
    author = await account(services, leak_scanner)
    resp = await api.post("/v1/posts", json={"text": "a hidden thought"}, headers=author.headers)
    assert resp.status_code == 201
    post_id = resp.json()["id"]
    await services.db.posts.update_one({"_id": ObjectId(post_id)}, {"$set": {"status": "pending_review"}})
    assert (await api.get(f"/v1/posts/{post_id}", headers=author.headers)).status_code == 200
    for other in (world.bob, world.merchant):
        resp = await api.get(f"/v1/posts/{post_id}", headers=other.headers)
        assert resp.status_code == 404, resp.text
        resp = await api.post(f"/v1/posts/{post_id}/comments", json={"text": "hi"}, headers=other.headers)
        assert resp.status_code == 404, resp.text
        resp = await api.post(f"/v1/posts/{post_id}/like", headers=other.headers)
        assert resp.status_code == 404, resp.text
        items = (await api.get(f"/v1/users/{author.id}/posts", headers=other.headers)).json()["items"]
        assert post_id not in [p["id"] for p in items]


async def test_moderation_data_is_for_moderators(api, world: World):
    for path in ("/v1/moderation/queue", "/v1/moderation/audit", "/v1/moderation/words"):
        for intruder in (world.alice, world.merchant):
            resp = await api.get(path, headers=intruder.headers)
            assert resp.status_code == 403 and error_code(resp) == "forbidden", (path, resp.text)
        assert (await api.get(path, headers=world.moderator.headers)).status_code == 200
