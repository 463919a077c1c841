"""OWASP API4:2023 Unrestricted Resource Consumption.

Bounded everywhere a client chooses a size: request bodies (413, whether or not the client
declares a length), page sizes (``limit`` 1..100 on every list, walked from the OpenAPI document),
cursors, radii, list fields (bulk ids, word lists), text lengths, topics per post; writes are rate
limited per account (429 with ``Retry-After``); a socket's messages are limited in size and rate,
and a flooding socket is closed with 4429. Clients cannot grow the metrics: labels are known methods
and route templates only, and ``/metrics`` answers only with its token (or on an internal port).
"""

from __future__ import annotations

import asyncio
import json

from tests.realtime.wsclient import close_code, open_ws, recv_type
from tests.security.conftest import World, account, error_code, fill_path, openapi, operations


async def test_oversized_body_is_413_declared_or_streamed(api, world: World, services):
    limit = services.settings.max_body_bytes
    big = json.dumps({"text": "x" * (limit + 10)}).encode()
    resp = await api.post("/v1/posts", content=big, headers={**world.alice.headers, "Content-Type": "application/json"})
    assert resp.status_code == 413 and error_code(resp) == "payload_too_large"

    async def chunks():
        for _ in range(limit // 1024 + 8):  # no Content-Length: the server counts as it reads
            yield b" " * 1024
        yield b'{"text": "hi"}'

    resp = await api.post("/v1/posts", content=chunks(), headers={**world.alice.headers,
                                                                  "Content-Type": "application/json"})
    assert resp.status_code == 413 and error_code(resp) == "payload_too_large"
    resp = await api.post("/v1/posts", content=b'{"text": "hi"}', headers={
        **world.alice.headers, "Content-Type": "application/json", "Content-Length": "99999999999"})
    assert resp.status_code in (400, 413)
    # a length int() cannot read: a digit that is not ASCII ("²" in Latin-1), or thousands of digits
    for declared, status in ((b"\xb2", 400), (b"9" * 5000, 413)):
        resp = await api.post("/v1/auth/login", content=b'{"username": "x"}',
                              headers={"Content-Type": "application/json", "Content-Length": declared})
        assert resp.status_code == status, (declared[:8], resp.status_code, resp.text)


async def test_every_list_caps_its_page_size(api, world: World):
    doc = await openapi(api)
    lists = [(m, p, op) for m, p, op in operations(doc)
             if any(q["name"] == "limit" and q["in"] == "query" for q in op.get("parameters", []))]
    assert len(lists) >= 14
    for _method, path, op in lists:
        roles = op.get("x-roles") or ["user"]
        caller = {"user": world.alice, "merchant": world.merchant, "moderator": world.moderator}[roles[0]]
        required = {q["name"]: {"lat": world.store["lat"], "lng": world.store["lng"]}.get(q["name"], "1")
                    for q in op["parameters"] if q.get("required") and q["in"] == "query"}
        url = fill_path(path, world)
        for bad in ("0", "101", "100000", "-1", "1e9", "NaN"):
            resp = await api.get(url, params={**required, "limit": bad}, headers=caller.headers)
            assert resp.status_code == 422, (path, bad, resp.text)
        resp = await api.get(url, params={**required, "limit": "100"}, headers=caller.headers)
        assert resp.status_code == 200, (path, resp.text)
        assert len(resp.json()["items"]) <= 100
        if any(q["name"] == "cursor" for q in op["parameters"]):
            resp = await api.get(url, params={**required, "cursor": "c" * 5000}, headers=caller.headers)
            assert resp.status_code in (400, 422), (path, resp.text)


async def test_radius_text_and_list_caps(api, world: World):
    lat, lng = world.store["lat"], world.store["lng"]
    for path in ("/v1/stores/nearby", "/v1/feed/local"):
        resp = await api.get(path, params={"lat": lat, "lng": lng, "radius_m": 50_001}, headers=world.alice.headers)
        assert resp.status_code == 422, (path, resp.text)
    resp = await api.post("/v1/posts", json={"text": "x" * 2001}, headers=world.alice.headers)
    assert resp.status_code == 422
    resp = await api.post("/v1/posts", json={"text": " ".join(f"#t{i}" for i in range(21))},
                          headers=world.alice.headers)
    assert resp.status_code == 422 and error_code(resp) == "too_many_topics"
    resp = await api.post(f"/v1/posts/{world.post['id']}/comments", json={"text": "x" * 501},
                          headers=world.bob.headers)
    assert resp.status_code == 422
    resp = await api.post("/v1/moderation/posts/bulk", headers=world.moderator.headers,
                          json={"ids": [f"{i:024x}" for i in range(101)], "action": "approve", "reason": "x"})
    assert resp.status_code == 422
    resp = await api.put("/v1/moderation/words", headers=world.moderator.headers,
                         json={"block": [f"w{i}" for i in range(5001)], "review": [], "reason": "x"})
    assert resp.status_code in (413, 422)


async def test_writes_are_rate_limited_with_retry_after(api, services, leak_scanner, monkeypatch):
    monkeypatch.setitem(services.settings.rate_limits, "post", "5/minute")
    acct = await account(services, leak_scanner)
    statuses = []
    for i in range(7):
        resp = await api.post("/v1/posts", json={"text": f"post {i}"}, headers=acct.headers)
        statuses.append(resp.status_code)
    assert statuses == [201] * 5 + [429] * 2, statuses
    assert error_code(resp) == "rate_limited" and 1 <= int(resp.headers["Retry-After"]) <= 60
    from bson import ObjectId

    assert await services.db.posts.count_documents({"author_id": ObjectId(acct.id)}) == 5
    other = await account(services, leak_scanner)  # per account: others are not affected
    assert (await api.post("/v1/posts", json={"text": "mine"}, headers=other.headers)).status_code == 201


async def test_socket_message_size_and_rate(live_server, services, leak_scanner):
    acct = await account(services, leak_scanner)
    ws = await open_ws(live_server, acct.token)
    try:
        await ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
        frame = await recv_type(ws, "error")
        assert frame["data"]["code"] == "payload_too_large"
        await asyncio.sleep(2.5)  # let the bucket refill
        for _ in range(200):  # a flood: far beyond 10 a second
            await ws.send('{"type": "ping"}')
        code, frames = await close_code(ws, timeout=10)
    finally:
        await ws.close()
    assert code == 4429, code
    errors = [json.loads(f) for f in frames if '"error"' in f]
    assert any(e["data"]["code"] == "rate_limited" for e in errors)
    pongs = sum(1 for f in frames if '"pong"' in f)
    assert 1 <= pongs <= 40, pongs  # the burst, not the flood, was answered


def _series(name: str) -> set[tuple[tuple[str, str], ...]]:
    """The label sets of one metric family in this process's registry."""
    from prometheus_client import REGISTRY

    from solomo.core import httpseries

    httpseries.publish()  # what the middleware counted so far becomes series
    return {tuple(sorted(sample.labels.items())) for family in REGISTRY.collect() if family.name == name
            for sample in family.samples if sample.name == name + "_total"}


async def test_clients_cannot_grow_the_metric_series(api, world: World):
    import random
    import string

    from solomo.observability import KNOWN_METHODS

    paths = ["/v1/me", f"/v1/users/{world.bob.id}", "/nope", "/v1/posts/x/y/z"]
    for path in paths:  # every (route, status) a random method can reach, once
        await api.request("BREW", path, headers=world.alice.headers)
    before = _series("solomo_http_requests")
    methods = {"".join(random.choices(string.ascii_uppercase, k=12)) for _ in range(50)}
    for method in methods:
        resp = await api.request(method, random.choice(paths) + "?x=" + method, headers=world.alice.headers)
        assert resp.status_code in (404, 405), (method, resp.status_code)
    after = _series("solomo_http_requests")
    assert after == before, after - before  # 50 methods, 50 paths: not one new series
    labels = [dict(s) for s in after]
    assert {d["method"] for d in labels} <= KNOWN_METHODS | {"other"}
    assert not {d["route"] for d in labels} & set(paths[2:])  # unmatched paths share one label


async def test_metrics_need_the_token(api, app, monkeypatch):
    from tests.support import METRICS_HEADERS

    assert (await api.get("/metrics", headers=METRICS_HEADERS)).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_HEADERS["Authorization"][:-1]},
                    {"Authorization": "Basic " + METRICS_HEADERS["Authorization"].split()[1]}):
        resp = await api.get("/metrics", headers=headers)
        assert resp.status_code == 403 and error_code(resp) == "forbidden", headers
        assert "solomo_http" not in resp.text
    monkeypatch.setattr(app.state.settings, "metrics_token", None)  # no token: the public app has no /metrics
    for headers in ({}, METRICS_HEADERS):
        resp = await api.get("/metrics", headers=headers)
        assert resp.status_code == 404 and error_code(resp) == "not_found"


async def _calls(services, command: str) -> int:
    stats = await services.redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_spam_topics_do_not_grow_hot_topic_work_or_redis(services):
    """2,000 made-up topics, each used by three accounts, and one by a single account 2,000 times:
    the hour's top stays capped, every trend key expires, and a ranking's work stays bounded
    (while a real burst by five authors still trends)."""
    import time
    import uuid

    from bson import ObjectId

    from feed import trends
    from solomo.core.keys import trend_top

    now_ms = int(time.time() * 1000)
    spam = [f"spam{uuid.uuid4().hex[:10]}" for _ in range(2000)]
    lone = ObjectId()
    for author in (ObjectId(), ObjectId(), ObjectId(), lone):
        for i in range(0, len(spam), 100):
            topics = [{"key": t, "display": t} for t in spam[i:i + 100]]
            await trends.record(services, {"_id": ObjectId(), "author_id": author, "created_ms": now_ms,
                                           "topics": topics})
    burst = f"burst{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        await trends.record(services, {"_id": ObjectId(), "author_id": ObjectId(), "created_ms": now_ms,
                                       "topics": [{"key": burst, "display": burst.upper()}]})
    bucket = trends.bucket_of(now_ms)
    assert await services.redis.zcard(trend_top(bucket)) <= trends.TOP_K
    hlen_before = await _calls(services, "hlen")
    hot = await trends.compute_hot(services, 100)
    hlen_calls = await _calls(services, "hlen") - hlen_before
    # a constant: 2,000 or 200,000 spam topics, at most MAX_CANDIDATES topics × 12 hours are looked at
    assert hlen_calls <= trends.MAX_CANDIDATES * (trends.LOOKBACK + trends.WINDOW), hlen_calls
    by_topic = {h["topic"]: h for h in hot}  # (other tests' bursts may trend too)
    assert by_topic[burst.upper()]["post_count"] == 5
    forever = [key async for key in services.redis.scan_iter(match="{trend}:*", count=1000)
               if await services.redis.ttl(key) == -1]  # -2: expired since the scan
    assert forever == [], forever[:5]
