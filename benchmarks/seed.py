"""Bulk set-up shared by the benchmarks: many users with tokens, points in a city-sized area.

Inserted straight into MongoDB in the documents' shared shape (``docs/design.md``) — registering
10,000 users over HTTP would cost minutes of argon2 and measure nothing of interest.
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

EARTH_M_PER_DEG = 111_320.0
BATCH = 10_000


async def bulk_users(services: Any, n: int, *, role: str = "user") -> list[tuple[ObjectId, str]]:
    """``n`` active users, each with a valid bearer token; returns ``(id, token)`` pairs."""
    now = datetime.now(UTC)
    tag = secrets.token_hex(4)
    ids = [ObjectId() for _ in range(n)]
    tokens = [secrets.token_urlsafe(24) for _ in range(n)]
    for start in range(0, n, BATCH):
        chunk = range(start, min(n, start + BATCH))
        await services.db.users.insert_many([
            {"_id": ids[i], "username": f"b{tag}_{i}", "username_lower": f"b{tag}_{i}", "display_name": f"Bench {i}",
             "role": role, "password_hash": "x", "status": "active", "followers_count": 0, "following_count": 0,
             "created_at": now} for i in chunk], ordered=False)
        await services.db.tokens.insert_many([
            {"_id": hashlib.sha256(tokens[i].encode()).hexdigest(), "user_id": ids[i], "created_at": now,
             "expires_at": now + timedelta(days=1)} for i in chunk], ordered=False)
    return list(zip(ids, tokens, strict=True))


def random_center(rng: random.Random) -> tuple[float, float]:
    """A (lat, lng) away from the poles and the antimeridian, so areas around it stay simple."""
    return rng.uniform(-55, 55), rng.uniform(-170, 170)


def point_near(rng: random.Random, lat: float, lng: float, radius_m: float) -> tuple[float, float]:
    """A point uniformly distributed over the disc of ``radius_m`` around (lat, lng) (flat approximation)."""
    r = radius_m * math.sqrt(rng.random())
    theta = rng.uniform(0, 2 * math.pi)
    north, east = r * math.cos(theta), r * math.sin(theta)
    return lat + north / EARTH_M_PER_DEG, lng + east / (EARTH_M_PER_DEG * math.cos(math.radians(lat)))


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"),)
