"""Text normalization for word matching, built to defeat the usual evasions.

``normalize`` maps text to a *key string* plus, for each kept character, whether it touched the
previous kept character in the original text (``joined``):

- NFKC folds full-width and compatibility forms (``ｓｐａｍ`` → ``spam``, ``①`` → ``1``);
- ``casefold`` removes case (``SPAM``, ``Straße`` → ``strasse``);
- every character that is not a letter, digit or combining mark is dropped — spaces,
  punctuation, symbols, emoji, zero-width and control characters — so ``s.p.a.m``, ``s p a m``
  and ``敏 感`` become ``spam`` and ``敏感``.

The ``joined`` flags keep just enough of the dropped separators to decide word boundaries for
words in space-separated scripts (see :func:`is_bounded_word`): ``ass`` must not fire inside
``class``, but ``s.p.a.m`` must still be caught.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

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


def normalize(text: str) -> Normalized:
    out: list[str] = []
    joined: list[bool] = []
    touching = False
    for ch in fold(text):
        if _kept(ch):
            out.append(ch)
            joined.append(touching)
            touching = True
        else:
            touching = False
    return Normalized("".join(out), tuple(joined))


def word_key(word: str) -> str:
    """The matching key of a list word (its normalized text)."""
    return normalize(word).text


def is_bounded_word(key: str) -> bool:
    """Words in space-separated scripts only match as whole words."""
    return bool(key) and all(is_spaced_char(c) for c in key)
