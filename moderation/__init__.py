"""Moderation: sensitive words, reports, the review queue, decisions, suspensions, the audit log.

Read in this order: ``normalize`` (evasion-proof text keys) → ``words`` (the lists in MongoDB)
→ ``matcher`` (per-process Aho-Corasick, refreshed from a Redis version) → ``screen`` (what
posts and comments call) → ``reports`` (auto-hide at the threshold) → ``queue`` → ``actions``
(post transitions) → ``comments`` (comments held for review: their queue and decisions) →
``offers`` (offers held for review: approve or remove) → ``users`` (suspension) → ``audit``
(append-only log, written in the same transaction as every change). Rate limits live in :mod:`solomo.core.ratelimit`.
"""
