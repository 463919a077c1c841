"""Word lists through the API: seed, replace, validation, every process picking up changes, and
screening of new posts (block → 422 content_rejected, review → pending_review)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from bson import ObjectId

from moderation.matcher import WordFilter, word_filter
from moderation.screen import screen_text
from moderation.words import ensure_seeded, seed_lists
from solomo.core.errors import ApiError
from solomo.core.keys import WORDS_VERSION
from tests.moderation.helpers import has_route, make_post, token
from tests.support import register


async def test_seed_is_loaded_once(services):
    """Into an empty collection (a scratch database: the suite's own lists have been replaced by
    earlier tests), the shipped seed goes in whole as version 1; seeding again changes nothing."""
    seed = seed_lists()
    scratch_name = f"scratch_words_{ObjectId()}"
    scratch = dataclasses.replace(services, db=services.mongo[scratch_name])
    try:
        assert await ensure_seeded(scratch) is True
        doc = await scratch.db.words.find_one({"_id": "lists"})
        assert doc is not None and doc["version"] == 1
        assert doc["block"] == seed.block and doc["review"] == seed.review and seed.block
        await scratch.db.words.update_one({"_id": "lists"}, {"$set": {"block": ["mine"], "version": 2}})
        assert await ensure_seeded(scratch) is False  # never overwrites what is there
        again = await scratch.db.words.find_one({"_id": "lists"})
        assert again is not None and again["block"] == ["mine"] and again["version"] == 2
    finally:
        await services.mongo.drop_database(scratch_name)


async def test_put_replaces_lists_and_is_audited(client, services, moderator, extra_words):
    b, r = token(), token()
    lists = await extra_words(block=[f"  {b}  ", b.upper()], review=[r])
    assert lists["block"].count(b) == 1 and b.upper() not in lists["block"] and r in lists["review"]
    got = (await client.get("/v1/moderation/words", headers=moderator.headers)).json()
    assert got == lists
    audit = (await client.get("/v1/moderation/audit?target_type=words&limit=1", headers=moderator.headers)).json()
    entry = audit["items"][0]
    assert entry["action"] == "words.update" and entry["reason"] == "test words"
    assert entry["after"]["added"] == {"block": [b], "review": [r]}
    assert entry["after"]["removed"] == {"block": [], "review": []}
    assert entry["after"]["block"] == entry["before"]["block"] + 1
    assert entry["after"]["version"] == entry["before"]["version"] + 1


async def test_screening_block_and_review(services, extra_words):
    b, r = token(), token()
    await extra_words(block=[b, "测试屏蔽"], review=[r])
    for text in (f"hello {b}", f"hello {'.'.join(b.upper())}", "这是测 试 屏 蔽", f"ｈｉ {b}"):
        with pytest.raises(ApiError) as exc:
            await screen_text(services, text)
        assert exc.value.status == 422 and exc.value.code == "content_rejected"
    assert await screen_text(services, f"about {' '.join(r)} then") == ("review", [r])
    assert await screen_text(services, f"about {r}s and {b}x") == ("ok", [])


async def test_posts_and_comments_are_screened(app, client, services, extra_words):
    b, r = token(), token()
    await extra_words(block=[b], review=[r])
    author = await register(client)
    with pytest.raises(ApiError) as exc:
        await make_post(services, author, f"buy {b} now")
    assert exc.value.code == "content_rejected"
    assert await services.db.posts.count_documents({"author_id": {"$exists": True}, "text": f"buy {b} now"}) == 0
    doc = await make_post(services, author, f"is {r.upper()} fine?")
    assert doc["status"] == "pending_review" and doc["flags"] == [{"source": "words", "words": [r]}]
    if has_route(app, "/v1/posts", "POST"):
        resp = await client.post("/v1/posts", headers=author.headers, json={"text": f"x {b}s"})
        assert resp.status_code == 201 and resp.json()["status"] == "published"  # a longer word
        resp = await client.post("/v1/posts", headers=author.headers, json={"text": f"x {'.'.join(b)}"})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "content_rejected"
        resp = await client.post("/v1/posts", headers=author.headers, json={"text": f"y {r}"})
        assert resp.status_code == 201 and resp.json()["status"] == "pending_review"
    published = await make_post(services, author)
    path = f"/v1/posts/{published['_id']}/comments"
    if has_route(app, path, "POST"):
        resp = await client.post(path, headers=author.headers, json={"text": f"so {b.upper()}!"})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "content_rejected"
        assert await services.db.comments.count_documents({"post_id": published["_id"]}) == 0


async def test_other_processes_pick_up_changes_within_a_second(services, extra_words):
    """A second filter stands for another API process or worker: it polls the version in Redis."""
    other = WordFilter()
    w = token()
    assert (await other.current(services)).find(w) == []
    await extra_words(block=[w])
    assert (await other.current(services)).find(w) == []  # cached for up to a second
    await asyncio.sleep(1.05)
    assert [m.word for m in (await other.current(services)).find(w)] == [w]
    # this process was told at once
    assert [m.word for m in (await word_filter(services).current(services)).find(w)] == [w]


async def test_lost_version_key_is_rebuilt(services, extra_words):
    await extra_words(review=[token()])
    await services.redis.delete(WORDS_VERSION)
    other = WordFilter()
    await other.current(services)
    doc = await services.db.words.find_one({"_id": "lists"})
    assert int(await services.redis.get(WORDS_VERSION)) == doc["version"] == other.version


@pytest.mark.parametrize("body", [
    {"block": ["ok"], "review": ["   "]},
    {"block": [""], "review": []},
    {"block": ["x" * 65], "review": []},
    {"block": ["!!!"], "review": []},
    {"block": ["w"] * 5001, "review": []},
    {"block": ["same"], "review": ["SAME"]},
    {"block": ["ok"]},
    {"block": "ok", "review": []},
    {"block": [1], "review": []},
    {"block": [], "review": [], "extra": 1},
    {"block": [], "review": [], "reason": "  "},
])
async def test_put_words_rejects_bad_input(client, moderator, body):
    before = (await client.get("/v1/moderation/words", headers=moderator.headers)).json()
    resp = await client.put("/v1/moderation/words", headers=moderator.headers, json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"
    assert (await client.get("/v1/moderation/words", headers=moderator.headers)).json() == before


async def test_giant_word_list_is_413(client, moderator):
    body = {"block": ["longishword" + str(i) for i in range(5000)], "review": []}
    resp = await client.put("/v1/moderation/words", headers=moderator.headers, json=body)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"


async def test_lost_publish_is_picked_up_from_mongodb(services, moderator, monkeypatch):
    """The Redis publish after the commit fails: the change is kept (no error to the moderator), and
    other processes still pick it up from the version in MongoDB, and put it back into Redis."""
    from moderation import words

    other = WordFilter(db_check_s=0.0)  # another process, its MongoDB check due at once
    await other.current(services)
    before, _ = await words.load_lists(services)
    w = token()

    async def lost(*_: object) -> None:
        raise ConnectionError("redis went away")

    with monkeypatch.context() as m:
        m.setattr(words, "publish_version", lost)
        await words.update_lists(services, ObjectId(moderator.id), before.block, [*before.review, w], "lost publish")
    try:
        version = await words.stored_version(services)
        assert int(await services.redis.get(WORDS_VERSION)) < version  # the mirror missed the change
        other.invalidate()
        assert [(m.kind, m.word) for m in (await other.current(services)).find(f"x {w} y")] == [("review", w)]
        assert int(await services.redis.get(WORDS_VERSION)) == version == other.version  # and repaired it
    finally:
        await words.update_lists(services, ObjectId(moderator.id), before.block, before.review, "restore")


async def test_mongodb_version_is_read_only_every_interval(services, monkeypatch):
    from moderation import matcher

    other = WordFilter(db_check_s=3600.0)
    await other.current(services)
    reads = []

    async def counting(svc):
        reads.append(1)
        return other.version

    monkeypatch.setattr(matcher, "stored_version", counting)
    for _ in range(3):
        other.invalidate()
        await other.current(services)
    assert reads == []  # the per-second check stays one Redis GET
    other.db_checked_at -= 3601
    other.invalidate()
    await other.current(services)
    assert reads == [1]
