"""Sending push messages: the worker's side (never run in a request).

One message = one event frame ``{"id", "type", "data"}`` (the exact text a socket would receive)
encrypted for one subscription with ``aes128gcm`` (RFC 8291, ``http_ece``: a fresh sender key and
salt each time) and POSTed to its endpoint (RFC 8030) with ``TTL``, ``Urgency`` and the VAPID
``Authorization`` (RFC 8292). Outcomes:

* 2xx: delivered.
* 404 / 410: the subscription is gone: dropped (:func:`push.subscriptions.drop`).
* 429, 5xx, a timeout or a connection error: sent again later by the ``push.send`` task, after the
  ``Retry-After`` the service asked for or an exponential backoff (jittered), at most
  ``push_max_attempts`` sends; a wait longer than ``push_retry_max_s`` is not honoured by
  sending early: the message is given up (it is a notification, the app shows it on next open).
* other 4xx (a bad token, a payload the service refuses): logged and given up.

Every request is bounded (``push_timeout_s``), never follows redirects, and connects only to
global addresses: the endpoint was checked when stored (:mod:`push.endpoints`) and is checked
again, and the connector's resolver drops every non-global address a name resolves to (DNS
rebinding), except for the hosts listed in ``SOLOMO_PUSH_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import http_ece
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from cryptography.hazmat.primitives.asymmetric import ec

from push import subscriptions, vapid
from push.endpoints import InvalidEndpoint, InvalidKeys, allowed_origins, check_endpoint, check_keys, public_address
from solomo.core import tasknames, timeutil
from solomo.core.services import Services
from solomo.core.settings import Settings

log = logging.getLogger("solomo.push")

MAX_PLAINTEXT = 3993
"""The largest body a push service must accept is 4096 bytes encrypted: 86 bytes of header
(salt, record size, sender key), 16 of tag and 1 of padding delimiter leave this much."""
CONCURRENCY = 16
"""Requests in flight per delivery batch."""
BACKOFF_FIRST_S = 2.0


@dataclass(frozen=True)
class Message:
    user_id: str
    frame: str
    ttl_s: int


def fit(frame: str) -> bytes | None:
    """The frame as UTF-8, shortened to fit a push message when it is an offer with a long
    description (the description is cut, with an ellipsis: the client opens the offer anyway);
    None when it cannot fit."""
    raw = frame.encode()
    if len(raw) <= MAX_PLAINTEXT:
        return raw
    doc = orjson.loads(raw)
    data = doc.get("data")
    text = data.get("description") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text:
        return None
    budget = len(text.encode()) - (len(raw) - MAX_PLAINTEXT) - len("…".encode())
    if budget < 0:
        return None
    # cut at a byte budget, dropping a character split in two (UTF-8 keeps the rest valid)
    data["description"] = text.encode()[:budget].decode(errors="ignore") + "…"
    raw = orjson.dumps(doc)
    return raw if len(raw) <= MAX_PLAINTEXT else None


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """RFC 8291 ``aes128gcm``: one record, the sender's ephemeral public key in the header."""
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(plaintext, private_key=sender, dh=p256dh, auth_secret=auth,
                                   version="aes128gcm")
    return body


class PublicOnlyResolver(AbstractResolver):
    """Resolves like the default resolver, then keeps only global addresses (unless the host is
    allow-listed): a public name pointed at an internal address later is not followed."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self._inner = ThreadedResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if f"{host.lower()}:{port}" in self._allowed:
            return found
        kept = [r for r in found if public_address(r["host"])]
        if not kept:
            raise OSError(f"{host} resolves to no public address")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def session(settings: Settings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(allowed_origins(settings)), limit=CONCURRENCY,
                                     use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=settings.push_timeout_s, connect=min(5.0, settings.push_timeout_s))
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


def retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # (isdigit alone takes "²", which float refuses)
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - timeutil.now_ms() / 1000)


def backoff_s(attempt: int) -> float:
    """2, 4, 8 … s, jittered by up to a half (so a service's burst of 429s does not come back at once)."""
    step: float = BACKOFF_FIRST_S * 2 ** (attempt - 1)
    return step * (1 + random.random() / 2)


@dataclass(frozen=True)
class Outcome:
    status: int | None
    """The push service's status, None for a network error or a timeout."""
    retry_in_s: float | None = None
    """Send again after this long (None: done, or given up)."""


async def post(services: Services, http: aiohttp.ClientSession, sub: dict[str, Any], message: bytes,
               ttl_s: int, attempt: int) -> Outcome:
    """One request to the subscription's push service, and what to do next."""
    settings = services.settings
    try:  # the stored endpoint and keys were checked on the way in; the rules may have changed since
        check_endpoint(settings, sub["endpoint"])
        p256dh, auth = check_keys(sub["p256dh"], sub["auth"])
    except (InvalidEndpoint, InvalidKeys) as exc:
        log.warning("push subscription %s no longer acceptable (%s): dropped", sub["_id"], exc.message)
        await subscriptions.drop(services, sub)
        return Outcome(None)
    headers = {"TTL": str(ttl_s), "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
               "Urgency": "normal", "Authorization": vapid.authorization(settings, sub["endpoint"])}
    body = encrypt(message, p256dh, auth)
    status: int | None = None
    retry_after: float | None = None
    try:
        async with http.post(sub["endpoint"], data=body, headers=headers, allow_redirects=False) as resp:
            status = resp.status
            retry_after = retry_after_s(resp.headers.get("Retry-After"))
            await resp.content.read(1024)  # a short look; the answer's body is never needed
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.info("push to %s failed: %s", vapid.origin(sub["endpoint"]), exc)
    if status is not None and 200 <= status < 300:
        return Outcome(status)
    if status in (404, 410):
        await subscriptions.drop(services, sub)
        return Outcome(status)
    if status is None or status == 429 or status >= 500:
        if attempt >= settings.push_max_attempts:
            log.warning("push to %s given up after %d attempts (%s)", vapid.origin(sub["endpoint"]), attempt, status)
            return Outcome(status)
        wait = max(retry_after or 0.0, backoff_s(attempt) if retry_after is None else 0.0)
        if wait > settings.push_retry_max_s:
            log.warning("push to %s asked to wait %.0f s: given up", vapid.origin(sub["endpoint"]), wait)
            return Outcome(status)
        return Outcome(status, wait)
    log.warning("push to %s refused with %s: given up", vapid.origin(sub["endpoint"]), status)
    return Outcome(status)


async def _send_all(services: Services, jobs: list[tuple[dict[str, Any], bytes, int, int]]) -> list[Outcome]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with session(services.settings) as http:
        async def one(job: tuple[dict[str, Any], bytes, int, int]) -> Outcome:
            sub, message, ttl, attempt = job
            async with limit:
                return await post(services, http, sub, message, ttl, attempt)

        return list(await asyncio.gather(*(one(job) for job in jobs)))


async def _retry(services: Services, sub: dict[str, Any], message: bytes, ttl_s: int, attempt: int,
                 wait_s: float) -> None:
    """The next attempt as its own delayed ``push.send`` task (only this subscription: the others
    of the batch are not sent twice)."""
    await services.tasks.send(tasknames.PUSH_SEND, str(sub["_id"]), message.decode(), max(0, ttl_s - int(wait_s)),
                              attempt + 1, countdown=wait_s)


async def deliver(services: Services, items: list[list[Any]]) -> int:
    """The ``push.deliver`` task: ``items`` are ``[user id, frame, ttl s]``; each frame goes to every
    subscription of its user. Returns how many requests were accepted (2xx)."""
    messages = [Message(str(uid), str(frame), int(ttl)) for uid, frame, ttl in items]
    subs = await subscriptions.live_only(services, await subscriptions.of_users(
        services, list({m.user_id for m in messages})))
    by_user: dict[str, list[dict[str, Any]]] = {}
    for sub in subs:
        by_user.setdefault(str(sub["user_id"]), []).append(sub)
    jobs: list[tuple[dict[str, Any], bytes, int, int]] = []
    for m in messages:
        raw = fit(m.frame)
        if raw is None:
            log.warning("push message of %d bytes cannot fit: not sent", len(m.frame.encode()))
            continue
        jobs.extend((sub, raw, m.ttl_s, 1) for sub in by_user.get(m.user_id, []))
    if not jobs:
        return 0
    outcomes = await _send_all(services, jobs)
    for (sub, raw, ttl, attempt), outcome in zip(jobs, outcomes, strict=True):
        if outcome.retry_in_s is not None:
            await _retry(services, sub, raw, ttl, attempt, outcome.retry_in_s)
    return sum(1 for o in outcomes if o.status is not None and 200 <= o.status < 300)


async def send_again(services: Services, sub_id: str, frame: str, ttl_s: int, attempt: int) -> bool:
    """The ``push.send`` task: one more attempt for one subscription; True when accepted."""
    from bson import ObjectId

    if not ObjectId.is_valid(sub_id):
        return False
    found = await services.db.push_subscriptions.find_one({"_id": ObjectId(sub_id)})
    if found is None or not await subscriptions.live_only(services, [found]):  # gone or signed out meanwhile
        return False
    sub = found
    raw = frame.encode()
    outcome = (await _send_all(services, [(sub, raw, ttl_s, attempt)]))[0]
    if outcome.retry_in_s is not None:
        await _retry(services, sub, raw, ttl_s, attempt, outcome.retry_in_s)
    return outcome.status is not None and 200 <= outcome.status < 300
