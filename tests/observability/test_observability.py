"""Metrics, request ids and JSON logs: through the real app, a bare app, and two uvicorn processes."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import re
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from solomo.core import httpseries, logline
from solomo.core.compiled import source_of
from solomo.core.metrics import HTTP_REQUESTS
from solomo.embedded import free_port
from solomo.middleware import ObservabilityMiddleware
from solomo.observability import (
    UNMATCHED_ROUTE,
    JsonFormatter,
    PlainFormatter,
    _JsonHandler,
    _request_id,
    _sole_json_handler,
    current_request_id,
    log_access,
    queue_depths,
    request_id_from,
)
from tests.support import METRICS_HEADERS, LiveServer, register


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (labels must match exactly)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head == name and not labels:
            return float(value)
        match = re.fullmatch(re.escape(name) + r"\{(.*)\}", head)
        if match:
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            if found == labels:
                return float(value)
    return None


async def test_request_id_echoed_or_generated(client):
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"})
    assert resp.headers["x-request-id"] == "abc-123.x:y"
    for bad in ["has space", "x" * 200, "bad\tid", "-leading-dash", ""]:
        resp = await client.get("/healthz", headers={"X-Request-ID": bad})
        rid = resp.headers["x-request-id"]
        assert rid != bad and re.fullmatch(r"[0-9a-f]{32}", rid), (bad, rid)
    a = (await client.get("/healthz")).headers["x-request-id"]
    b = (await client.get("/healthz")).headers["x-request-id"]
    assert a != b
    # error answers carry it too
    resp = await client.get("/v1/me", headers={"X-Request-ID": "err-1"})
    assert resp.status_code == 401 and resp.headers["x-request-id"] == "err-1"


async def test_latency_labelled_by_route_template(client):
    acct = await register(client)
    before = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    key = {"method": "GET", "route": "/v1/users/{user_id}"}
    count_before = sample(before, "solomo_http_request_duration_seconds_count", **key) or 0
    for _ in range(3):
        assert (await client.get(f"/v1/users/{acct.id}", headers=acct.headers)).status_code == 200
    raw = f"/nope/{uuid.uuid4().hex}"
    assert (await client.get(raw)).status_code == 404
    resp = await client.get("/metrics", headers=METRICS_HEADERS)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert sample(text, "solomo_http_request_duration_seconds_count", **key) == count_before + 3
    assert (sample(text, "solomo_http_requests_total", method="GET", route="/v1/users/{user_id}",
                   status="200") or 0) >= 3
    assert (sample(text, "solomo_http_requests_total", method="GET", route="<unmatched>", status="404") or 0) >= 1
    assert acct.id not in text and raw not in text  # raw paths never become labels
    unlabelled = ["solomo_fanout_lag_seconds_count", "solomo_ws_connected_sockets",
                  "solomo_ws_slow_client_closes_total"]
    for name in unlabelled:
        assert sample(text, name) is not None, name
    for name in ["solomo_events_delivered_total", "solomo_events_dropped_total", "solomo_fanout_entries_total"]:
        assert f"# TYPE {name} counter" in text, name  # labelled: no sample until a package updates it


async def test_queue_depth_read_from_broker(client, settings):
    from redis.asyncio import Redis

    text = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    assert sample(text, "solomo_broker_up") == 1
    for queue in ("fanout", "maintenance"):
        assert sample(text, "solomo_celery_queue_depth", queue=queue) is not None, queue

    broker = Redis.from_url(settings.effective_broker_url, decode_responses=True)
    name = f"q_{uuid.uuid4().hex}"
    try:
        await broker.rpush(name, "a", "b", "c")
        await broker.rpush(f"{name}\x06\x163", "d")
        assert await queue_depths(broker, [name, name + "_empty"]) == {name: 4, name + "_empty": 0}
    finally:
        await broker.delete(name, f"{name}\x06\x163")
        await broker.aclose()


async def test_access_log_is_json_with_request_id(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("solomo.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        rid = f"log-{uuid.uuid4().hex[:8]}"
        await client.get("/healthz", headers={"X-Request-ID": rid})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [e for e in entries if e.get("request_id") == rid]
    assert len(mine) == 1, entries
    entry = mine[0]
    assert entry["route"] == "/healthz" and entry["status"] == 200 and entry["method"] == "GET"
    assert entry["level"] == "info" and entry["logger"] == "solomo.access" and entry["ts"].endswith("Z")
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0


def test_formatter_keeps_extras_and_exceptions():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed %s", ("it",),
                                                   exc_info=__import__("sys").exc_info(),
                                                   extra={"post_id": "p1"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "failed it" and entry["post_id"] == "p1" and "ValueError: boom" in entry["exc"]


async def test_plain_access_line_is_one_short_human_line(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PlainFormatter())
    logger = logging.getLogger("solomo.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.get("/healthz")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert lines and all(re.fullmatch(r"\d\d:\d\d:\d\d INFO  solomo\.access GET /healthz 200 \d+\.\dms", line)
                         for line in lines), lines


def test_plain_formatter_renders_any_record_and_its_exception():
    record = logging.getLogger("x").makeRecord("solomo.seed", logging.WARNING, __file__, 1, "slow %s", ("step",),
                                               None, extra={"post_id": "p1"})
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING solomo\.seed slow step", PlainFormatter().format(record))
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (),
                                                   exc_info=__import__("sys").exc_info())
    first, *rest = PlainFormatter().format(record).splitlines()
    assert first.endswith("ERROR x failed") and rest[-1] == "ValueError: boom"


@pytest.mark.parametrize("value,kept", [("a", True), ("A-b_c.d:e", True), ("a b", False), ("é", False),
                                        ("a\nb", False), ("x" * 128, True), ("x" * 129, False), (None, False)])
def test_request_id_sanity(value, kept):
    assert (request_id_from(value) == value) is kept


def _bare_app() -> Starlette:
    async def boom(request):
        raise RuntimeError("kaboom")

    async def stream(request):
        async def chunks():
            for i in range(5):
                yield f"chunk{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def echo(ws):
        await ws.accept()
        text = await ws.receive_text()
        await ws.send_text("echo:" + text)
        await ws.close()

    async def ok(request):
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/bare/boom", boom), Route("/bare/stream", stream), Route("/bare/ok", ok),
                            WebSocketRoute("/bare/ws", echo)])
    app.add_middleware(ObservabilityMiddleware)
    return app


def test_websocket_streaming_and_crash_pass_through():
    """The middleware must not break sockets or streams, and a crash still counts as a 500."""
    app = _bare_app()
    httpseries.publish()
    before = HTTP_REQUESTS.labels("GET", "/bare/boom", "500")._value.get()
    with TestClient(app, raise_server_exceptions=False) as tc:
        with tc.websocket_connect("/bare/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "echo:hi"
        resp = tc.get("/bare/stream", headers={"X-Request-ID": "s-1"})
        assert resp.text == "".join(f"chunk{i};" for i in range(5)) and resp.headers["x-request-id"] == "s-1"
        assert tc.get("/bare/boom").status_code == 500
    httpseries.publish()  # the app's loop thread has ended: its counts are the test's to publish
    assert HTTP_REQUESTS.labels("GET", "/bare/boom", "500")._value.get() == before + 1


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=METRICS_HEADERS), timeout=10) as resp:
        return resp.status, resp.read().decode()


def test_metrics_add_up_across_processes(tmp_path: Path, settings):
    """Two uvicorn processes sharing PROMETHEUS_MULTIPROC_DIR: either one reports both's requests."""
    mpdir = tmp_path / "prom"
    mpdir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(mpdir), "SOLOMO_LOG_LEVEL": "WARNING"}
    servers = [LiveServer(free_port(), extra_env=env), LiveServer(free_port(), extra_env=env)]
    try:
        for server in servers:
            server.start()
        for server, n in zip(servers, (3, 4), strict=True):
            for _ in range(n):
                assert _get(server.base_url + "/healthz")[0] == 200
        for server in servers:
            # the other process publishes its counts within a second (solomo.core.httpseries)
            deadline = time.monotonic() + 5
            while True:
                status, text = _get(server.base_url + "/metrics")
                assert status == 200
                total = sample(text, "solomo_http_requests_total", method="GET", route="/healthz", status="200")
                if total == 7 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert total == 7
            assert sample(text, "solomo_celery_queue_depth", queue="fanout") is not None
    finally:
        for server in servers:
            server.stop()
    assert list(mpdir.glob("*.db")), "multiprocess mode wrote no sample files"


def test_celery_worker_serves_metrics_and_logs_json(tmp_path: Path):
    """A real `celery worker` (prefork) with SOLOMO_WORKER_METRICS_PORT: /metrics answers, logs are JSON."""
    import os
    import subprocess
    import sys
    import time

    from solomo.embedded import _die_with_parent
    from tests.support import ROOT

    port = free_port()
    mpdir = tmp_path / "prom"
    mpdir.mkdir()
    env = {**os.environ, "SOLOMO_WORKER_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(mpdir),
           "SOLOMO_LOG_LEVEL": "INFO"}
    log = tmp_path / "worker.log"
    # a queue nobody sends to: the probe worker must not take other tests' tasks
    queue = f"probe_{uuid.uuid4().hex[:8]}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queue, "--pool", "prefork",
             "--concurrency", "1", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + 30
        text = None
        while time.monotonic() < deadline and text is None:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                text = _get(f"http://127.0.0.1:{port}/metrics")[1]
            except OSError:
                time.sleep(0.2)
        assert text is not None, log.read_text()[-2000:]
        assert "# TYPE solomo_fanout_lag_seconds histogram" in text
        assert "solomo_ws_slow_client_closes_total 0.0" in text  # labelled ones appear once updated
        deadline = time.monotonic() + 15
        while "ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(20)
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert any("ready" in e["msg"] for e in entries), log.read_text()[-2000:]
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)


def test_internal_metrics_port_without_token_and_no_public_metrics(tmp_path: Path):
    """SOLOMO_METRICS_PORT serves the metrics (queue depths included) with no token; with no token
    set, the public port has no /metrics at all."""
    import urllib.error

    port, internal = free_port(), free_port()
    server = LiveServer(port, extra_env={"SOLOMO_METRICS_PORT": str(internal), "SOLOMO_METRICS_TOKEN": ""})
    try:
        server.start()
        assert _get(server.base_url + "/healthz")[0] == 200
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(server.base_url + "/metrics", timeout=10)
        assert exc.value.code == 404
        deadline = time.monotonic() + 5  # the port's thread sees what the loop publishes each second
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{internal}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            total = sample(text, "solomo_http_requests_total", method="GET", route="/healthz", status="200")
            if total == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert total == 1
        assert sample(text, "solomo_celery_queue_depth", queue="fanout") is not None
        assert sample(text, "solomo_broker_up") == 1
    finally:
        server.stop()


def test_a_served_request_is_logged_once():
    """uvicorn with ``--no-access-log``, the app's JSON log at INFO: one request → one access line
    (ours, with its request id), not a second one from uvicorn's own access logger."""
    port = free_port()
    server = LiveServer(port, extra_env={"SOLOMO_LOG_LEVEL": "INFO", "SOLOMO_LOG_FORMAT": "json"}, log_level="info")
    marker = f"/no-such-page-{uuid.uuid4().hex}"  # in both access lines' path, and nowhere else
    try:
        server.start()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.base_url + marker, timeout=10)
        assert missing.value.code == 404
        deadline = time.monotonic() + 5
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = [line for line in server.log.read_text().splitlines() if marker in line]
            if lines:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # a second line, if any, is written right after the first
        lines = [line for line in server.log.read_text().splitlines() if marker in line]
        assert len(lines) == 1, lines
        entry = json.loads(lines[0])  # written straight to the writer (the process's only handler)
        assert list(entry) == ["ts", "level", "logger", "msg", "request_id", "complete", "duration_ms", "method",
                               "path", "route", "status"], entry
        assert entry["logger"] == "solomo.access" and entry["msg"] == f"GET {marker} 404"
        assert entry["route"] == UNMATCHED_ROUTE and entry["status"] == 404 and entry["complete"] is True
    finally:
        server.stop()


def test_an_access_line_is_the_line_its_record_would_make():
    """The middleware makes an access line without making a record (when the JSON handler is the
    only one it would reach): the line is byte for byte what formatting the record gives."""
    formatter = JsonFormatter()
    extras = {"method": "POST", "path": "/v1/posts", "route": "/v1/posts", "status": 201, "duration_ms": 12.345,
              "complete": True}

    def both() -> tuple[str, str]:
        record = logging.getLogger("solomo.access").makeRecord(
            "solomo.access", logging.INFO, __file__, 0, "%s %s %s", ("POST", "/v1/posts", 201), None, extra=extras)
        return formatter.access_line(record.created, "POST", "/v1/posts", 201, "/v1/posts", 12.345, True,
                                     current_request_id()), formatter.format(record)

    direct, formatted = both()  # outside a request: no request id
    assert direct == formatted and "request_id" not in direct
    token = _request_id.set("rid-access-1")
    try:
        direct, formatted = both()
    finally:
        _request_id.reset(token)
    assert direct == formatted and '"request_id":"rid-access-1"' in direct


def test_the_access_line_from_source_is_the_compiled_ones():
    """``solomo.core.logline`` runs compiled, or from its source when the build is stale: the two
    make the same line, stamp and escapes included."""
    source = importlib.util.spec_from_file_location("logline_from_source", source_of("solomo.core.logline"))
    assert source is not None and source.loader is not None
    interpreted = importlib.util.module_from_spec(source)
    source.loader.exec_module(interpreted)
    cases = [(1_765_000_000.5, "GET", '/a"b\\c\n', 200, "/a", 1.5, True, "rid-1"),
             (1_765_000_000.9994, "DELETE", "/v1/posts/1", 404, "/v1/posts/{post_id}", 0.0, False, None),
             (1_765_000_001.0, "POST", "/话题/#咖啡#", 201, "/t", 1234.567, True, "r")]
    for fields in cases:
        assert (interpreted.access_line(interpreted.Stamps(), *fields)
                == logline.access_line(logline.Stamps(), *fields)), fields


def test_the_access_line_goes_the_records_way_when_anything_else_listens():
    """A second handler, a filter or the plain format on the way: the record is made, and each
    handler gets it (a test's capture handler sees the line)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    json_handler = _JsonHandler(io.StringIO())
    json_handler.setFormatter(JsonFormatter())
    try:
        root.handlers = [json_handler]
        assert _sole_json_handler() is json_handler
        other = logging.StreamHandler(io.StringIO())
        access = logging.getLogger("solomo.access")
        access.addHandler(other)
        assert _sole_json_handler() is None
        access.removeHandler(other)
        json_handler.addFilter(lambda record: True)
        assert _sole_json_handler() is None
        json_handler.filters.clear()
        json_handler.setFormatter(PlainFormatter())
        assert _sole_json_handler() is None
    finally:
        root.handlers = saved
        json_handler.close()


def test_an_access_line_orjson_refuses_does_not_escape_the_middleware():
    """A path orjson cannot write (a lone surrogate) neither raises into the request nor loses its
    line: it is written with the bad character escaped."""
    root = logging.getLogger()
    saved = root.handlers[:]
    stream = io.StringIO()
    json_handler = _JsonHandler(stream)
    json_handler.setFormatter(JsonFormatter())
    try:
        root.handlers = [json_handler]
        assert _sole_json_handler() is json_handler
        log_access("GET", "/ok", 200, "/ok", 1.0, True)
        log_access("GET", "/bad-\ud800", 404, UNMATCHED_ROUTE, 1.0, True)  # must not raise
        json_handler.flush()
    finally:
        root.handlers = saved
        json_handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["path"] for line in lines] == ["/ok", "/bad-\\ud800"]
    assert lines[1]["msg"] == "GET /bad-\\ud800 404" and lines[1]["status"] == 404
