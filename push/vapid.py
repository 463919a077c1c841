"""The VAPID key pair (RFC 8292): the application server key browsers subscribe with, and the
signed token every request to a push service carries.

The private key comes from ``SOLOMO_VAPID_PRIVATE_KEY`` (production: the same key for every API
process and worker, since subscriptions are bound to its public half) or, unset, from
``{data_dir}/vapid_private.pem``, made on first use. Several processes may start at once: the file
is written under a temporary name and linked into place, so exactly one key wins and everyone
reads that one.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from solomo.core.settings import Settings

KEY_FILE = "vapid_private.pem"
TOKEN_TTL_S = 12 * 3600
"""A token's lifetime (RFC 8292 allows at most 24 hours)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Strict base64url (padding optional); raises ValueError."""
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for c in text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def _parse_key(text: str) -> ec.EllipticCurvePrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the VAPID key must be a P-256 EC key")
        return key
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("a raw VAPID private key is 32 bytes, base64url")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def _from_data_dir(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{time.monotonic_ns()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(tmp, path)  # fails if another process got there first: theirs is the key
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return _parse_key(path.read_text())


@lru_cache(maxsize=8)
def _load(configured: str, data_dir: str) -> ec.EllipticCurvePrivateKey:
    return _parse_key(configured) if configured.strip() else _from_data_dir(Path(data_dir))


def private_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    return _load(settings.vapid_private_key, str(settings.data_dir))


def public_key_bytes(settings: Settings) -> bytes:
    """The application server key: the uncompressed P-256 point (65 bytes)."""
    return private_key(settings).public_key().public_bytes(serialization.Encoding.X962,
                                                             serialization.PublicFormat.UncompressedPoint)


def application_server_key(settings: Settings) -> str:
    """What ``GET /v1/push/key`` answers and ``PushManager.subscribe`` takes: base64url, no padding."""
    return b64url(public_key_bytes(settings))


def origin(endpoint: str) -> str:
    """The token's audience: the push service's origin (scheme, host, port when not the default)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def authorization(settings: Settings, endpoint: str, now: float | None = None) -> str:
    """The ``Authorization: vapid t=<JWT>,k=<public key>`` header for a request to ``endpoint``."""
    claims = {"aud": origin(endpoint), "exp": int((time.time() if now is None else now) + TOKEN_TTL_S),
              "sub": settings.vapid_subject}
    signed: dict[str, str] = Vapid02(private_key(settings)).sign(claims)
    return signed["Authorization"]
