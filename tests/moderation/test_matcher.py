"""The word matcher on its own: normalization, evasions, word boundaries, precedence."""

from __future__ import annotations

import pytest

from moderation.matcher import CompiledWords
from moderation.normalize import normalize
from moderation.words import WordLists, clean_lists
from solomo.core.errors import Invalid

WORDS = CompiledWords(WordLists(block=["spam", "敏感", "bad guy"], review=["ass", "check", "审核"]))


def kinds(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.word) for m in WORDS.find(text)]


@pytest.mark.parametrize("text", [
    "spam", "SPAM", "SpAm here", "ｓｐａｍ", "ＳＰＡＭ!", "s.p.a.m", "s p a m", "s-p_a*m", "buy s . p . a . m now",
    "s\u200bpam", "sp\u00adam", "please, spam.", "买spam吧", "#spam", "@spam", "敏感", "敏 感", "敏。感", "敏\n感",
    "这很敏感啊", "ｂａｄ　ｇｕｙ", "BAD-GUY", "badguy",
])
def test_block_words_survive_evasions(text):
    assert ("block" in {k for k, _ in kinds(text)}), text


@pytest.mark.parametrize("text", [
    "class", "passage", "spammer", "antispam", "checkout", "a classic bass", "敏", "感", "",
    "spa m" + "x", "s.p.a", "hello world",
])
def test_no_false_positives_inside_longer_words(text):
    assert kinds(text) == [], text


def test_review_words_and_precedence():
    assert kinds("just check it") == [("review", "check")]
    assert kinds("审 核一下") == [("review", "审核")]
    # block words come first when both match
    assert [k for k, _ in kinds("check the spam")] == ["block", "review"]
    both = CompiledWords(WordLists(block=["Word"], review=["word"]))
    assert [m.kind for m in both.find("a word")] == ["block"]


def test_spaced_out_letters_are_matched_even_across_a_longer_word():
    # documented trade-off: letters written one by one are treated as a word of their own
    assert kinds("c l a s s") == [("review", "ass")]


def test_normalize_keeps_joins():
    n = normalize("Ｓ.p am")
    assert n.text == "spam"
    assert n.joined == (False, False, False, True)


def test_clean_lists_validation():
    lists = clean_lists(["  spam ", "SPAM", "ｓｐａｍ", "敏感"], ["review"])
    assert lists.block == ["spam", "敏感"]
    for block in (["   "], [""], ["x" * 65], ["!!!"], ["spam"] * 5001):
        with pytest.raises(Invalid):
            clean_lists(block, [])
    with pytest.raises(Invalid):
        clean_lists(["spam"], ["S.P.A.M"])


def test_empty_lists_match_nothing():
    assert CompiledWords(WordLists()).find("anything spam 敏感") == []
