"""The search tokenizer: text → the index keys stored on a document, and a query → the keys to look up.

Search runs on MongoDB alone: every searchable document carries ``search_keys``, a bounded array
of short strings under a multikey index, and a query becomes a few key lookups (``docs/design.md``,
"Search"). This module is pure (no I/O) so that registration (:mod:`solomo.accounts`), store and
post writes and the search package all compute the same keys.

Text is first *folded*: invisible characters dropped, NFKC (full-width ``ＡＢＣ１`` → ``abc1``,
half-width katakana → full), case-folded. It then splits into *runs*:

* a CJK run (Han, kana, Hangul: scripts written without spaces) is indexed by its single
  characters (``c:咖``) and bigrams (``b:咖啡``); a query run of two or more characters needs all
  its bigrams, one character needs its unigram (then the caller checks the real substring);
* a word (letters or digits of other scripts) is indexed by its prefixes (``w:s``, ``w:sq`` …
  up to :data:`MAX_PREFIX` characters), so ``squ`` finds ``Square``;
* for stores, the Han characters of the name also give pinyin keys: from every syllable on, the
  prefixes of the joined syllables (``p:renmin``, ``p:kafei``) and of their initials (``i:rmgc``).

Key kinds carry a prefix so that a Latin word never collides with a pinyin key. Every array is
bounded (:data:`MAX_KEYS`), whatever the length of the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pypinyin import lazy_pinyin

from solomo.core.invisible import strip_invisible

MAX_PREFIX = 16
"""Word prefixes are indexed up to this length; a longer query word looks up its first 16
characters and the caller checks the rest against the text."""
MAX_PINYIN = 24
"""Joined pinyin is indexed up to this many letters from each syllable (about five syllables)."""
MAX_INITIALS = 10
MAX_NAME_PREFIX = 24
MAX_KEYS = 1500
"""At most this many keys per document: a 2,000-character post of all-distinct characters would
give about 4,000; the keys of the text's beginning are kept (the cap is reached only by very long,
very varied posts)."""

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def is_cjk(ch: str) -> bool:
    """Han, kana and Hangul: scripts whose words are not separated by spaces."""
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF
            or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F or 0x31F0 <= o <= 0x31FF)


def fold(text: str) -> str:
    """Invisible characters out, NFKC (full width → ASCII), case-folded, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", strip_invisible(text)).casefold()
    return " ".join(folded.split())


@dataclass(frozen=True)
class Run:
    kind: str  # "cjk" or "word"
    text: str


def runs(folded: str) -> list[Run]:
    """The CJK runs and words of folded text, in order; everything else separates them."""
    out: list[Run] = []
    kind, buf = "", list[str]()
    for ch in folded:
        k = "cjk" if is_cjk(ch) else "word" if ch.isalnum() else ""
        if k != kind and buf:
            out.append(Run(kind, "".join(buf)))
            buf = []
        kind = k
        if k:
            buf.append(ch)
    if buf and kind:
        out.append(Run(kind, "".join(buf)))
    return out


def _add(keys: dict[str, None], key: str) -> None:
    if len(keys) < MAX_KEYS:
        keys[key] = None


def _text_keys(keys: dict[str, None], folded: str) -> None:
    for run in runs(folded):
        if run.kind == "cjk":
            for i, ch in enumerate(run.text):
                _add(keys, "c:" + ch)
                if i + 1 < len(run.text):
                    _add(keys, "b:" + run.text[i:i + 2])
        else:
            for n in range(1, min(len(run.text), MAX_PREFIX) + 1):
                _add(keys, "w:" + run.text[:n])


def _pinyin_keys(keys: dict[str, None], folded: str) -> None:
    syllables = [s for s in lazy_pinyin("".join(_HAN.findall(folded))) if s.isascii() and s.isalpha()]
    for i in range(len(syllables)):
        joined = "".join(syllables[i:])[:MAX_PINYIN]
        for n in range(1, len(joined) + 1):
            _add(keys, "p:" + joined[:n])
        initials = "".join(s[0] for s in syllables[i:i + MAX_INITIALS])
        for n in range(1, len(initials) + 1):
            _add(keys, "i:" + initials[:n])


def store_keys(name: str) -> list[str]:
    """Keys of a store name: name prefixes (``n:``), CJK n-grams, word prefixes, pinyin and initials."""
    folded = fold(name)
    keys: dict[str, None] = {}
    for n in range(1, min(len(folded), MAX_NAME_PREFIX) + 1):
        if folded[n - 1] != " ":  # a trimmed query never ends with a space
            _add(keys, "n:" + folded[:n])
    _text_keys(keys, folded)
    _pinyin_keys(keys, folded)
    return list(keys)


def user_keys(username: str, display_name: str) -> list[str]:
    """Keys of a user: username prefixes (``u:``) and every character and bigram of the display name
    (``s:``), so any substring of it is found (display names are at most 32 characters)."""
    keys: dict[str, None] = {}
    lowered = username.lower()
    for n in range(1, len(lowered) + 1):
        _add(keys, "u:" + lowered[:n])
    folded = fold(display_name)
    for i in range(len(folded)):
        _add(keys, "s:" + folded[i])
        if i + 1 < len(folded):
            _add(keys, "s:" + folded[i:i + 2])
    return list(keys)


def post_keys(text: str) -> list[str]:
    """Keys of a post text: CJK n-grams and word prefixes, at most :data:`MAX_KEYS`."""
    keys: dict[str, None] = {}
    _text_keys(keys, fold(text))
    return list(keys)


def topic_prefixes(key: str) -> list[str]:
    """The prefixes of a (normalized) topic key, up to :data:`MAX_NAME_PREFIX` characters."""
    return [key[:n] for n in range(1, min(len(key), MAX_NAME_PREFIX) + 1)]


# --- the query side -------------------------------------------------------------------------------

def run_keys(run: Run) -> list[str]:
    """The keys a document must all hold to contain ``run`` (the direct match: CJK substring or
    word prefix). Necessary, not sufficient: the caller checks the text."""
    if run.kind == "cjk":
        if len(run.text) == 1:
            return ["c:" + run.text]
        return list(dict.fromkeys("b:" + run.text[i:i + 2] for i in range(len(run.text) - 1)))
    return ["w:" + run.text[:MAX_PREFIX]]


def substring_keys(folded: str) -> list[str]:
    """The display-name keys a user must hold to contain ``folded`` (see :func:`user_keys`)."""
    if len(folded) == 1:
        return ["s:" + folded]
    return list(dict.fromkeys("s:" + folded[i:i + 2] for i in range(len(folded) - 1)))


def words_of(folded: str) -> list[str]:
    return [r.text for r in runs(folded) if r.kind == "word"]


def contains_run(folded_text: str, run: Run) -> bool:
    """True when the text holds ``run`` directly: a CJK substring, or a word starting with it."""
    if run.kind == "cjk":
        return run.text in folded_text
    return any(w.startswith(run.text) for w in words_of(folded_text))


def pinyin_match(folded_text: str, word: str) -> str | None:
    """"full" when ``word`` starts the joined pinyin from some syllable of the text's Han characters,
    "initials" when it starts their initials from some syllable, else None."""
    syllables = [s for s in lazy_pinyin("".join(_HAN.findall(folded_text))) if s.isascii() and s.isalpha()]
    for i in range(len(syllables)):
        if "".join(syllables[i:]).startswith(word):
            return "full"
    for i in range(len(syllables)):
        if "".join(s[0] for s in syllables[i:]).startswith(word):
            return "initials"
    return None
