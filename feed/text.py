"""Weibo-style text: topics (``#话题#`` and ``#tag``) and ``@mentions``.

Topic keys are normalized (NFKC, case-folded, inner spaces collapsed) so that ``#ＳｏＬｏＭｏ``,
``#solomo`` and ``#SoLoMo#`` are one topic; the display form keeps what the author wrote first.

Invisible characters (default-ignorable and format characters, bidi controls included, and
control characters other than spaces) are *stripped* before topics are parsed, from post texts and
from topics in URLs alike: ``#<U+200B>spam#`` and ``#<U+202E>spam#`` are the topic ``spam``, and
a topic of nothing but such characters is an empty topic. A topic must also be reachable by its URL
(``GET /v1/topics/{topic}/posts``): one whose key holds ``/`` or a backslash, or is ``.`` or ``..``, or
is longer than :data:`MAX_TOPIC_KEY_CHARS`, is *refused* (422 ``invalid_topic``), in a post as in
a URL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from solomo.core.errors import Invalid
from solomo.core.invisible import is_invisible

MAX_TOPIC_CHARS = 32
# casefolding may lengthen a topic written with MAX_TOPIC_CHARS characters (``ß`` → ``ss``)
MAX_TOPIC_KEY_CHARS = 3 * MAX_TOPIC_CHARS
MAX_TOPICS = 20
TOPIC_RULES = (
    "Topics: invisible characters (zero-width, bidi controls, variation selectors, fillers — every "
    "Unicode Default_Ignorable and format character — and control characters) are stripped, in post texts "
    "and topic URLs alike, so #\\u200bspam# is the topic spam and #\\u200b# is an empty topic (422 "
    "empty_topic). A topic must be reachable by its URL: one containing / or \\, or that is . or .., "
    "is refused with 422 invalid_topic.")
MAX_MENTIONS = 20

_TAG = re.compile(r"#(\w+)")
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{3,32})(?![A-Za-z0-9_])")


@dataclass(frozen=True)
class Topic:
    key: str
    display: str


def visible(text: str) -> str:
    """``text`` without the characters that render as nothing (see the module's docstring)."""
    return "".join(ch for ch in text
                   if not (is_invisible(ch) or (unicodedata.category(ch) == "Cc" and not ch.isspace())))


def normalize_topic(value: str) -> str:
    text = unicodedata.normalize("NFKC", visible(value)).casefold().strip()
    return re.sub(r"\s+", " ", text)


def check_topic_key(key: str) -> str:
    """``key`` if a topic URL can carry it, else 422 ``invalid_topic``."""
    if not key or len(key) > MAX_TOPIC_KEY_CHARS or "#" in key:
        raise Invalid(f"a topic is 1..{MAX_TOPIC_CHARS} characters", code="invalid_topic")
    if "/" in key or "\\" in key or key in (".", ".."):
        raise Invalid("a topic cannot contain / or \\, nor be . or ..", code="invalid_topic")
    return key


def _weibo_topic_at(text: str, start: int) -> tuple[str, int] | None:
    """``#…#`` starting at ``start``: 1..32 chars, one line, no space just inside either ``#``."""
    end = text.find("#", start + 1)
    if end == -1:
        return None
    inner = text[start + 1 : end]
    if not inner or len(inner) > MAX_TOPIC_CHARS or "\n" in inner or "\r" in inner:
        return None
    if inner != inner.strip():
        return None
    return inner, end + 1


def extract_topics(text: str) -> list[Topic]:
    """Topics in order of first appearance, one per normalized key; 422 ``invalid_topic`` for a
    topic its URL could not reach."""
    found: dict[str, Topic] = {}
    i = 0
    # invisible characters out and NFKC first, so a full-width ＃ counts as #
    text = unicodedata.normalize("NFKC", visible(text))
    while True:
        i = text.find("#", i)
        if i == -1:
            break
        weibo = _weibo_topic_at(text, i)
        if weibo is not None:
            display, i = weibo
        else:
            match = _TAG.match(text, i)
            if match is None or len(match.group(1)) > MAX_TOPIC_CHARS:
                i += 1 if match is None else match.end() - i
                continue
            display, i = match.group(1), match.end()
        key = normalize_topic(display)
        if key and key not in found:
            check_topic_key(key)
            found[key] = Topic(key, display)
    return list(found.values())


def has_empty_topic(text: str) -> bool:
    """True when the text holds a topic marker with nothing in it: ``##`` or a ``#`` that starts a
    word and is followed by the end of the text or a space (``C#`` and ``#1`` are fine)."""
    text = unicodedata.normalize("NFKC", visible(text))
    i = 0
    while True:
        i = text.find("#", i)
        if i == -1:
            return False
        weibo = _weibo_topic_at(text, i)
        if weibo is not None:
            i = weibo[1]
            continue
        tag = _TAG.match(text, i)
        if tag is not None:
            i = tag.end()
            continue
        starts_word = i == 0 or text[i - 1].isspace()
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if starts_word and (nxt == "" or nxt.isspace() or nxt == "#"):
            return True
        i += 1


def parse_topic_param(value: str) -> str:
    """A topic given in a URL (``话题``, ``#tag``, ``#话题#``) → its key, normalized as in posts;
    422 ``invalid_topic`` when no post could carry it."""
    raw = unicodedata.normalize("NFKC", visible(value)).strip()
    if raw.startswith("#"):
        raw = raw[1:]
    if raw.endswith("#"):
        raw = raw[:-1]
    return check_topic_key(normalize_topic(raw))


def extract_mentions(text: str) -> list[str]:
    """Distinct ``@username`` candidates in order (case-insensitively distinct)."""
    seen: dict[str, str] = {}
    for match in _MENTION.finditer(unicodedata.normalize("NFKC", text)):
        seen.setdefault(match.group(1).lower(), match.group(1))
    return list(seen.values())
