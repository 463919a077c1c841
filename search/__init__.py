"""Search on MongoDB alone: stores (Chinese, Latin, pinyin; ranked by match then distance), users,
posts and topics, served by ``search_keys`` arrays (:mod:`solomo.core.searchkeys`) under multikey
indexes. See ``docs/design.md``, "Search (issue 16)"."""

import solomo  # noqa: F401  (first: solomo.core.compiled.guard, before any compiled module of this package)
