"""Rate limits: per user on writes (posts, comments, likes, reports, check-ins, claims, follows …),
and per client address or per username where no account is signed in yet (register, login).

Each limit is a *moving window* (exact: no burst of 2x at a window edge), the algorithm of the
``limits`` library, whose spec parser reads the settings: a Redis list of the window's hit times,
newest first, trimmed to the limit. A request is refused when the hit ``limit`` places back is
still inside the window. All the windows of one action and caller (``30/minute;300/hour``) are
checked, and counted, by one script (:data:`WINDOWS`) on the client's auto-pipeline:

* a refused request counts in none of them (the library's ``hit`` per window counted it in the
  windows checked before the one that refused);
* a write's limit is one command in the turn's shared round trip. Through the library it was one
  ``EVALSHA`` round trip per window, alone on a pooled connection: ~190 µs of the API's CPU a
  check-in (docs/benchmarks.md, twenty-fifth round).

Keys are ``rl:{<action>/<key>}/<amount>/<multiples>/<granularity>``
(:func:`solomo.core.keys.rate_window`), where the key is a user id, a client address
(:func:`client_ip`) or any other string; one hash tag per action and key, so the script runs on a
Redis Cluster too.

Limits come from ``settings.rate_limits`` (``{"action": "30/minute;500/hour"}``, environment
``SOLOMO_RATE_LIMITS`` as JSON); defaults are generous for humans and for the test suite, and a
test that wants to see the limit passes its own low ``limit=`` to :func:`enforce` (or sets the
setting). Actions without an account: ``login`` counts *failed* logins per lower-cased username
and client address (:func:`login_key`; :func:`ensure_room` before the password hash, :func:`count`
after a failure, so guessing one account's password is slow while its owner, from an address that
has not failed, can still sign in), ``login_failed_ip`` failed logins per client address (one
address trying many usernames), ``login_ip`` every login attempt per client address, ``register``
new accounts per client address.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Literal

from limits import RateLimitItem, parse_many

from solomo.core.errors import RateLimited
from solomo.core.keys import rate_window
from solomo.core.scripts import LuaScript
from solomo.core.services import Services
from solomo.core.settings import Settings

WINDOWS = LuaScript("rate_windows", """
-- KEYS: the windows of one action and caller. ARGV: now (seconds), "hit" or "test", then each
-- window's limit and length in seconds. A window is full when its hit `limit` places back (the
-- list is newest first) is inside it: then {its position, that hit's time}. Otherwise "hit"
-- counts the request in every window, and the answer is 0.
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
    local limit, length = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
    if limit < 1 then
        return {i, ARGV[1]}
    end
    local oldest = redis.call('lindex', KEYS[i], limit - 1)
    if oldest and tonumber(oldest) >= now - length then
        return {i, oldest}
    end
end
if ARGV[2] == 'hit' then
    for i = 1, #KEYS do
        redis.call('lpush', KEYS[i], ARGV[1])
        redis.call('ltrim', KEYS[i], 0, tonumber(ARGV[1 + 2 * i]) - 1)
        redis.call('expire', KEYS[i], tonumber(ARGV[2 + 2 * i]))
    end
end
return 0
""")


@functools.lru_cache(maxsize=256)
def parse_limits(spec: str) -> tuple[RateLimitItem, ...]:
    """``"30/minute;500/hour"`` → limit items (cached: specs are few and immutable)."""
    return tuple(parse_many(spec))


@functools.cache
def default_specs() -> dict[str, str]:
    """Every action's default limits (what ``SOLOMO_RATE_LIMITS`` overrides key by key)."""
    factory = Settings.model_fields["rate_limits"].default_factory
    return factory() if factory is not None else {}  # type: ignore[call-arg]


def limits_for(services: Services, action: str) -> tuple[RateLimitItem, ...]:
    """The configured spec of ``action``; one that ``SOLOMO_RATE_LIMITS`` leaves out keeps its
    default (the variable replaces the whole mapping), so a partial override never breaks a route."""
    spec = services.settings.rate_limits.get(action)
    if spec is None:
        spec = default_specs().get(action)
    if spec is None:
        raise LookupError(f"no rate limit configured for action {action!r}")
    return parse_limits(spec) if spec.strip() else ()


def _key(who: Any) -> str:
    """A principal (its id) or any key string (a client address, a lower-cased username …)."""
    return str(who.id if hasattr(who, "id") else who)


def _items(services: Services, action: str, limit: str | None) -> tuple[RateLimitItem, ...]:
    return parse_limits(limit) if limit is not None else limits_for(services, action)


def windows(services: Services, action: str, who: Any, limit: str | None = None) -> list[tuple[RateLimitItem, str]]:
    """Each limit of ``action`` with the key of ``who``'s window for it."""
    key = _key(who)
    return [(item, rate_window(action, key, f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}"))
            for item in _items(services, action, limit)]


async def _check(services: Services, action: str, who: Any, limit: str | None,
                 mode: Literal["hit", "test"]) -> RateLimited | None:
    """Runs :data:`WINDOWS` over the action's windows for ``who``: the refusal to raise, if any."""
    found = windows(services, action, who, limit)
    if not found:
        return None
    now = time.time()
    args: list[Any] = [repr(now), mode]
    for item, _ in found:
        args += [item.amount, item.get_expiry()]
    answer = await WINDOWS(services.redis, [key for _, key in found], args)
    if not answer:
        return None
    position, oldest = answer
    # the window frees when the hit that fills it leaves it (the library's reset time)
    retry = max(1, math.ceil(float(oldest) + found[int(position) - 1][0].get_expiry() - now))
    return RateLimited(f"too many {action} requests; retry in {retry} s", retry_after=retry)


async def enforce(services: Services, action: str, principal: Any, *, limit: str | None = None) -> None:
    """Counts one ``action`` by ``principal`` (or any key string); raises 429 ``rate_limited``
    with ``Retry-After`` once any of its limits is used up (a refused request is not counted).
    ``limit`` overrides the configured spec (tests)."""
    refused = await _check(services, action, principal, limit, "hit")
    if refused is not None:
        raise refused


async def ensure_room(services: Services, action: str, who: Any, *, limit: str | None = None) -> None:
    """429 if ``who`` has used up ``action``, without counting anything. With :func:`count`, this
    limits only some outcomes (failed logins) while checking before the costly work."""
    refused = await _check(services, action, who, limit, "test")
    if refused is not None:
        raise refused


async def count(services: Services, action: str, who: Any, *, limit: str | None = None) -> None:
    """Counts one ``action`` by ``who`` without refusing (the next :func:`ensure_room` will); a
    full window is left as it is, as the library's ``hit`` did."""
    await _check(services, action, who, limit, "hit")


def login_key(username: str, ip: str) -> str:
    """The key of failed logins for one username from one address (an address holds no ``/``)."""
    return f"{ip}/{username.lower()}"


def client_ip(request: Any) -> str:
    """The caller's address as the ASGI server reports it. Behind a proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips <proxy>`` so this is the client's, not the proxy's."""
    client = getattr(request, "client", None)
    return client.host if client is not None and client.host else "unknown"
