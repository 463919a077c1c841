"""The API's start-up heap is out of the full garbage collections, and young collections are rarer
(solomo/core/heap.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from solomo.core.heap import YOUNG_THRESHOLD
from tests.support import ROOT

# A process of its own: the freeze is once per process, and this test process has started apps.
SCRIPT = """
import asyncio, gc, json
from solomo.app import create_app

async def main():
    app = create_app()
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        visited = len(gc.get_objects())  # what a full collection walks: every generation but the frozen
        from solomo.core.heap import freeze_startup_heap
        again = freeze_startup_heap()
        young = gc.get_threshold()[0]
    print(json.dumps({"before": before, "frozen": frozen, "visited": visited, "again": again, "young": young}))

asyncio.run(main())
"""


def test_the_start_up_heap_is_frozen_once_so_full_collections_skip_it():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == 0
    # pypinyin's phrase dictionary alone is ~250,000 lists; a full collection no longer walks them
    assert seen["frozen"] > 200_000
    assert seen["visited"] < seen["frozen"] / 4
    assert seen["again"] == 0
    assert seen["young"] == YOUNG_THRESHOLD > 700  # fewer young collections, fewer objects promoted
