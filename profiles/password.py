"""``POST /v1/me/password``: the old password proves it is the owner; every *other* token of the
account stops working at once (MongoDB, every API process's token cache entries, their sockets),
while the token that made the change keeps working."""

from __future__ import annotations

from bson import ObjectId

from solomo.core.services import Services


async def change_password(services: Services, user_id: ObjectId, keep_token_hash: str, old_password: str,
                          new_password: str) -> None:
    """403 ``invalid_credentials`` for a wrong old password, 422 for a too short new one."""
    await services.accounts.check_password(user_id, old_password)
    await services.accounts.set_password(user_id, new_password)
    await services.accounts.revoke_others(user_id, keep_token_hash)
