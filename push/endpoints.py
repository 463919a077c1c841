"""Is a push subscription acceptable? Decided from its text alone, before anything is stored.

The server will later send requests to a subscription's endpoint from inside the operator's
network, so an endpoint is a request the client asks the server to make. Only ``https`` on a
public host is accepted, or an origin the operator listed (``SOLOMO_PUSH_ALLOWED_HOSTS``:
``host:port`` items, ``http`` allowed for them: tests and private push services). No DNS lookup
decides it (a name's answer can change between the check and the send; the sender re-checks the
addresses it connects to, :mod:`push.sender`), and nothing is ever fetched here.

Refused: IP literals that are not global unicast (private, loopback, link-local, multicast,
reserved, shared, IPv4-mapped or 6to4 forms of those), numeric host spellings a resolver would
read as an address (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), names with no public meaning
(``localhost``, ``*.local``, ``*.internal``, single labels …), user info, ports other than 443.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from push.vapid import b64url_decode
from solomo.core.errors import Invalid
from solomo.core.settings import Settings

MAX_ENDPOINT_CHARS = 1024
AUTH_BYTES = 16
P256_POINT_BYTES = 65

PRIVATE_SUFFIXES = ("localhost", "local", "localdomain", "internal", "intranet", "lan", "home", "corp", "private",
                    "arpa", "test", "invalid", "example", "onion", "alt", "home.arpa")
"""Names that never denote a public host (RFC 2606, 6761, 6762, 7686, 8375, 9476 and common private
zones); ``.arpa`` also covers reverse-lookup names that spell addresses."""

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class InvalidEndpoint(Invalid):
    code = "invalid_endpoint"


class InvalidKeys(Invalid):
    code = "invalid_keys"


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    """``SOLOMO_PUSH_ALLOWED_HOSTS`` as normalised ``host:port`` strings."""
    out = set()
    for item in settings.push_allowed_hosts.split(","):
        item = item.strip().lower()
        if item:
            out.add(item)
    return frozenset(out)


def parse_origin(endpoint: str) -> Origin:
    """The endpoint's scheme, host (lower case, brackets gone) and port; raises InvalidEndpoint."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT_CHARS:
        raise InvalidEndpoint(f"endpoint must be a URL of at most {MAX_ENDPOINT_CHARS} characters")
    if any(ord(c) <= 32 or ord(c) >= 127 or c == "\\" for c in endpoint):
        raise InvalidEndpoint("endpoint must be a plain URL (no spaces, controls, backslashes or non-ASCII)")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise InvalidEndpoint("endpoint is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidEndpoint("endpoint must be an https URL")
    if "@" in parts.netloc or parts.fragment:
        raise InvalidEndpoint("endpoint must not carry user info or a fragment")
    if parts.netloc.endswith(":"):
        raise InvalidEndpoint("endpoint has an empty port")
    default = 443 if parts.scheme == "https" else 80
    return Origin(parts.scheme, parts.hostname.lower(), default if port is None else port)


def _public_address(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is not None and not _public_address(str(embedded)):
            return False
    return bool(addr.is_global and not (addr.is_multicast or addr.is_reserved or addr.is_private
                                        or addr.is_loopback or addr.is_link_local or addr.is_unspecified))


def public_address(text: str) -> bool:
    """Whether an IP address (text) is global unicast: what the sender may connect to."""
    return _public_address(text)


def _public_name(host: str) -> bool:
    if len(host) > 253 or host.endswith("."):
        return False
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    # a resolver reads "2130706433", "0x7f.1" or "0177.0.0.1" as an address: any numeric label at
    # the end (no real top-level domain is numeric) makes the whole name suspect
    if _NUMERIC_LABEL.match(labels[-1]) or all(_NUMERIC_LABEL.match(label) for label in labels):
        return False
    return not any(host == s or host.endswith("." + s) for s in PRIVATE_SUFFIXES)


def check_endpoint(settings: Settings, endpoint: str) -> Origin:
    """Accepts ``endpoint`` or raises 422 ``invalid_endpoint``: parsing and address rules only."""
    origin = parse_origin(endpoint)
    if origin.host_port in allowed_origins(settings):
        return origin
    if origin.scheme != "https":
        raise InvalidEndpoint("endpoint must be an https URL")
    if origin.port != 443:
        raise InvalidEndpoint("endpoint must use the https port (443)")
    is_ip = origin.host.replace(".", "").isdigit() or ":" in origin.host
    if is_ip:
        if not _public_address(origin.host):
            raise InvalidEndpoint("endpoint must be on a public host, not a private, loopback, link-local, "
                                  "multicast or reserved address")
        return origin
    if not _public_name(origin.host):
        raise InvalidEndpoint("endpoint must be on a public host name")
    return origin


def check_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """The subscription's keys as bytes: ``p256dh`` a point on P-256 (uncompressed, 65 bytes), ``auth``
    16 bytes; raises 422 ``invalid_keys``."""
    try:
        point = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except (ValueError, TypeError):
        raise InvalidKeys("keys.p256dh and keys.auth must be base64url") from None
    if len(secret) != AUTH_BYTES:
        raise InvalidKeys(f"keys.auth must be {AUTH_BYTES} bytes")
    if len(point) != P256_POINT_BYTES or point[0] != 4:
        raise InvalidKeys("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidKeys("keys.p256dh is not a point on P-256") from None
    return point, secret
