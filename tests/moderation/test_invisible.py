"""Invisible characters (Default_Ignorable_Code_Point and format characters) never hide a listed
word: the table itself, every such character one by one, and any number of them anywhere."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.matcher import CompiledWords
from moderation.normalize import normalize
from moderation.words import WordLists
from solomo.core.invisible import DEFAULT_IGNORABLE, FORMAT, INVISIBLE, code_points, strip_invisible

WORDS = CompiledWords(WordLists(block=["spam", "敏感", "bad guy"], review=["ass", "审核"]))
EVERY_INVISIBLE = sorted(chr(cp) for cp in INVISIBLE)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.word) for m in WORDS.find(text)]


def test_the_table_is_unicodes_default_ignorable_set():
    assert len(DEFAULT_IGNORABLE) == 4174  # DerivedCoreProperties.txt 15.1 and 16.0: "Total code points: 4174"
    named = [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180E, 0x200B, 0x200D, 0x202E,
             0x2066, 0x3164, 0xFE0F, 0xFEFF, 0xFFA0, 0x1D173, 0xE0001, 0xE0100, 0xE0FFF]
    assert all(cp in DEFAULT_IGNORABLE for cp in named)
    # the exclusions of the definition: visible marks, interlinear annotation, hieroglyph controls
    assert not {0x0600, 0x06DD, 0x110BD, 0xFFF9, 0x13430} & DEFAULT_IGNORABLE
    assert not any(chr(cp).isspace() for cp in DEFAULT_IGNORABLE)
    assert not {0x0020, 0x3000, 0x00A0, 0x1680} & INVISIBLE  # spaces separate words: not invisible


def test_the_format_table_agrees_with_unicodedata():
    """Every Cf character Python knows is in the table; the rest of the table is newer than Python's data."""
    table = code_points(FORMAT)
    known = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cf"}
    assert known <= table
    assert {unicodedata.category(chr(cp)) for cp in table - known} <= {"Cn"}


@pytest.mark.parametrize("text", [
    "s\u034fpam", "敏\u034f感", "s\u3164pam", "敏\u3164感", "敏\u115f感", "敏\u1160感", "s\uffa0pam", "s\u17b4pam",
    "s\u17b5pam", "spa\ufe0fm", "s\U000e0100pam", "bad\u2060 guy", "s\u202epam", "s\U000e0041pam",
])
def test_issue_examples_are_caught(text):
    assert ("block" in {k for k, _ in kinds(text)}), ascii(text)


def test_every_invisible_character_inside_a_word_is_ignored():
    """The whole range, one character at a time, in a spaced and an unspaced script."""
    missed = [hex(ord(ch)) for ch in EVERY_INVISIBLE
              if not (WORDS.find(f"s{ch}pam") and WORDS.find(f"敏{ch}感") and WORDS.find(f"{ch}spam{ch}"))]
    assert missed == []


def test_invisible_characters_do_not_split_words():
    """Removed as if never typed: ``cl\\u200bass`` is ``class``, which holds no word ``ass``."""
    assert kinds("cl\u200bass") == []
    assert kinds("cl\u034fass") == []
    assert normalize("e\u034f\u0301") == normalize("\u00e9")  # nor keep a mark from its base


@st.composite
def with_invisibles(draw: st.DrawFn, base: str) -> str:
    chars = list(base)
    for _ in range(draw(st.integers(1, 6))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(EVERY_INVISIBLE)))
    return "".join(chars)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["spam", "SPAM", "敏感", "bad guy", "buy spam now"]).flatmap(with_invisibles))
def test_block_words_survive_any_invisible_characters_anywhere(text):
    assert ("block" in {k for k, _ in kinds(text)}), ascii(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40).flatmap(lambda t: st.tuples(st.just(t), with_invisibles(t))))
def test_inserting_invisible_characters_never_changes_the_key(pair):
    text, marked = pair
    assert normalize(marked) == normalize(text)
    assert strip_invisible(marked) == strip_invisible(text)


def test_strip_invisible_drops_exactly_the_table():
    """The one-scan expression drops every code point of the table and none of its neighbours
    (each range's edges, each side): the same as a test of every character against the table."""
    surrogates = set(range(0xD800, 0xE000))
    near = sorted({cp + d for cp in INVISIBLE for d in (-1, 0, 1) if 0 < cp + d <= 0x10FFFF} - surrogates)
    text = "".join(map(chr, near))
    assert strip_invisible(text) == "".join(ch for ch in text if ord(ch) not in INVISIBLE)
    assert strip_invisible("咖\u200b啡\ufe0f，ok\u00ad") == "咖啡，ok"
