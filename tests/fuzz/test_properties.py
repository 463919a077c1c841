"""Property-based tests (hypothesis): topic and mention extraction, signed cursors."""

from __future__ import annotations

import base64
import json
import re
import string
import unicodedata

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from feed.text import (
    MAX_TOPIC_CHARS,
    Topic,
    extract_mentions,
    extract_topics,
    normalize_topic,
    parse_topic_param,
    visible,
)
from solomo.core.errors import BadRequest, Invalid
from solomo.core.pagination import MAX_CURSOR_CHARS, MAX_SCORE, CursorCodec, Position

settings.register_profile("solomo", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("solomo")

WORD_CHARS = string.ascii_letters + string.digits + "_"
words = st.text(alphabet=WORD_CHARS, min_size=1, max_size=MAX_TOPIC_CHARS)
# text that stresses the parser: topic and mention markers, spaces, line breaks, full-width forms, CJK
hostile_text = st.text(
    alphabet=st.one_of(st.sampled_from("#＃@＠ \n\r\t_aZ9话题ＡＢｃ\u200b\u3000"), st.characters()), max_size=300
)


def fullwidth(text: str) -> str:
    """ASCII → full-width forms (what a Chinese IME produces)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def keys(text: str) -> list[str]:
    return [t.key for t in extract_topics(text)]


def topics_or_refused(text: str) -> list[Topic]:
    """The topics, or none when the text holds one its URL could not reach (422 invalid_topic)."""
    try:
        return extract_topics(text)
    except Invalid as exc:
        assert exc.code == "invalid_topic"
        return []


def unreachable(key: str) -> bool:
    return "/" in key or "\\" in key or key in (".", "..")


# --- topics ------------------------------------------------------------------------------------


@given(hostile_text)
def test_topics_never_crash_and_are_well_formed(text):
    topics = topics_or_refused(text)
    assert len({t.key for t in topics}) == len(topics)  # one per normalized key
    for topic in topics:
        assert topic.key and topic.display
        assert len(topic.display) <= MAX_TOPIC_CHARS
        assert "\n" not in topic.display and "\r" not in topic.display
        assert normalize_topic(topic.key) == topic.key  # keys are already normal
        assert normalize_topic(topic.display) == topic.key
        assert topic.key == topic.key.strip() and "  " not in topic.key


@given(hostile_text)
def test_topic_urls_lead_back_to_the_topic(text):
    """A client builds /v1/topics/{x}/posts from the display form or the key: both find the topic."""
    for topic in topics_or_refused(text):
        assert parse_topic_param(topic.display) == topic.key
        assert parse_topic_param(topic.key) == topic.key
        assert parse_topic_param(f"#{topic.display}#") == topic.key


@given(words)
def test_tags_match_across_width_and_case(word):
    expected = [word.casefold()]
    assert keys(f"#{word}") == expected
    assert keys(f"#{word.swapcase()}") == expected
    assert keys(fullwidth(f"#{word}")) == expected  # full-width ＃ and letters
    assert keys(f"#{word}#") == expected  # the Weibo form is the same topic
    assert keys(fullwidth(f"#{word}#")) == expected


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="#＃\n\r\x85\u2028\u2029"),
               min_size=1, max_size=MAX_TOPIC_CHARS))
def test_weibo_topics_any_script(inner):
    norm = unicodedata.normalize("NFKC", visible(inner))  # invisible characters are stripped first
    assume(norm == norm.strip() and norm and "#" not in norm and len(norm) <= MAX_TOPIC_CHARS)
    assume(not re.search(r"[\n\r]", norm) and normalize_topic(norm))
    if unreachable(normalize_topic(norm)):
        with pytest.raises(Invalid):
            extract_topics(f"说 #{inner}# 好")
    else:
        assert [t.key for t in extract_topics(f"说 #{inner}# 好")] == [normalize_topic(norm)]


@given(st.integers(min_value=1, max_value=80))
def test_topic_length_limit(n):
    found = keys("#" + "a" * n) + keys(f"#{'话' * n}#")
    assert found == (["a" * n, "话" * n] if n <= MAX_TOPIC_CHARS else [])


@given(st.lists(words, min_size=1, max_size=30))
def test_topics_in_order_of_first_appearance(ws):
    text = " ".join(f"#{w}" for w in ws)
    expected = list(dict.fromkeys(w.casefold() for w in ws))
    assert keys(text) == expected


# --- mentions ----------------------------------------------------------------------------------


@given(hostile_text)
def test_mentions_never_crash_and_are_usernames(text):
    names = extract_mentions(text)
    assert len({n.lower() for n in names}) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_]{3,32}", name)


@given(st.lists(st.text(alphabet=WORD_CHARS, min_size=3, max_size=32), min_size=1, max_size=25))
def test_mentions_found_in_order(names):
    text = "hi " + ", ".join(f"@{n}" for n in names)
    first_spelling: dict[str, str] = {}
    for name in names:
        first_spelling.setdefault(name.lower(), name)
    assert extract_mentions(text) == list(first_spelling.values())
    assert extract_mentions(fullwidth(text)) == extract_mentions(text)
    assert extract_mentions(text.replace("@", "a@")) == []  # an e-mail-like a@b is not a mention


# --- cursors -----------------------------------------------------------------------------------

codec = CursorCodec("property-secret")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
scores = st.one_of(st.integers(-MAX_SCORE, MAX_SCORE),
                   st.floats(-MAX_SCORE, MAX_SCORE, allow_nan=False, allow_infinity=False, width=64))
ids = st.binary(min_size=12, max_size=12).map(ObjectId)


def raw_of(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def token_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def rejected(token: str, decode=codec.decode) -> bool:
    with pytest.raises(BadRequest) as info:
        decode(token)
    return info.value.code == "invalid_cursor" and info.value.status == 400


@given(scores, ids)
def test_position_round_trip(score, item_id):
    token = codec.encode_position(Position(float(score), item_id))
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)  # URL-safe as it stands
    assert codec.decode_position(token) == Position(float(score), item_id)


@given(json_values)
def test_any_value_round_trips(value):
    token = codec.encode(value)
    if len(token) > MAX_CURSOR_CHARS:  # longer than any cursor we issue: refused before anything else
        assert rejected(token)
    else:
        assert codec.decode(token) == value


@given(scores, ids, st.data())
def test_any_byte_change_is_rejected(score, item_id, data):
    raw = raw_of(codec.encode_position(Position(float(score), item_id)))
    i = data.draw(st.integers(0, len(raw) - 1), label="byte")
    flip = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(raw)
    tampered[i] ^= flip
    assert rejected(token_of(bytes(tampered)))


@given(scores, ids, st.data())
def test_truncated_or_extended_is_rejected(score, item_id, data):
    raw = raw_of(codec.encode_position(Position(float(score), item_id)))
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    assert rejected(token_of(raw[:cut]))
    extra = data.draw(st.binary(min_size=1, max_size=8), label="extra")
    assert rejected(token_of(raw + extra))


@given(scores, ids)
def test_other_secret_is_rejected(score, item_id):
    token = CursorCodec("another-secret").encode_position(Position(float(score), item_id))
    assert rejected(token)


@given(st.text(max_size=200))
def test_garbage_is_a_400_never_a_crash(text):
    try:
        codec.decode_position(text)
    except BadRequest as exc:
        assert exc.code == "invalid_cursor"
    else:  # only a genuine signed cursor gets through; random text practically never is one
        raise AssertionError(f"accepted {text!r}")


@given(json_values)
def test_signed_but_wrong_shape_is_rejected(value):
    assume(not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int | float)
                and isinstance(value[1], str)))
    assert rejected(codec.encode(value), codec.decode_position)


@given(st.one_of(st.booleans(), st.integers().filter(lambda n: abs(n) > MAX_SCORE),
                 st.floats().filter(lambda x: not abs(x) <= MAX_SCORE), st.text(max_size=10)),
       ids)
def test_signed_but_bad_score_is_rejected(score, item_id):
    """A validly signed cursor with a score no list has (a bool, NaN, a huge number) is a 400, never a 500."""
    forged = codec.sign(json.dumps([score, str(item_id)]).encode())  # json: any integer, NaN, Infinity
    assert rejected(forged, codec.decode_position)


@given(scores, st.text(max_size=30).filter(lambda t: not ObjectId.is_valid(t)))
def test_signed_but_foreign_id_is_rejected(score, item_id):
    assert rejected(codec.encode([score, item_id]), codec.decode_position)


# --- through HTTP: a tampered cursor is a 400 on a real list route -----------------------------


async def test_tampered_cursor_over_http(client, services):
    from tests.support import register

    acct = await register(client)
    valid = services.cursors.encode_position(Position(10.0**12, ObjectId("f" * 24)))
    raw = raw_of(valid)
    tampered = [codec.encode_position(Position(1.0, ObjectId("0" * 24))), "", "!!!", valid[:-1], valid + "A"] + [
        token_of(raw[:i] + bytes([raw[i] ^ 0x41]) + raw[i + 1:]) for i in range(len(raw))
    ]
    url = f"/v1/users/{acct.id}/checkins"
    for token in tampered:
        resp = await client.get(url, params={"cursor": token}, headers=acct.headers)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_cursor", (token, resp.text)
    resp = await client.get(url, params={"cursor": "a" * 600}, headers=acct.headers)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_cursor"  # longer than any cursor
    ok = await client.get(url, params={"cursor": valid}, headers=acct.headers)
    assert ok.status_code == 200 and ok.json() == {"items": [], "next_cursor": None}, ok.text
