"""Voucher codes: unguessable, yet short enough to read aloud at a counter.

Ten symbols of Crockford's base32 (no I, L, O or U, so nothing is mistaken for 1 or 0) carry
50 random bits, shown as ``ABCDE-FGHJK``. With guesses limited per store (see
:func:`offers.vouchers.redeem`), finding a live code by guessing is hopeless. Input is forgiving: case,
spaces and dashes are ignored, and I/L read as 1, O as 0.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
QR_PREFIX = "solomo:voucher:"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def display(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def normalize(raw: str) -> str | None:
    """The stored form of what a clerk typed or a scanner read, or None if it cannot be a code."""
    text = raw.strip()
    if text.lower().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX):]
    text = text.replace("-", "").replace(" ", "").upper().translate(_READ_AS)
    if len(text) != LENGTH or any(c not in ALPHABET for c in text):
        return None
    return text


def qr_payload(code: str) -> str:
    """The string to encode in the voucher's QR code (scanning it yields a redeemable code)."""
    return QR_PREFIX + display(code)
