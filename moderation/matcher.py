"""The per-process Aho-Corasick matcher over both word lists.

Every process (API or worker) keeps one compiled automaton in its ``services.extras`` and
compares the list version in Redis at most once a second (one GET), so a change reaches every
process within about a second without a database query per post. Because the writer publishes
that version only after its MongoDB commit (a step that can fail), every process also compares
the version stored in MongoDB every ``DB_CHECK_INTERVAL_S`` (one small read), and puts a newer one
back into Redis for the others: a lost publish delays a change by at most that interval. Matching
runs on the normalized text (:mod:`moderation.normalize`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import ahocorasick

from moderation.normalize import is_bounded_word, normalize, word_key
from moderation.words import WordLists, load_lists, publish_version, stored_version
from solomo.core.keys import WORDS_VERSION
from solomo.core.services import Services

CHECK_INTERVAL_S = 1.0
DB_CHECK_INTERVAL_S = 30.0
EXTRAS_KEY = "moderation.word_filter"

Kind = Literal["block", "review"]


@dataclass(frozen=True)
class Match:
    kind: Kind
    word: str


class CompiledWords:
    """An immutable automaton over the normalized keys of both lists."""

    def __init__(self, lists: WordLists) -> None:
        self.automaton: Any = ahocorasick.Automaton()
        entries: dict[str, tuple[int, Kind, str, bool]] = {}
        lists_by_kind: tuple[tuple[Kind, list[str]], ...] = (("review", lists.review), ("block", lists.block))
        for kind, words in lists_by_kind:  # block wins a tie
            for word in words:
                key = word_key(word)
                if key:
                    entries[key] = (len(key), kind, word, is_bounded_word(key))
        for key, value in entries.items():
            self.automaton.add_word(key, value)
        self.empty = not entries
        if not self.empty:
            self.automaton.make_automaton()

    def find(self, text: str) -> list[Match]:
        """Every distinct list word in ``text`` (block words first)."""
        if self.empty:
            return []
        norm = normalize(text)
        found: dict[str, Match] = {}
        for end, (length, kind, word, bounded) in self.automaton.iter(norm.text):
            start = end - length + 1
            if bounded and not (norm.is_boundary(start) and norm.is_boundary(end + 1)):
                continue
            found.setdefault(word, Match(kind, word))
        return sorted(found.values(), key=lambda m: m.kind != "block")


class WordFilter:
    """One per process (kept in ``services.extras``): the compiled lists and their version."""

    def __init__(self, db_check_s: float = DB_CHECK_INTERVAL_S) -> None:
        self.compiled = CompiledWords(WordLists())
        self.version = -1
        self.checked_at = 0.0
        self.db_check_s = db_check_s
        self.db_checked_at = time.monotonic()
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self.checked_at = 0.0

    async def current(self, services: Services) -> CompiledWords:
        if time.monotonic() - self.checked_at < CHECK_INTERVAL_S:
            return self.compiled
        async with self._lock:
            if time.monotonic() - self.checked_at >= CHECK_INTERVAL_S:
                await self._refresh(services)
        return self.compiled

    async def _refresh(self, services: Services) -> None:
        raw = await services.redis.get(WORDS_VERSION)
        published = None if raw is None else int(raw)
        stale = published != self.version
        if not stale and time.monotonic() - self.db_checked_at >= self.db_check_s:
            stale = await stored_version(services) != self.version  # a publish may have been lost
            self.db_checked_at = time.monotonic()
        if stale:
            lists, version = await load_lists(services)
            self.db_checked_at = time.monotonic()
            if version and (published is None or published < version):
                await publish_version(services, version)  # Redis lost it or missed it: put it back
            # ~140 ms for 10,000 words: off the event loop, which keeps serving meanwhile
            self.compiled = await asyncio.to_thread(CompiledWords, lists)
            self.version = version
        self.checked_at = time.monotonic()


def word_filter(services: Services) -> WordFilter:
    wf = services.extras.get(EXTRAS_KEY)
    if wf is None:
        wf = services.extras[EXTRAS_KEY] = WordFilter()
    return wf
