"""Commands to every API process's hub, through Redis pub/sub (channel ``rt:control``)."""

from __future__ import annotations

from typing import Any

import orjson

from solomo.core.closecodes import FORBIDDEN
from solomo.core.keys import CONTROL_CHANNEL
from solomo.core.services import Services


async def disconnect_user(services: Services, user_id: str, code: int = FORBIDDEN, reason: str = "account suspended",
                          *, token_hash: str | None = None) -> int:
    """Close every socket of ``user_id`` in every API process (moderation calls it on suspension),
    or with ``token_hash`` only those opened with that token (logout calls it).

    Returns how many API processes heard the command. Sockets are closed with ``code``; a user
    who then reconnects is refused at the handshake by the token check.
    """
    command: dict[str, Any] = {"op": "disconnect", "user_id": str(user_id), "code": int(code), "reason": reason}
    if token_hash is not None:
        command["token"] = token_hash
    message = orjson.dumps(command)
    return int(await services.redis.publish(CONTROL_CHANNEL, message))
