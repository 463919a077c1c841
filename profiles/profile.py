"""``PATCH /v1/me``: display name, bio, avatar, the offers opt-out.

Names and bios pass the profile word filter (no review queue: they show at once everywhere, so a
review word is refused like a block word). A rename drops every process's summary cache
(``feed.hydrate.names_changed``) and the caller's cached token entries (a :class:`Principal`
carries the display name), so posts and answers show the new name at once.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from feed.hydrate import names_changed
from media.attach import claim_avatar, release_avatar
from moderation.screen import screen_profile_text
from solomo.accounts import user_public
from solomo.core.errors import Invalid, NotFound
from solomo.core.searchkeys import user_keys
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

DISPLAY_NAME_MAX = 32
BIO_MAX = 160
UNSET: Any = object()


def me_public(doc: dict[str, Any]) -> dict[str, Any]:
    """The User plus the settings only its owner sees."""
    return {**user_public(doc), "offers_from_unfollowed": bool(doc.get("offers_from_unfollowed", True))}


async def update_profile(services: Services, user_id: ObjectId, *, display_name: Any = UNSET, bio: Any = UNSET,
                         avatar_media_id: Any = UNSET, offers_from_unfollowed: Any = UNSET) -> dict[str, Any]:
    """Applies the given fields; returns the user document. 422 for a bad value or a blocked word."""
    change: dict[str, Any] = {}
    unset: dict[str, str] = {}
    if display_name is not UNSET:
        display_name = str(display_name).strip()
        if not 1 <= len(display_name) <= DISPLAY_NAME_MAX:
            raise Invalid(f"display_name must be 1..{DISPLAY_NAME_MAX} characters")
        change["display_name"] = display_name
    if bio is not UNSET:
        bio = str(bio).strip()
        if len(bio) > BIO_MAX:
            raise Invalid(f"bio must be at most {BIO_MAX} characters")
        change["bio"] = bio
    if offers_from_unfollowed is not UNSET:
        change["offers_from_unfollowed"] = bool(offers_from_unfollowed)
    if avatar_media_id is None:
        unset.update({"avatar_media_id": "", "avatar_url": ""})
    await screen_profile_text(services, change.get("display_name"), change.get("bio"))
    previous = await services.db.users.find_one({"_id": user_id}, {"username": 1})
    if previous is None:
        raise NotFound("user not found")
    if "display_name" in change:  # searchable by the new name in the same write (search.users)
        change["search_keys"] = user_keys(previous["username"], change["display_name"])
    if not (change or unset or avatar_media_id is not UNSET):
        return await services.accounts.get(user_id)

    async def write(txn: Txn) -> dict[str, Any]:
        # the new picture claimed, the user changed and the old picture released together: a failure
        # between them left a claimed picture that nothing used and no sweep would delete
        session = txn.session
        before = await services.db.users.find_one({"_id": user_id, "status": "active"}, {"avatar_media_id": 1},
                                                  session=session)
        if before is None:
            raise NotFound("user not found")
        fields = dict(change)
        if avatar_media_id is not None and avatar_media_id is not UNSET:  # after the checks: nothing claimed on a 422
            media = await claim_avatar(services, user_id, avatar_media_id, session=session)
            fields.update({"avatar_media_id": media["id"], "avatar_url": media["thumb_url"]})
        update: dict[str, Any] = {}
        if fields:
            update["$set"] = fields
        if unset:
            update["$unset"] = unset
        doc = await services.db.users.find_one_and_update({"_id": user_id}, update,
                                                          return_document=ReturnDocument.AFTER, session=session)
        if doc is None:  # read in this transaction: not expected
            raise NotFound("user not found")
        old_avatar = before.get("avatar_media_id")
        replaced = avatar_media_id is not UNSET and str(old_avatar) != str(doc.get("avatar_media_id"))
        if old_avatar is not None and replaced:  # the old picture expires a day later
            await release_avatar(services, user_id, ObjectId(str(old_avatar)), session=session)
        return doc

    doc = await run_transaction(services, write)
    if "display_name" in change:
        await services.accounts.token_cache.forget(user_id)  # cached principals carry the name
        await names_changed(services)
    return doc
