"""WebSocket close codes used by ``/v1/ws`` (4000-4999 are for applications)."""

BAD_REQUEST = 4400
"""A malformed ``last_event_id``."""
UNAUTHORIZED = 4401
"""Missing, invalid, expired or revoked token."""
FORBIDDEN = 4403
"""The account is suspended (at connect time or later, by a moderator)."""
TOO_SLOW = 4408
"""The client did not read fast enough and its send queue overflowed."""
FLOODING = 4429
"""The client sent messages faster than the rate limit, repeatedly."""
GOING_AWAY = 1012
"""The server restarts or lost its event subscription: reconnect with ``last_event_id``."""
