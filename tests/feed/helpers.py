"""Helpers for the feed tests: posting, reading feeds, waiting for the fan-out, events."""

from __future__ import annotations

from typing import Any

import orjson
from bson import ObjectId

from solomo.accounts import Principal
from solomo.core.keys import event_history, home_key
from tests.support import Account, random_point, wait_until


def principal(account: Account) -> Principal:
    return Principal(ObjectId(account.id), account.username, account.username, account.role)


async def post(client: Any, account: Account, text: str, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/v1/posts", json={"text": text, **fields}, headers=account.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def follow(client: Any, follower: Account, target: Account | str, kind: str = "users") -> None:
    target_id = target if isinstance(target, str) else target.id
    resp = await client.post(f"/v1/{kind}/{target_id}/follow", headers=follower.headers)
    assert resp.status_code == 204, resp.text


async def page(client: Any, account: Account, path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, params=params, headers=account.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def ids(client: Any, account: Account, path: str = "/v1/feed/home", **params: Any) -> list[str]:
    return [p["id"] for p in (await page(client, account, path, **params))["items"]]


async def all_ids(client: Any, account: Account, path: str, limit: int = 3, **params: Any) -> list[str]:
    """Every item of a list, following next_cursor."""
    out: list[str] = []
    cursor = None
    for _ in range(200):
        body = await page(client, account, path, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        out += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("too many pages")


async def fanned_out(services: Any, post_id: str, timeout: float = 15.0) -> None:
    async def done() -> bool:
        doc = await services.db.posts.find_one({"_id": ObjectId(post_id)}, {"fanout": 1})
        return bool(doc and doc["fanout"] == "done")

    await wait_until(done, timeout=timeout)


async def home_members(services: Any, account: Account) -> list[str]:
    return [m for m in await services.redis.zrevrange(home_key(account.id), 0, -1) if m != "~"]


async def ready_home(client: Any, services: Any, account: Account) -> None:
    """Reads the home feed once and waits for its rebuild, so the fan-out writes into it."""
    await ids(client, account)

    async def ready() -> bool:
        return await services.redis.zscore(home_key(account.id), "~") == 1

    await wait_until(ready, timeout=15)


async def events(services: Any, account: Account, type: str | None = None) -> list[dict[str, Any]]:
    rows = await services.redis.xrange(event_history(account.id))
    out = [{"type": f["type"], "data": orjson.loads(f["data"])} for _, f in rows]
    return [e for e in out if type is None or e["type"] == type]


def somewhere() -> tuple[float, float]:
    return random_point()

