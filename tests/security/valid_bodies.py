"""A valid body for every documented operation that takes one, built from the shared ``world``.

The security tests start from these and change one thing (an extra field, a hostile value), so
the answer shows what that one change did. A new route with a body makes :func:`valid_body` fail
loudly until it gets an entry here: new routes cannot slip past the checks unnoticed.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from tests.offers.helpers import in_minutes
from tests.push.receiver import Browser
from tests.security.conftest import World


def valid_body(method: str, path: str, world: World) -> dict[str, Any]:
    store = world.store
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/auth/register"): {"username": f"s_{uuid.uuid4().hex[:12]}", "password": "password123"},
        ("POST", "/v1/auth/login"): {"username": world.alice.username, "password": "password123"},
        ("POST", "/v1/stores"): {"name": "Noodle Bar", "lat": store["lat"], "lng": store["lng"]},
        ("POST", "/v1/checkins"): {"store_id": store["id"], "lat": store["lat"], "lng": store["lng"]},
        ("POST", "/v1/posts"): {"text": "hello there"},
        ("POST", "/v1/posts/{post_id}/comments"): {"text": "nice"},
        ("POST", "/v1/posts/{post_id}/repost"): {"text": "worth a look"},
        ("POST", "/v1/stores/{store_id}/offers"): {"title": "Two for one", "radius_m": 500,
                                                   "expires_at": in_minutes(30)},
        ("POST", "/v1/stores/{store_id}/redemptions"): {"code": "ZZZZZ-ZZZZZ"},
        ("POST", "/v1/posts/{post_id}/reports"): {"reason": "spam"},
        ("POST", "/v1/moderation/posts/bulk"): {"ids": [world.bob_post["id"]], "action": "approve",
                                                "reason": "checked"},
        ("POST", "/v1/moderation/posts/{post_id}"): {"action": "approve", "reason": "checked"},
        ("POST", "/v1/moderation/users/{user_id}"): {"action": "unsuspend", "reason": "checked"},
        ("POST", "/v1/moderation/comments/{comment_id}"): {"action": "approve", "reason": "checked"},
        ("POST", "/v1/moderation/offers/{offer_id}"): {"action": "approve", "reason": "checked"},
        ("PUT", "/v1/moderation/words"): {"block": [], "review": [], "reason": "checked"},
        # web push (issue 16): the allow-listed loopback receiver's address (tests/conftest.py)
        ("POST", "/v1/push/subscriptions"): {"endpoint": _push_endpoint(), "keys": Browser().keys()},
        ("DELETE", "/v1/push/subscriptions"): {"endpoint": _push_endpoint()},
        ("POST", "/v1/notifications/read"): {},
        ("PATCH", "/v1/me"): {"bio": "hello"},
        # wrong passwords: sent as they are, these change nothing (403)
        ("POST", "/v1/me/password"): {"old_password": "not-the-password", "new_password": "newpassword1"},
        ("DELETE", "/v1/me"): {"password": "not-the-password"},
        ("PATCH", "/v1/stores/{store_id}"): {"address": "1 Main St"},
        # loyalty points (issue 17)
        ("PUT", "/v1/stores/{store_id}/loyalty"): {"enabled": True, "checkin_points": 10, "redemption_points": 5},
        ("POST", "/v1/stores/{store_id}/points/charge"): {"code": "ZZZZZ-ZZZZZ", "points": 1},
    }
    key = (method, path)
    assert key in bodies, f"{method} {path} takes a body: add a valid one to tests/security/valid_bodies.py"
    return dict(bodies[key])


def _push_endpoint() -> str:
    return f"http://127.0.0.1:{os.environ['SOLOMO_TEST_PUSH_PORT']}/push/security"
