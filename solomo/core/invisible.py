"""Characters that render as nothing: Unicode's ``Default_Ignorable_Code_Point`` and format (Cf)
characters, which the word filter and topic keys drop before anything else.

Python's :mod:`unicodedata` has no Default_Ignorable property (and its Unicode version trails the
standard), so the ranges are written down here as data, from Unicode 15.1 (unchanged in 16.0):

    Default_Ignorable_Code_Point = Other_Default_Ignorable_Code_Point + Cf + Variation_Selector
                                   − White_Space − FFF9..FFFB − 13430..1343F
                                   − Prepended_Concatenation_Mark

(the definition in ``DerivedCoreProperties.txt``; no Cf or Variation_Selector character is
White_Space since Unicode 6.3, so that term removes nothing). The filter drops the union of
Default_Ignorable and Cf: the Cf characters Default_Ignorable leaves out (the interlinear
annotation controls, the Egyptian hieroglyph format controls, the prepended concatenation marks)
are invisible inside a word too.
"""

from __future__ import annotations

import re

Ranges = tuple[tuple[int, int], ...]  # inclusive (first, last) code points

# PropList.txt, Other_Default_Ignorable_Code_Point (Unicode 15.1)
OTHER_DEFAULT_IGNORABLE: Ranges = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ, AA
    (0x2065, 0x2065),  # reserved
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # reserved
    (0xE0000, 0xE0000),  # reserved
    (0xE0002, 0xE001F),  # reserved
    (0xE0080, 0xE00FF),  # reserved
    (0xE01F0, 0xE0FFF),  # reserved
)

# UnicodeData.txt, General_Category = Cf (Unicode 15.1)
FORMAT: Ranges = (
    (0x00AD, 0x00AD),  # SOFT HYPHEN
    (0x0600, 0x0605),  # ARABIC NUMBER SIGN .. ARABIC NUMBER MARK ABOVE
    (0x061C, 0x061C),  # ARABIC LETTER MARK
    (0x06DD, 0x06DD),  # ARABIC END OF AYAH
    (0x070F, 0x070F),  # SYRIAC ABBREVIATION MARK
    (0x0890, 0x0891),  # ARABIC POUND / PIASTRE MARK ABOVE
    (0x08E2, 0x08E2),  # ARABIC DISPUTED END OF AYAH
    (0x180E, 0x180E),  # MONGOLIAN VOWEL SEPARATOR
    (0x200B, 0x200F),  # ZERO WIDTH SPACE .. RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),  # LEFT-TO-RIGHT EMBEDDING .. RIGHT-TO-LEFT OVERRIDE
    (0x2060, 0x2064),  # WORD JOINER .. INVISIBLE PLUS
    (0x2066, 0x206F),  # LEFT-TO-RIGHT ISOLATE .. NOMINAL DIGIT SHAPES
    (0xFEFF, 0xFEFF),  # ZERO WIDTH NO-BREAK SPACE (byte order mark)
    (0xFFF9, 0xFFFB),  # INTERLINEAR ANNOTATION ANCHOR .. TERMINATOR
    (0x110BD, 0x110BD),  # KAITHI NUMBER SIGN
    (0x110CD, 0x110CD),  # KAITHI NUMBER SIGN ABOVE
    (0x13430, 0x1343F),  # EGYPTIAN HIEROGLYPH VERTICAL JOINER .. END WALLED ENCLOSURE
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT LETTER OVERLAP .. UP STEP
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM .. END PHRASE
    (0xE0001, 0xE0001),  # LANGUAGE TAG
    (0xE0020, 0xE007F),  # TAG SPACE .. CANCEL TAG
)

# PropList.txt, Variation_Selector (Unicode 15.1)
VARIATION_SELECTOR: Ranges = (
    (0x180B, 0x180D),  # MONGOLIAN FREE VARIATION SELECTOR ONE .. THREE
    (0x180F, 0x180F),  # MONGOLIAN FREE VARIATION SELECTOR FOUR
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1 .. 16
    (0xE0100, 0xE01EF),  # VARIATION SELECTOR-17 .. 256
)

# PropList.txt, Prepended_Concatenation_Mark (Unicode 15.1)
PREPENDED_CONCATENATION_MARK: Ranges = (
    (0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD),
)

# the two blocks of format controls the definition names
NOT_IGNORABLE_FORMAT: Ranges = ((0xFFF9, 0xFFFB), (0x13430, 0x1343F))


def code_points(ranges: Ranges) -> frozenset[int]:
    return frozenset(cp for first, last in ranges for cp in range(first, last + 1))


DEFAULT_IGNORABLE: frozenset[int] = (
    code_points(OTHER_DEFAULT_IGNORABLE) | code_points(FORMAT) | code_points(VARIATION_SELECTOR)
) - code_points(NOT_IGNORABLE_FORMAT) - code_points(PREPENDED_CONCATENATION_MARK)
"""4174 code points in Unicode 15.1 and 16.0."""

INVISIBLE: frozenset[int] = DEFAULT_IGNORABLE | code_points(FORMAT)
"""What :func:`strip_invisible` drops."""


def _character_class(points: frozenset[int]) -> str:
    """A regular expression's ``[…]`` of ``points``, as ranges of consecutive code points."""
    spans: list[list[int]] = []
    for cp in sorted(points):
        if spans and spans[-1][1] == cp - 1:
            spans[-1][1] = cp
        else:
            spans.append([cp, cp])
    return "[" + "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in spans) + "]"


# one scan in C over ~25 ranges: str.translate looked every character up in a 4,000-entry table
# (8 µs for a 120-character post, docs/benchmarks.md, twenty-second round)
_INVISIBLE_RE = re.compile(_character_class(INVISIBLE))


def is_invisible(ch: str) -> bool:
    return ord(ch) in INVISIBLE


def strip_invisible(text: str) -> str:
    """``text`` without its default-ignorable and format characters."""
    return _INVISIBLE_RE.sub("", text)
