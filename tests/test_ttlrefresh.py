"""The read paths' TTL refresh: at most once per key per process every EVERY_S, bounded memory."""

from __future__ import annotations

from solomo.core.ttlrefresh import Refreshes


def test_a_key_is_due_once_per_interval() -> None:
    r = Refreshes(every_s=30.0, max_keys=100)
    assert r.due("a", now=100.0)
    assert not r.due("a", now=100.0)
    assert not r.due("a", now=129.9)
    assert r.due("b", now=129.9)  # each key on its own
    assert r.due("a", now=130.0)
    assert not r.due("a", now=159.0)  # the interval counts from the last refresh, not the first


def test_forget_makes_every_key_due() -> None:
    r = Refreshes(every_s=30.0)
    assert r.due("a", now=1.0) and r.due("b", now=1.0)
    r.forget()
    assert r.due("a", now=2.0) and r.due("b", now=2.0)


def test_memory_is_bounded_and_the_longest_unrefreshed_key_goes_first() -> None:
    r = Refreshes(every_s=30.0, max_keys=3)
    for i, key in enumerate("abc"):
        assert r.due(key, now=float(i))
    assert r.due("a", now=40.0)  # refreshed again: now the newest
    assert r.due("d", now=41.0)  # over the bound: "b" (refreshed longest ago) is forgotten
    assert r.due("b", now=42.0)  # so it is due again at once (a refresh too many, never one too few)
    assert not r.due("a", now=43.0)
    assert len(r._at) == 3
