"""Nothing slips the word filter (OWASP API6, unrestricted access to a sensitive business flow: the
moderation flow). Invisible characters neither hide a listed word nor make a topic unreachable or
invisible, and display names, store names, addresses and report notes are screened too.

Contract: a block word → 422 ``content_rejected``. Names and addresses have no review queue, so a
review word is refused there as well; a report note is read by moderators only, so a review word
is accepted there.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from tests.security.conftest import World, account, error_code
from tests.support import random_point, unique_name

BLOCK, REVIEW = "zqforbidden", "zqdubious"
BLOCK_ZH = "禁忌词"
# the evasions: combining grapheme joiner, Hangul fillers, Khmer inherent vowels, bidi override
INVISIBLES = ["\u034f", "\u3164", "\u115f", "\u1160", "\uffa0", "\u17b4", "\u17b5", "\u202e", "\u200b",
              "\ufe0f", "\U000e0020", "\u2060"]


def hide_in(word: str, ch: str) -> str:
    return word[:2] + ch + word[2:]


@pytest.fixture
async def words(api, services, leak_scanner) -> AsyncIterator[None]:
    mod = await account(services, leak_scanner, "moderator")
    before = (await api.get("/v1/moderation/words", headers=mod.headers)).json()
    resp = await api.put("/v1/moderation/words", headers=mod.headers, json={
        "block": before["block"] + [BLOCK, BLOCK_ZH], "review": before["review"] + [REVIEW], "reason": "test"})
    assert resp.status_code == 200, resp.text
    yield
    resp = await api.put("/v1/moderation/words", headers=mod.headers, json={**before, "reason": "restore"})
    assert resp.status_code == 200, resp.text


@pytest.fixture
async def poster(services, leak_scanner):
    """A fresh account per test: posting is rate limited per user."""
    return await account(services, leak_scanner)


# --- invisible characters -----------------------------------------------------------------------


@pytest.mark.parametrize("ch", INVISIBLES)
async def test_invisible_characters_do_not_hide_a_block_word(api, poster, words, ch):
    for word in (BLOCK, BLOCK_ZH):
        resp = await api.post("/v1/posts", headers=poster.headers, json={"text": f"look {hide_in(word, ch)}"})
        assert resp.status_code == 422 and error_code(resp) == "content_rejected", (ascii(ch), resp.text)


async def test_invisible_characters_do_not_hide_a_review_word(api, poster, words):
    resp = await api.post("/v1/posts", headers=poster.headers, json={"text": hide_in(REVIEW, "\u034f")})
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "pending_review"


# --- topics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["#\u200b#", "#\u202e#", "#\u3164\u200d#", "hi #\u2066"])
async def test_a_topic_of_invisible_characters_is_empty(api, poster, text):
    resp = await api.post("/v1/posts", headers=poster.headers, json={"text": text})
    assert resp.status_code == 422 and error_code(resp) == "empty_topic", (ascii(text), resp.text)


@pytest.mark.parametrize("ch", ["\u202e", "\u200b", "\u2067", "\u034f", "\u3164", "\x07"])
async def test_invisible_characters_are_stripped_from_topics_and_their_urls(api, poster, ch):
    tag = f"evil{uuid.uuid4().hex[:8]}"
    resp = await api.post("/v1/posts", headers=poster.headers, json={
        "text": f"#{ch}{tag}# and #{tag[:2]}{ch}{tag[2:]}"})
    assert resp.status_code == 201, resp.text
    post = resp.json()
    assert post["topics"] == [tag]  # one topic, shown without the invisible character
    for shown in (tag, f"{ch}{tag}", f"#{tag[:2]}{ch}{tag[2:]}#"):
        resp = await api.get(f"/v1/topics/{quote(shown, safe='')}/posts", headers=poster.headers)
        assert resp.status_code == 200, (ascii(shown), resp.text)
        assert [p["id"] for p in resp.json()["items"]] == [post["id"]], ascii(shown)


@pytest.mark.parametrize("inner", ["AC/DC", "a\\b", "..", ".", "a／b"])
async def test_a_topic_its_url_cannot_reach_is_refused(api, poster, inner):
    resp = await api.post("/v1/posts", headers=poster.headers, json={"text": f"#{inner}# tonight"})
    assert resp.status_code == 422 and error_code(resp) == "invalid_topic", (inner, resp.text)


@pytest.mark.parametrize("param", ["a%5Cb", "%E2%80%8B", "%E2%80%AE%E2%80%8B", "%23%E2%80%8B%23", "a%EF%BC%8Fb"])
async def test_the_topic_route_refuses_what_no_post_can_carry(api, world: World, param):
    resp = await api.get(f"/v1/topics/{param}/posts", headers=world.alice.headers)
    assert resp.status_code == 422 and error_code(resp) == "invalid_topic", (param, resp.text)


async def test_a_long_casefolded_topic_is_still_reachable(api, poster):
    """``ß`` folds to ``ss``: a 32-character topic has a 64-character key, which its URL must reach."""
    tag = "ß" * 24 + uuid.uuid4().hex[:8]
    resp = await api.post("/v1/posts", headers=poster.headers, json={"text": f"#{tag}#"})
    assert resp.status_code == 201, resp.text
    resp = await api.get(f"/v1/topics/{quote(tag)}/posts", headers=poster.headers)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["items"]) == 1


# --- names, addresses, notes --------------------------------------------------------------------


@pytest.mark.parametrize("name", [f"Mr {BLOCK}", f"Mr {REVIEW}", hide_in(BLOCK, "\u3164"), f"小{BLOCK_ZH}"])
async def test_display_names_pass_the_filter(api, words, name):
    resp = await api.post("/v1/auth/register", json={
        "username": unique_name("n"), "password": "password123", "display_name": name})
    assert resp.status_code == 422 and error_code(resp) == "content_rejected", (ascii(name), resp.text)


async def test_a_clean_display_name_is_kept(api, words):
    resp = await api.post("/v1/auth/register", json={
        "username": unique_name("n"), "password": "password123", "display_name": "Zoë 小明"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["user"]["display_name"] == "Zoë 小明"


@pytest.mark.parametrize(("field", "value"), [
    ("name", f"{BLOCK} bar"), ("name", f"{REVIEW} bar"), ("name", hide_in(BLOCK_ZH, "\u034f")),
    ("address", f"1 {BLOCK} street"), ("address", f"1 {REVIEW} street"), ("address", hide_in(BLOCK, "\u17b4")),
])
async def test_store_names_and_addresses_pass_the_filter(api, world: World, words, field, value):
    lat, lng = random_point()
    body = {"name": "Corner Shop", "lat": lat, "lng": lng, field: value}
    resp = await api.post("/v1/stores", headers=world.merchant.headers, json=body)
    assert resp.status_code == 422 and error_code(resp) == "content_rejected", (field, ascii(value), resp.text)
    near = await api.get(f"/v1/stores/nearby?lat={lat}&lng={lng}&radius_m=1000", headers=world.alice.headers)
    assert near.status_code == 200 and near.json()["items"] == []  # nothing was written


async def fresh_post(api, author) -> str:
    resp = await api.post("/v1/posts", headers=author.headers, json={"text": "a post to report"})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def test_report_notes_pass_the_filter(api, world: World, services, leak_scanner, words):
    post_id = await fresh_post(api, await account(services, leak_scanner))
    for note in (f"he said {BLOCK}", hide_in(BLOCK, "\u115f")):
        reporter = await account(services, leak_scanner)
        resp = await api.post(f"/v1/posts/{post_id}/reports", headers=reporter.headers,
                              json={"reason": "abuse", "note": note})
        assert resp.status_code == 422 and error_code(resp) == "content_rejected", (ascii(note), resp.text)
        # nothing was written: the same reporter can still report, with a clean note
        resp = await api.post(f"/v1/posts/{post_id}/reports", headers=reporter.headers,
                              json={"reason": "abuse", "note": "rude"})
        assert resp.status_code == 201, resp.text


async def test_a_report_note_may_quote_a_review_word(api, world: World, services, leak_scanner, words):
    """Only moderators read notes, the people a review would ask: a review word is accepted."""
    reporter = await account(services, leak_scanner)
    post_id = await fresh_post(api, await account(services, leak_scanner))
    resp = await api.post(f"/v1/posts/{post_id}/reports", headers=reporter.headers,
                          json={"reason": "spam", "note": f"it says {REVIEW}"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["note"] == f"it says {REVIEW}"

