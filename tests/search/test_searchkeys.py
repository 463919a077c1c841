"""The search tokenizer (pure functions): folding, runs, the keys of each kind, their bounds."""

from __future__ import annotations

from solomo.core.searchkeys import (
    MAX_KEYS,
    Run,
    contains_run,
    fold,
    pinyin_match,
    post_keys,
    run_keys,
    runs,
    store_keys,
    substring_keys,
    user_keys,
)


def test_fold_full_width_case_and_invisible_characters() -> None:
    assert fold("ＳＱＵＡＲＥ\u200b Coffee  １") == "square coffee 1"
    assert fold("  Straße ") == "strasse"


def test_runs_split_mixed_chinese_and_latin() -> None:
    assert runs(fold("人民ＡＢＣ广场, coffee！7-Eleven")) == [
        Run("cjk", "人民"), Run("word", "abc"), Run("cjk", "广场"), Run("word", "coffee"), Run("word", "7"),
        Run("word", "eleven")]
    assert runs(fold("!!! ...")) == []


def test_store_keys_hold_ngrams_word_prefixes_pinyin_and_initials() -> None:
    keys = set(store_keys("人民广场咖啡"))
    assert {"c:咖", "b:咖啡", "b:人民", "n:人民广场"} <= keys
    assert {"p:renmin", "p:kafei", "p:guangchang", "i:rmgc", "i:kf"} <= keys
    assert "b:啡人" not in keys and "p:fei" in keys
    latin = set(store_keys("Square Coffee"))
    assert {"w:squ", "w:coffee", "n:square c"} <= latin
    assert not any(k.startswith(("p:", "i:")) for k in latin)  # Latin text has no pinyin keys


def test_query_keys_are_found_in_the_document_keys() -> None:
    keys = set(store_keys("人民广场咖啡"))
    for q in ("咖啡", "广场咖", "人"):
        (run,) = runs(fold(q))
        assert set(run_keys(run)) <= keys
    assert set(run_keys(Run("word", "squ"))) <= set(store_keys("SQUARE coffee"))


def test_user_keys_find_any_display_name_substring() -> None:
    keys = set(user_keys("Bob_1", "王小明 Bob"))
    assert {"u:b", "u:bob_1", "s:小明", "s:明", "s: b"} <= keys
    assert set(substring_keys(fold("小明 b"))) <= keys
    assert "u:bob_12" not in keys


def test_direct_and_pinyin_matching() -> None:
    name = fold("人民广场咖啡")
    assert contains_run(name, Run("cjk", "场咖"))
    assert not contains_run(name, Run("cjk", "咖场"))
    assert contains_run(fold("Square Coffee"), Run("word", "cof"))
    assert not contains_run(fold("Square Coffee"), Run("word", "offee"))  # prefixes of words, not infixes
    assert pinyin_match(name, "renmin") == "full"
    assert pinyin_match(name, "kafei") == "full"
    assert pinyin_match(name, "rmgc") == "initials"
    assert pinyin_match(name, "xyz") is None


def test_key_arrays_are_bounded() -> None:
    long_text = "".join(chr(0x4E00 + i) for i in range(2000))  # 2,000 distinct characters
    assert len(post_keys(long_text)) == MAX_KEYS
    words = " ".join(f"w{i}abcdefghijklmnopqrstuvwxyz" for i in range(400))
    assert len(post_keys(words)) == MAX_KEYS
    assert all(len(k) <= 2 + 16 for k in post_keys(words))
    assert len(store_keys("人" * 80)) < 200  # repeated characters give repeated keys, stored once
