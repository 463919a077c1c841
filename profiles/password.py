"""The password of a signed-in user: proving it (before a password change or an account deletion),
and changing it.

``POST /v1/me/password``: the old password proves it is the owner; every *other* token of the
account stops working at once (MongoDB, every API process's token cache entries, their sockets),
while the token that made the change keeps working.

Wrong passwords are limited per user (``settings.rate_limits["password"]``), like failed logins: a
stolen token cannot be used to guess the password. Only failures count, and the check comes before
the costly hash, so a refused guess costs no argon2 work.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from solomo.core import ratelimit
from solomo.core.errors import ApiError
from solomo.core.services import Services

ACTION = "password"


async def verify_password(services: Services, user_id: ObjectId, password: str) -> dict[str, Any]:
    """The user document if ``password`` is right; 403 ``invalid_credentials`` (counted) if not,
    429 ``rate_limited`` once too many were wrong."""
    await ratelimit.ensure_room(services, ACTION, user_id)
    try:
        return await services.accounts.check_password(user_id, password)
    except ApiError as exc:
        if exc.code == "invalid_credentials":
            await ratelimit.count(services, ACTION, user_id)
        raise


async def change_password(services: Services, user_id: ObjectId, keep_token_hash: str, old_password: str,
                          new_password: str) -> None:
    """403 ``invalid_credentials`` for a wrong old password, 422 for a too short new one.

    The other tokens go first, the password after: a failure between the two (MongoDB, a killed
    process) leaves the old password in force, so the client's retry proves it again and finishes.
    The other order left the new password saved and the other tokens alive, and the retry with the
    old password was refused, so nothing ever revoked them. And again once the password is saved:
    a sign-in with the old password between the first revocation and the save (its hashing takes
    a while) would otherwise keep a token made with the password just replaced."""
    await verify_password(services, user_id, old_password)
    services.accounts.check_new_password(new_password)  # a refusal revokes nothing
    await services.accounts.revoke_others(user_id, keep_token_hash)
    await services.accounts.set_password(user_id, new_password)
    await services.accounts.revoke_others(user_id, keep_token_hash)
