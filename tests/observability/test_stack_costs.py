"""What makes the stack cheap keeps its promises: the batched log writer loses and reorders nothing,
generated request ids stay unique, the stall monitor and the GC timer report."""

from __future__ import annotations

import gc
import io
import json
import logging
import re
import threading
import time
from typing import Any, cast

from solomo.core.logline import Stamps
from solomo.core.looplag import StallWindow
from solomo.observability import (
    JsonFormatter,
    _JsonHandler,
    _request_id,
    _sole_json_handler,
    log_access,
    new_request_id,
)
from tests.observability.test_observability import sample
from tests.support import METRICS_HEADERS


def _record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.getLogger("t").makeRecord("t", level, __file__, 1, msg, (), None)


class _Stream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        self.written.set()
        return super().write(text)


def test_log_writer_writes_every_line_in_order_in_batches():
    stream = _Stream()
    handler = _JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    for i in range(2000):
        handler.handle(_record(f"line {i}"))
    handler.close()  # flushes what is still queued
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == [f"line {i}" for i in range(2000)]
    assert stream.writes < 2000  # batched: fewer writes than lines


def test_access_lines_are_written_among_the_records_in_order():
    stream = _Stream()
    handler = _JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = [handler]
        assert _sole_json_handler() is handler  # the access lines take the short way
        for i in range(300):
            handler.handle(_record(f"record {i}"))
            token = _request_id.set(f"rid-{i}")
            try:
                log_access("GET", f"/p/{i}", 200, "/p/{n}", 1.5, True)
            finally:
                _request_id.reset(token)
    finally:
        root.handlers = saved
        handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["msg"] for line in lines[0::2]] == [f"record {i}" for i in range(300)]
    assert [(line["msg"], line["request_id"]) for line in lines[1::2]] == [(f"GET /p/{i} 200", f"rid-{i}")
                                                                           for i in range(300)]


class _NotText:
    def __repr__(self) -> str:
        return "<not text>"


def test_access_fields_no_request_makes_are_reported_and_the_log_goes_on():
    stream = _Stream()
    handler = _JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = [handler]
        log_access("GET", cast(Any, _NotText()), 200, "/x", 1.0, True)  # neither compiled nor Python code takes it
        handler.handle(_record("after it"))
    finally:
        root.handlers = saved
        handler.close()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "error" and first["msg"] == "access line not made" and "not text" in first["fields"]
    assert second["msg"] == "after it"


def test_log_writer_thread_writes_without_a_flush():
    stream = _Stream()
    handler = _JsonHandler(stream)
    try:
        handler.handle(_record("by the writer thread"))
        assert stream.written.wait(10)
        assert stream.getvalue() == "by the writer thread\n"
    finally:
        handler.close()


def test_an_error_is_written_at_once_after_what_was_queued():
    stream = _Stream()
    handler = _JsonHandler(stream)
    try:
        handler._thread = threading.current_thread()  # no writer thread: only the error's own flush writes
        handler.handle(_record("queued"))
        handler.handle(_record("failed", logging.ERROR))
        assert stream.getvalue() == "queued\nfailed\n"
    finally:
        handler._thread = None
        handler.close()


def test_a_full_queue_drops_lines_and_says_how_many():
    stream = _Stream()
    handler = _JsonHandler(stream)
    handler.MAX_PENDING = 3
    handler._thread = threading.current_thread()  # nothing drains the queue
    for i in range(5):
        handler.handle(_record(f"l{i}"))
    handler._thread = None
    handler.close()
    assert stream.getvalue().splitlines() == ["l0", "l1", "l2",
                                              "2 log lines dropped: the log writer could not keep up"]


def test_lines_queued_for_two_streams_go_to_their_own_in_order():
    first, second = _Stream(), _Stream()
    handler = _JsonHandler(first)
    handler._thread = threading.current_thread()  # nothing drains the queue until the flush below
    try:
        for i in range(6):
            handler.stream = first if i in (0, 1, 4) else second  # as pytest swaps sys.stderr
            handler.handle(_record(f"l{i}"))
        handler.flush()
    finally:
        handler._thread = None
        handler.close()
    assert first.getvalue().splitlines() == ["l0", "l1", "l4"]
    assert second.getvalue().splitlines() == ["l2", "l3", "l5"]
    assert first.writes == 2 and second.writes == 2  # one write per run of lines for one stream


def test_a_lines_stamp_is_its_own_millisecond():
    stamps = Stamps()
    start = 1_764_979_199.9985  # 23:59:59.998, then across a second and a day
    for created in [start + step / 10_000 for step in range(0, 40)] + [start + 3600.0, start]:
        milli = int(created * 1000)
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(milli // 1000)) + f".{milli % 1000:03d}Z"
        assert stamps.stamp(created) == expected


def test_generated_request_ids_are_unique_hex():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)


def test_stall_window_keeps_the_longest_of_the_last_window():
    window = StallWindow(window_s=10.0, slots=10)
    assert window.add(100.0, 0.3) == 0.3
    assert window.add(101.5, 0.01) == 0.3  # still inside the window
    assert window.add(105.0, 0.02) == 0.3
    assert window.add(110.5, 0.01) == 0.02  # the 0.3 s stall is more than 10 s old
    assert window.add(125.0, 0.0) == 0.0


async def test_metrics_report_the_event_loop_and_the_collector(client):
    gc.collect()  # at least one timed collection of each generation
    text = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    assert sample(text, "solomo_event_loop_max_stall_seconds") is not None
    assert "# TYPE solomo_event_loop_lag_seconds histogram" in text
    assert (sample(text, "solomo_gc_cpu_seconds_count", generation="2") or 0) >= 1
