"""The search query ``q``: trimmed, 1..64 characters (contract: Search), else 422 ``invalid``."""

from __future__ import annotations

from solomo.core.errors import Invalid

Q_MAX = 64


def parse_q(q: str) -> str:
    trimmed = q.strip()
    if not 1 <= len(trimmed) <= Q_MAX:
        raise Invalid(f"q must be 1..{Q_MAX} characters after trimming")
    return trimmed
