"""Text normalization for word matching, built to defeat the usual evasions.

``normalize`` maps text to a *key string* plus, for each kept character, whether it touched the
previous kept character in the original text (``joined``):

- NFKC folds full-width and compatibility forms (``ｓｐａｍ`` → ``spam``, ``①`` → ``1``);
- ``casefold`` removes case (``SPAM``, ``Straße`` → ``strasse``);
- first of all, invisible characters (every ``Default_Ignorable_Code_Point`` and format
  character, :mod:`solomo.core.invisible`) are removed as if never typed: a combining grapheme
  joiner (U+034F), a Hangul filler (U+3164), a variation selector or a zero-width space inside a
  word neither hides the word nor splits it (``cl`` U+200B ``ass`` is still ``class``);
- every other character that is not a letter, digit or combining mark is dropped — spaces,
  punctuation, symbols, emoji and control characters — so ``s.p.a.m``, ``s p a m`` and ``敏 感``
  become ``spam`` and ``敏感``.

The ``joined`` flags keep just enough of the dropped separators to decide word boundaries for
words in space-separated scripts (see :func:`is_bounded_word`): ``ass`` must not fire inside
``class``, but ``s.p.a.m`` must still be caught.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from solomo.core.invisible import strip_invisible

# Latin, IPA, Greek and Cyrillic: scripts that separate words with spaces. Words made only of
# these characters match on word boundaries; anything else (Chinese, Japanese …) matches as a
# substring, the usual practice for scripts written without spaces.
_SPACED_SCRIPT_END = 0x0530


def _kept(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"


@dataclass(frozen=True)
class Normalized:
    text: str
    joined: tuple[bool, ...]
    """``joined[i]``: character ``i`` directly followed character ``i - 1`` in the original."""

    def is_boundary(self, i: int) -> bool:
        """True if a word may start at ``i`` (or end just before ``i``)."""
        if i <= 0 or i >= len(self.text):
            return True
        if not self.joined[i]:
            return True
        return not (is_spaced_char(self.text[i - 1]) and is_spaced_char(self.text[i]))


def is_spaced_char(ch: str) -> bool:
    return ord(ch) < _SPACED_SCRIPT_END


def fold(text: str) -> str:
    """NFKC + casefold (NFKC again: casefolding can produce non-NFKC sequences)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _keep(text: str, touching: bool = False) -> tuple[list[str], list[bool]]:
    out: list[str] = []
    joined: list[bool] = []
    for ch in text:
        if _kept(ch):
            out.append(ch)
            joined.append(touching)
            touching = True
        else:
            touching = False
    return out, joined


def _starts_cluster(ch: str) -> bool:
    """False for characters NFKC may compose with what precedes them: combining marks and the
    medial/final Hangul jamo."""
    return unicodedata.combining(ch) == 0 and not ("\u1160" <= ch <= "\u11ff" or "\ud7b0" <= ch <= "\ud7ff")


def _recompose(chars: list[str], joined: list[bool]) -> tuple[list[str], list[bool]]:
    """Folds again each cluster (a base character and the marks after it) once the separators
    between them are gone: ``e`` ``.`` U+0301 must give the key of ``é``, or a separator would hide
    a word (and normalizing would not be idempotent)."""
    out: list[str] = []
    flags: list[bool] = []
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or _starts_cluster(chars[i]):
            kept, kept_joined = _keep(fold("".join(chars[start:i])), joined[start])
            out.extend(kept)
            flags.extend(kept_joined)
            start = i
    return out, flags


def normalize(text: str) -> Normalized:
    # before folding, so that an invisible character cannot keep a mark from composing with its base
    out, joined = _keep(fold(strip_invisible(text)))
    key = "".join(out)
    for _ in range(3):  # almost always zero rounds: only when a dropped separator split a cluster
        if fold(key) == key:
            break
        out, joined = _recompose(out, joined)
        key = "".join(out)
    return Normalized(key, tuple(joined))


def word_key(word: str) -> str:
    """The matching key of a list word (its normalized text)."""
    return normalize(word).text


def is_bounded_word(key: str) -> bool:
    """Words in space-separated scripts only match as whole words."""
    return bool(key) and all(is_spaced_char(c) for c in key)
