"""PATCH /v1/me and POST /v1/me/password (issue 16), against the real servers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId

from tests.realtime.wsclient import open_ws, recv_json
from tests.support import register


async def test_profile_edit_and_rename_shows_in_posts_at_once(client, services):
    acct = await register(client)
    post = await client.post("/v1/posts", json={"text": "hi"}, headers=acct.headers)
    assert (await client.get(f"/v1/posts/{post.json()['id']}", headers=acct.headers)).json()["author"][
        "display_name"] == acct.username  # cached summary now
    resp = await client.patch("/v1/me", headers=acct.headers,
                              json={"display_name": " 小明 ", "bio": "喝咖啡", "offers_from_unfollowed": False})
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert (me["display_name"], me["bio"], me["avatar_url"]) == ("小明", "喝咖啡", None)
    assert me["offers_from_unfollowed"] is False
    got = await client.get(f"/v1/posts/{post.json()['id']}", headers=acct.headers)
    assert got.json()["author"]["display_name"] == "小明"
    assert (await client.get("/v1/me", headers=acct.headers)).json()["offers_from_unfollowed"] is False
    other = await register(client)
    seen = (await client.get(f"/v1/users/{acct.id}", headers=other.headers)).json()
    assert seen["bio"] == "喝咖啡" and "offers_from_unfollowed" not in seen
    # a new post made with the same (cached) token carries the new name
    again = await client.post("/v1/posts", json={"text": "again"}, headers=acct.headers)
    assert again.json()["author"]["display_name"] == "小明"
    # avatar null clears; bio "" is allowed
    resp = await client.patch("/v1/me", json={"avatar_media_id": None, "bio": ""}, headers=acct.headers)
    assert resp.status_code == 200 and resp.json()["bio"] == "" and resp.json()["avatar_url"] is None


@pytest.mark.parametrize("body", [
    {"display_name": ""}, {"display_name": "   "}, {"display_name": "x" * 33}, {"display_name": None},
    {"bio": "x" * 161}, {"bio": None}, {"offers_from_unfollowed": "no"}, {"offers_from_unfollowed": None},
    {"avatar_media_id": "nope"}, {"avatar_media_id": "0" * 24}, {"username": "other"}, {"role": "moderator"},
    {"display_name": "blockword"}, {"bio": "say reviewword"},
])
async def test_profile_bad_input_writes_nothing(client, services, body):
    acct = await register(client)
    before = await services.db.users.find_one({"_id": ObjectId(acct.id)})
    resp = await client.patch("/v1/me", json=body, headers=acct.headers)
    assert resp.status_code == 422, resp.text
    if body.get("display_name") == "blockword" or "reviewword" in str(body.get("bio")):
        assert resp.json()["error"]["code"] == "content_rejected"
    if body.get("avatar_media_id") == "0" * 24:
        assert resp.json()["error"]["code"] == "invalid_media"
    assert await services.db.users.find_one({"_id": ObjectId(acct.id)}) == before


async def test_profile_needs_a_token(client):
    assert (await client.patch("/v1/me", json={"bio": "x"})).status_code == 401


async def test_password_change_revokes_other_tokens_at_once(live_server, client, services):
    acct = await register(client)
    login = await client.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    other_token = login.json()["token"]
    other = {"Authorization": f"Bearer {other_token}"}
    assert (await client.get("/v1/me", headers=other)).status_code == 200  # now in the token cache
    ws_other = await open_ws(live_server, other_token)
    ws_mine = await open_ws(live_server, acct.token)
    for ws in (ws_other, ws_mine):
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json(ws))["type"] == "pong"

    wrong = await client.post("/v1/me/password", json={"old_password": "not-it-at-all", "new_password": "newpassword1"},
                              headers=acct.headers)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_credentials"
    short = await client.post("/v1/me/password", json={"old_password": "password123", "new_password": "short"},
                              headers=acct.headers)
    assert short.status_code == 422
    assert (await client.get("/v1/me", headers=other)).status_code == 200  # refusals changed nothing

    resp = await client.post("/v1/me/password", json={"old_password": "password123", "new_password": "newpassword1"},
                             headers=acct.headers)
    assert resp.status_code == 204, resp.text
    # the other token: refused at once (its cache entry is gone), also by the live server's process
    assert (await client.get("/v1/me", headers=other)).status_code == 401
    import httpx2

    async with httpx2.AsyncClient(base_url=live_server) as remote:
        assert (await remote.get("/v1/me", headers=other)).status_code == 401
        assert (await remote.get("/v1/me", headers=acct.headers)).status_code == 200
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200
    # its socket closes with 4401; the changer's stays open
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed) as closed:
        await recv_json(ws_other, timeout=5)
    assert closed.value.rcvd.code == 4401
    await ws_mine.send(json.dumps({"type": "ping"}))
    assert (await recv_json(ws_mine))["type"] == "pong"
    await ws_mine.close()
    # old password refused, new one works
    assert (await client.post("/v1/auth/login", json={"username": acct.username,
                                                      "password": "password123"})).status_code == 401
    assert (await client.post("/v1/auth/login", json={"username": acct.username,
                                                      "password": "newpassword1"})).status_code == 200


async def test_wrong_passwords_are_limited_per_user(client, services):
    acct = await register(client)
    from solomo.core.ratelimit import limits_for

    limit = min(item.amount for item in limits_for(services, "password"))
    for i in range(limit):
        path, method, body = (("/v1/me/password", "POST", {"old_password": f"wrong-{i}-pass", "new_password": "x" * 9})
                              if i % 2 else ("/v1/me", "DELETE", {"password": f"wrong-{i}-pass"}))
        resp = await client.request(method, path, json=body, headers=acct.headers)
        assert resp.status_code == 403, resp.text
    right = await client.post("/v1/me/password", json={"old_password": "password123", "new_password": "y" * 9},
                              headers=acct.headers)
    assert right.status_code == 429 and right.json()["error"]["code"] == "rate_limited"
    assert right.headers.get("retry-after")
    # refused before the check: the password did not change, the account is intact
    assert (await client.post("/v1/auth/login", json={"username": acct.username,
                                                      "password": "password123"})).status_code == 200
    # bad bodies do not count (validation answers first)
    other = await register(client)
    for _ in range(limit + 2):
        resp = await client.post("/v1/me/password", json={"old_password": "password123"}, headers=other.headers)
        assert resp.status_code == 422


async def test_profile_edits_are_limited_per_user(client, services, monkeypatch):
    """A display-name change makes every process drop its names and the user's cached tokens go:
    bounded per user, like any write (a refused edit changes nothing)."""
    monkeypatch.setitem(services.settings.rate_limits, "profile_edit", "3/minute")
    acct, other = await register(client), await register(client)
    for i in range(3):
        resp = await client.patch("/v1/me", json={"display_name": f"Name {i}"}, headers=acct.headers)
        assert resp.status_code == 200, resp.text
    refused = await client.patch("/v1/me", json={"display_name": "Too many", "bio": "x"}, headers=acct.headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    me = (await client.get("/v1/me", headers=acct.headers)).json()
    assert (me["display_name"], me["bio"]) == ("Name 2", "")
    resp = await client.patch("/v1/me", json={"display_name": "Fine"}, headers=other.headers)
    assert resp.status_code == 200, resp.text  # another user's budget is their own


async def test_a_rename_after_redis_lost_its_data_still_reaches_a_process_that_held_names(client, services):
    """The names' generation after a loss of Redis's data (the key gone) never comes back to one a
    process still holds with the names it read under it."""
    from solomo.core.keys import SUMMARIES_GEN

    acct = await register(client)
    post = await client.post("/v1/posts", json={"text": "hi"}, headers=acct.headers)
    url = f"/v1/posts/{post.json()['id']}"

    async def shown() -> str:
        return str((await client.get(url, headers=acct.headers)).json()["author"]["display_name"])

    for name in ("第一", "第二"):
        await services.redis.delete(SUMMARIES_GEN)  # Redis lost its data (this key is what matters here)
        resp = await client.patch("/v1/me", json={"display_name": name}, headers=acct.headers)
        assert resp.status_code == 200, resp.text
        assert await shown() == name  # the page holds this name under the generation it read


class _FailsOnce:
    """A collection that fails its first ``method`` call (every one with ``always``) as a
    stepped-down primary would: before the write, or (``after=True``) after it, the answer lost.
    (``services.accounts`` is compiled: its methods cannot be replaced, so the fault goes where it
    would really happen, in MongoDB's call.)"""

    def __init__(self, collection: Any, method: str, *, after: bool, always: bool = False) -> None:
        self._collection, self._method, self._after, self.failed = collection, method, after, False
        self._always = always

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._collection, name)
        if name != self._method or (self.failed and not self._always):
            return real

        async def once(*args: Any, **kwargs: Any) -> Any:
            from pymongo.errors import AutoReconnect

            self.failed = True
            if self._after:
                await real(*args, **kwargs)
            raise AutoReconnect("injected: the primary stepped down")
        return once


@pytest.mark.parametrize(("collection", "method", "after"),
                         [("tokens", "delete_many", False), ("users", "update_one", True)])
async def test_a_password_change_cut_short_is_finished_by_its_retry(client, services, monkeypatch, collection,
                                                                    method, after):
    """MongoDB fails between the change's two writes (the other tokens' revocation, the new
    password): the client's retry of the same request finishes it, and the other token ends up
    refused either way. The password went second: saved first, a failure left the other tokens
    alive and the retry, with the old password, refused."""
    acct = await register(client)
    login = await client.post("/v1/auth/login", json={"username": acct.username, "password": "password123"})
    other = {"Authorization": f"Bearer {login.json()['token']}"}
    faulty = _FailsOnce(getattr(services.db, collection), method, after=after)
    body = {"old_password": "password123", "new_password": "newpassword1"}
    with monkeypatch.context() as patched:
        patched.setattr(services.db, collection, faulty, raising=False)
        first = await client.post("/v1/me/password", json=body, headers=acct.headers)
    assert faulty.failed and first.status_code == 503, first.text
    if not after:  # nothing was written: the old password still holds, and the retry finishes
        again = await client.post("/v1/me/password", json=body, headers=acct.headers)
        assert again.status_code == 204, again.text
    assert (await client.get("/v1/me", headers=other)).status_code == 401
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200
    assert (await client.post("/v1/auth/login", json={"username": acct.username,
                                                      "password": "newpassword1"})).status_code == 200


async def test_an_avatar_change_that_fails_claims_no_picture(client, services, monkeypatch):
    """The new picture is claimed, the user changed and the old picture released in one transaction:
    MongoDB failing on the user's write leaves the upload unclaimed (it still expires), not an avatar
    nothing uses that no sweep would delete."""
    from tests.media.helpers import uploaded

    acct = await register(client)
    first, second = await uploaded(client, acct), await uploaded(client, acct)
    assert (await client.patch("/v1/me", json={"avatar_media_id": first["id"]},
                               headers=acct.headers)).status_code == 200
    faulty = _FailsOnce(services.db.users, "find_one_and_update", after=False, always=True)
    with monkeypatch.context() as patched:
        patched.setattr(services.db, "users", faulty, raising=False)
        resp = await client.patch("/v1/me", json={"avatar_media_id": second["id"]}, headers=acct.headers)
    assert faulty.failed and resp.status_code == 503, resp.text
    new, old = [await services.db.media.find_one({"_id": ObjectId(m["id"])}) for m in (second, first)]
    assert new["status"] != "avatar" and new.get("expires_at") is not None  # still an unused upload
    assert old["status"] == "avatar" and old.get("expires_at") is None  # still the avatar
    me = (await client.get("/v1/me", headers=acct.headers)).json()
    assert me["avatar_url"] == first["thumb_url"]
