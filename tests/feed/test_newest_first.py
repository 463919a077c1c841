"""The local feed's merge of its cells' rows (``feed.localcells.newest_first``) against ``heapq.merge``."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator

import pytest

from feed.localcells import newest_first


def _cells(rng: random.Random) -> list[list[tuple[float, str]]]:
    """A few cells' rows, each newest first, with scores shared within and across cells (posts of one
    millisecond) and a row present in two cells."""
    cells = []
    for _ in range(rng.randint(0, 7)):
        rows = [(float(rng.randint(1_000, 1_040)), f"{rng.getrandbits(96):024x}|{rng.random()!r}|0.5")
                for _ in range(rng.randint(0, 30))]
        cells.append(sorted(rows, reverse=True))
    if len(cells) >= 2 and cells[0]:
        cells[1] = sorted([*cells[1], cells[0][0]], reverse=True)
    return cells


@pytest.mark.parametrize("seed", range(200))
def test_the_same_rows_in_the_same_order_as_heapq_merge(seed: int) -> None:
    cells = _cells(random.Random(seed))
    expected = list(heapq.merge(*cells, reverse=True))
    assert list(newest_first([iter(c) for c in cells])) == expected
    assert sorted(expected, reverse=True) == expected


def test_reads_each_cell_only_as_far_as_the_rows_taken() -> None:
    read: list[str] = []

    def cell(name: str, scores: list[float]) -> Iterator[tuple[float, str]]:
        for score in scores:
            read.append(f"{name}{score:g}")
            yield score, name

    merged = newest_first([cell("a", [9, 5, 1]), cell("b", [8, 7, 2])])
    assert [next(merged) for _ in range(3)] == [(9, "a"), (8, "b"), (7, "b")]
    assert read == ["a9", "b8", "a5", "b7"]  # the heads, and each row after one taken: never more
    assert list(merged) == [(5, "a"), (2, "b"), (1, "a")]


def test_no_cells_and_empty_cells_merge_to_nothing() -> None:
    assert list(newest_first([])) == []
    assert list(newest_first([iter([]), iter([])])) == []
