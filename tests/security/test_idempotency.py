"""Retries never double-write: ``Idempotency-Key`` on the contract's writes (contract: Idempotency).

The same user repeating a key gets the first answer again (same status, same body, header
``Idempotent-Replayed: true``) and exactly one document exists; concurrent duplicates included.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from bson import ObjectId

from solomo.core.errors import Unavailable
from tests.offers.helpers import in_minutes
from tests.security.conftest import World, account, error_code
from tests.support import Account, random_point


def key() -> str:
    return f"k-{uuid.uuid4()}"


def with_key(acct: Account, value: str) -> dict[str, str]:
    return {**acct.headers, "Idempotency-Key": value}


async def fresh(services: Any, leak_scanner: Any, role: str = "user") -> Account:
    return await account(services, leak_scanner, role)


async def test_sequential_retry_replays_the_first_answer_and_writes_once(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    k = key()
    first = await api.post("/v1/posts", json={"text": "retry me"}, headers=with_key(alice, k))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.post("/v1/posts", json={"text": "retry me"}, headers=with_key(alice, k))
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_a_post_without_a_key_is_not_deduplicated(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    for _ in range(2):
        resp = await api.post("/v1/posts", json={"text": "no key"}, headers=alice.headers)
        assert resp.status_code == 201
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 2


async def _concurrent(send: Any, n: int = 10) -> list[httpx2.Response]:
    return list(await asyncio.gather(*(send() for _ in range(n))))


def _all_same(answers: list[httpx2.Response], status: int) -> None:
    assert {r.status_code for r in answers} == {status}, [r.text for r in answers]
    assert len({r.content for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") != "true" for r in answers) == 1


async def test_concurrent_duplicate_posts_write_one(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    answers = await _concurrent(lambda: api.post("/v1/posts", json={"text": "at once"}, headers=headers))
    _all_same(answers, 201)
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_concurrent_duplicate_checkins_write_one(api, services, leak_scanner):
    merchant = await fresh(services, leak_scanner, "merchant")
    alice = await fresh(services, leak_scanner)
    lat, lng = random_point()
    store = (await api.post("/v1/stores", json={"name": "Idem Cafe", "lat": lat, "lng": lng},
                            headers=merchant.headers)).json()
    headers = with_key(alice, key())
    body = {"store_id": store["id"], "lat": lat, "lng": lng}
    answers = await _concurrent(lambda: api.post("/v1/checkins", json=body, headers=headers))
    _all_same(answers, 201)
    assert await services.db.checkins.count_documents({"user_id": ObjectId(alice.id)}) == 1
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_concurrent_duplicate_comments_write_one(api, services, leak_scanner, world: World):
    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    path = f"/v1/posts/{world.bob_post['id']}/comments"
    answers = await _concurrent(lambda: api.post(path, json={"text": "once"}, headers=headers))
    _all_same(answers, 201)
    assert await services.db.comments.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_concurrent_duplicate_offers_write_one(api, services, leak_scanner, world: World):
    headers = with_key(world.merchant, key())
    title = f"once {uuid.uuid4()}"
    body = {"title": title, "radius_m": 300, "expires_at": in_minutes(60), "stock": 5}
    path = f"/v1/stores/{world.store['id']}/offers"
    answers = await _concurrent(lambda: api.post(path, json=body, headers=headers), n=5)
    _all_same(answers, 201)
    assert await services.db.offers.count_documents({"title": title}) == 1


async def test_claim_accepts_the_key_and_replays(api, services, leak_scanner, world: World):
    carol = await fresh(services, leak_scanner)
    headers = with_key(carol, key())
    path = f"/v1/offers/{world.offer['id']}/claim"
    answers = await _concurrent(lambda: api.post(path, headers=headers), n=5)
    _all_same(answers, 201)
    assert await services.db.vouchers.count_documents({"user_id": ObjectId(carol.id)}) == 1


async def test_concurrent_duplicates_over_a_real_server(live_server, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    async with httpx2.AsyncClient(base_url=live_server, timeout=30) as client:
        answers = await _concurrent(lambda: client.post("/v1/posts", json={"text": "over the wire"},
                                                        headers=headers))
    _all_same(answers, 201)
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_same_key_different_body_is_refused(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    k = key()
    assert (await api.post("/v1/posts", json={"text": "first"}, headers=with_key(alice, k))).status_code == 201
    resp = await api.post("/v1/posts", json={"text": "second"}, headers=with_key(alice, k))
    assert resp.status_code == 422
    assert error_code(resp) == "idempotency_key_reused"
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_same_key_on_another_route_is_refused(api, services, leak_scanner, world: World):
    alice = await fresh(services, leak_scanner)
    k = key()
    path = f"/v1/posts/{world.bob_post['id']}/comments"
    assert (await api.post(path, json={"text": "hi"}, headers=with_key(alice, k))).status_code == 201
    resp = await api.post("/v1/posts", json={"text": "hi"}, headers=with_key(alice, k))
    assert resp.status_code == 422
    assert error_code(resp) == "idempotency_key_reused"


async def test_same_key_different_user_is_independent(api, services, leak_scanner):
    alice, bob = await fresh(services, leak_scanner), await fresh(services, leak_scanner)
    k = key()
    a = await api.post("/v1/posts", json={"text": "mine"}, headers=with_key(alice, k))
    b = await api.post("/v1/posts", json={"text": "mine"}, headers=with_key(bob, k))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers


@pytest.mark.parametrize("bad", ["", "x" * 65, "clé", "tab\there"])
async def test_a_malformed_key_is_a_clear_400(api, services, leak_scanner, bad):
    alice = await fresh(services, leak_scanner)
    resp = await api.post("/v1/posts", json={"text": "bad key"},
                          headers={**alice.headers, "Idempotency-Key": bad.encode()})
    assert resp.status_code == 400, resp.text
    assert error_code(resp) == "bad_request"
    assert "Idempotency-Key" in resp.json()["error"]["message"]
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 0


async def test_a_64_character_key_is_accepted(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    resp = await api.post("/v1/posts", json={"text": "long key"}, headers=with_key(alice, "K" * 64))
    assert resp.status_code == 201, resp.text


async def test_an_expired_key_writes_again(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    k = key()
    first = await api.post("/v1/posts", json={"text": "a day apart"}, headers=with_key(alice, k))
    assert first.status_code == 201
    old = datetime.now(UTC) - timedelta(hours=25)
    updated = await services.db.idempotency.update_one({"user_id": ObjectId(alice.id), "key": k},
                                                       {"$set": {"created_at": old}})
    assert updated.modified_count == 1
    second = await api.post("/v1/posts", json={"text": "a day apart"}, headers=with_key(alice, k))
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 2


async def test_a_client_error_is_replayed(api, services, leak_scanner):
    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    body = {"text": "where?", "store_id": str(ObjectId())}
    first = await api.post("/v1/posts", json=body, headers=headers)
    assert first.status_code == 404
    again = await api.post("/v1/posts", json=body, headers=headers)
    assert (again.status_code, again.content) == (404, first.content)
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_request_still_running_answers_409_after_the_wait(api, services, leak_scanner, monkeypatch):
    from solomo.core import idempotency

    monkeypatch.setattr(idempotency, "WAIT_S", 0.3)
    alice = await fresh(services, leak_scanner)
    k = key()
    headers = with_key(alice, k)
    first = await api.post("/v1/posts", json={"text": "slow"}, headers=headers)
    assert first.status_code == 201
    # the record as a request still running leaves it (or one whose process died mid-way)
    await services.db.idempotency.update_one({"user_id": ObjectId(alice.id), "key": k},
                                             {"$set": {"state": "in_progress"}, "$unset": {"status": "", "body": ""}})
    resp = await api.post("/v1/posts", json={"text": "slow"}, headers=headers)
    assert resp.status_code == 409
    assert error_code(resp) == "idempotency_in_progress"
    assert "retry-after" in resp.headers
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_openapi_documents_the_header(api):
    doc = (await api.get("/openapi.json")).json()
    for path in ("/v1/posts", "/v1/checkins", "/v1/posts/{post_id}/comments", "/v1/offers/{offer_id}/claim",
                 "/v1/stores/{store_id}/offers"):
        op = doc["paths"][path]["post"]
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        assert names == ["Idempotency-Key"], path
        assert "idempotency_key_reused" in op["responses"]["422"]["description"]
        assert "idempotency_in_progress" in op["responses"]["409"]["description"]
    assert not any(p.get("in") == "header" for p in doc["paths"]["/v1/stores"]["post"].get("parameters", []))


async def test_a_failure_before_the_write_frees_the_key(api, services, leak_scanner, world: World, monkeypatch):
    from feed import comments

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("redis is down")

    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    path = f"/v1/posts/{world.bob_post['id']}/comments"
    with monkeypatch.context() as patched:
        patched.setattr(comments, "create_comment", unavailable)
        assert (await api.post(path, json={"text": "try again"}, headers=headers)).status_code == 503
    resp = await api.post(path, json={"text": "try again"}, headers=headers)
    assert resp.status_code == 201, resp.text
    assert "idempotent-replayed" not in resp.headers
    assert await services.db.comments.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_a_failure_after_a_committed_write_keeps_the_key(api, services, leak_scanner, world: World,
                                                               monkeypatch):
    from feed import comments
    from solomo.core import idempotency

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("redis is down")

    monkeypatch.setattr(idempotency, "WAIT_S", 0.3)
    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    path = f"/v1/posts/{world.bob_post['id']}/comments"
    with monkeypatch.context() as patched:
        patched.setattr(comments, "hydrate_comments", unavailable)  # fails after the comment's transaction
        assert (await api.post(path, json={"text": "written once"}, headers=headers)).status_code == 503
    resp = await api.post(path, json={"text": "written once"}, headers=headers)
    assert resp.status_code == 409 and error_code(resp) == "idempotency_in_progress"
    assert await services.db.comments.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_a_post_without_photos_whose_answer_is_lost_is_not_written_twice(api, services, leak_scanner,
                                                                                 monkeypatch):
    """A post without photos is one insert; with a key it is a transaction marking the reservation,
    so a failure after the insert (an election eating the answer) keeps the key: the retry waits,
    it does not insert the post again."""
    from pymongo.errors import AutoReconnect

    from solomo.api import posts as post_routes
    from solomo.core import idempotency

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise AutoReconnect("injected: the answer was lost")

    monkeypatch.setattr(idempotency, "WAIT_S", 0.3)
    alice = await fresh(services, leak_scanner)
    headers = with_key(alice, key())
    with monkeypatch.context() as patched:
        patched.setattr(post_routes, "post_created", lost)  # after the insert
        assert (await api.post("/v1/posts", json={"text": "once"}, headers=headers)).status_code == 503
    resp = await api.post("/v1/posts", json={"text": "once"}, headers=headers)
    assert resp.status_code == 409 and error_code(resp) == "idempotency_in_progress", resp.text
    assert await services.db.posts.count_documents({"author_id": ObjectId(alice.id)}) == 1


async def test_a_refused_transaction_does_not_hold_the_key(api, services, leak_scanner):
    """check_in refuses ``too_far`` inside its checks; ``checkin_too_soon`` (429) inside its
    transaction: rolled back with the write, the mark does not keep the key."""
    merchant, alice = await fresh(services, leak_scanner, "merchant"), await fresh(services, leak_scanner)
    lat, lng = random_point()
    store = (await api.post("/v1/stores", json={"name": "Twice Cafe", "lat": lat, "lng": lng},
                            headers=merchant.headers)).json()
    body = {"store_id": store["id"], "lat": lat, "lng": lng}
    assert (await api.post("/v1/checkins", json=body, headers=with_key(alice, key()))).status_code == 201
    headers = with_key(alice, key())
    assert (await api.post("/v1/checkins", json=body, headers=headers)).status_code == 429
    record = await services.db.idempotency.find_one({"user_id": ObjectId(alice.id), "key": headers["Idempotency-Key"]})
    assert record is None
