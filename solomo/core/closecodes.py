"""WebSocket close codes used by ``/v1/ws`` (4000-4999 are for applications)."""

BAD_REQUEST = 4400
"""A malformed ``last_event_id``."""
UNAUTHORIZED = 4401
"""Missing, invalid, expired or revoked token."""
FORBIDDEN = 4403
"""The account is suspended (at connect time or later, by a moderator)."""
TOO_SLOW = 4408
"""The client did not read fast enough and its send queue overflowed."""
TOO_MANY_SOCKETS = 4409
"""The user opened more sockets than ``settings.ws_max_sockets_per_user``: the oldest is closed."""
FLOODING = 4429
"""The client sent messages faster than the rate limit, repeatedly."""
MESSAGE_TOO_BIG = 1009
"""A client message larger than ``solomo.core.serving.WS_MAX_MESSAGE_BYTES`` (RFC 6455)."""
GOING_AWAY = 1012
"""The server restarts or lost its event subscription: reconnect with ``last_event_id``."""
