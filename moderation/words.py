"""The sensitive-word lists: storage in MongoDB, validation, the seed, replacement (audited).

Storage: one document ``words {_id: "lists", block: [...], review: [...], version, updated_at}``,
replaced whole by ``PUT /v1/moderation/words``. Its ``version`` is mirrored in the Redis key
``words:version`` that :mod:`moderation.matcher` polls (at most once a second per process). That
mirror is written after the commit and best effort: the matcher also reads the stored version now
and then, so a failed publish only delays the change (see :mod:`moderation.matcher`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from moderation import audit
from moderation.normalize import word_key
from solomo.core.errors import Invalid
from solomo.core.keys import WORDS_VERSION
from solomo.core.scripts import LuaScript
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

log = logging.getLogger("solomo.moderation")

DOC_ID = "lists"
MAX_WORDS = 5000
MAX_WORD_CHARS = 64
# Only raises the version in Redis, so an older writer finishing late never rolls it back.
_SET_IF_GREATER = LuaScript("words_version_set_if_greater", """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
""")


@dataclass(frozen=True)
class WordLists:
    block: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)

    def public(self) -> dict[str, list[str]]:
        return {"block": list(self.block), "review": list(self.review)}


def clean_list(words: list[str], name: str) -> list[str]:
    """Trim, validate and de-duplicate (by matching key, first spelling kept) one list."""
    if len(words) > MAX_WORDS:
        raise Invalid(f"{name}: at most {MAX_WORDS} words", details=[{"field": name, "message": "too many words"}])
    out: dict[str, str] = {}
    problems = []
    for i, raw in enumerate(words):
        word = raw.strip()
        if not word or len(word) > MAX_WORD_CHARS:
            problems.append({"field": f"{name}.{i}", "message": f"a word is 1..{MAX_WORD_CHARS} characters"})
            continue
        key = word_key(word)
        if not key:
            problems.append({"field": f"{name}.{i}", "message": "a word needs at least one letter or digit"})
            continue
        out.setdefault(key, word)
    if problems:
        raise Invalid("word list is not valid", details=problems[:50])
    return list(out.values())


def clean_lists(block: list[str], review: list[str]) -> WordLists:
    block_c, review_c = clean_list(block, "block"), clean_list(review, "review")
    both = {word_key(w) for w in block_c} & {word_key(w) for w in review_c}
    if both:
        details = [{"field": "review", "message": f"also on the block list: {w}"} for w in sorted(both)[:50]]
        raise Invalid("a word cannot be on both lists", details=details)
    return WordLists(block_c, review_c)


def seed_lists() -> WordLists:
    data = json.loads(resources.files("solomo.data").joinpath("words.json").read_text("utf-8"))
    return clean_lists(data.get("block", []), data.get("review", []))


async def ensure_seeded(services: Services) -> bool:
    """Loads the shipped seed into an empty collection; idempotent and safe to race."""
    seed = seed_lists()
    try:
        result = await services.db.words.update_one(
            {"_id": DOC_ID},
            {"$setOnInsert": {**seed.public(), "version": 1, "updated_at": datetime.now(UTC)}},
            upsert=True,
        )
    except DuplicateKeyError:  # another process inserted it first
        return False
    if result.upserted_id is not None:
        await publish_version(services, 1)
        return True
    return False


async def load_lists(services: Services, session: AsyncClientSession | None = None) -> tuple[WordLists, int]:
    doc = await services.db.words.find_one({"_id": DOC_ID}, session=session)
    if doc is None:
        return WordLists(), 0
    return WordLists(list(doc.get("block", [])), list(doc.get("review", []))), int(doc.get("version", 0))


async def stored_version(services: Services) -> int:
    """The version in MongoDB (the source of truth), without the lists."""
    doc = await services.db.words.find_one({"_id": DOC_ID}, {"version": 1})
    return int(doc.get("version", 0)) if doc else 0


async def replace_lists(services: Services, lists: WordLists, session: AsyncClientSession) -> int:
    doc = await services.db.words.find_one_and_update(
        {"_id": DOC_ID},
        {"$set": {**lists.public(), "updated_at": datetime.now(UTC)}, "$inc": {"version": 1}},
        upsert=True, return_document=ReturnDocument.AFTER, session=session,
    )
    assert doc is not None  # upsert with ReturnDocument.AFTER always returns the document
    return int(doc["version"])


async def publish_version(services: Services, version: int) -> None:
    await _SET_IF_GREATER(services.redis, [WORDS_VERSION], [version])


AUDIT_DIFF_MAX = 200


def _diff(before: list[str], after: list[str]) -> tuple[list[str], list[str]]:
    old, new = set(before), set(after)
    return [w for w in after if w not in old][:AUDIT_DIFF_MAX], [w for w in before if w not in new][:AUDIT_DIFF_MAX]


def audit_states(before: WordLists, old_version: int, after: WordLists,
                 version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Counts and the change (at most 200 words each way) rather than whole lists: an audit page
    must stay small even when the lists hold thousands of words."""
    added, removed = {}, {}
    for name in ("block", "review"):
        added[name], removed[name] = _diff(getattr(before, name), getattr(after, name))
    return (
        {"version": old_version, "block": len(before.block), "review": len(before.review)},
        {"version": version, "block": len(after.block), "review": len(after.review),
         "added": added, "removed": removed},
    )


async def update_lists(services: Services, moderator_id: ObjectId | None, block: list[str], review: list[str],
                       reason: str) -> WordLists:
    """Replaces both lists and records the change in the audit log, in one transaction."""
    lists = clean_lists(block, review)

    async def body(txn: Txn) -> int:
        session = txn.session
        before, old_version = await load_lists(services, session)
        version = await replace_lists(services, lists, session)
        was, now = audit_states(before, old_version, lists, version)
        await audit.record(services, session, moderator_id=moderator_id, action="words.update",
                           target_type="words", target_id=DOC_ID, reason=reason, before=was, after=now)
        return version

    version = await run_transaction(services, body)
    try:
        await publish_version(services, version)
    except Exception as exc:  # committed: every process still finds the new version in MongoDB
        log.warning("could not publish word-list version %s: %s", version, exc)
    return lists
