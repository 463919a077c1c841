"""The push receiver drill: a real HTTP server on loopback plays the push service; the tests read
what it receives as a browser would (VAPID token checked against the server's key, aes128gcm
decrypted with the keys the test made) and find the event frames."""

from __future__ import annotations

import json
import uuid

import pytest
from bson import ObjectId

from solomo.core.events import event_key
from solomo.core.keys import event_history
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.push.receiver import Browser, Receiver, check_vapid
from tests.realtime.wsclient import open_ws, recv_type
from tests.support import offset, online, register, wait_until

pytestmark = pytest.mark.usefixtures("celery_worker")


async def subscribed(client, receiver: Receiver, acct) -> tuple[Browser, str]:
    """Subscribes ``acct`` with keys the test made; returns them and the endpoint's path."""
    browser, path = Browser(), f"/push/{uuid.uuid4().hex}"
    resp = await client.post("/v1/push/subscriptions", json={"endpoint": receiver.base + path,
                                                              "keys": browser.keys()}, headers=acct.headers)
    assert resp.status_code == 201, resp.text
    return browser, path


async def arrivals(receiver: Receiver, path: str, count: int = 1, timeout: float = 20):
    async def enough():
        got = receiver.at(path)
        return got if len(got) >= count else None

    return await wait_until(enough, timeout=timeout)


async def test_offer_and_mention_reach_a_closed_app(client, services, receiver, live_server):
    user = await register(client)
    public_key = (await client.get("/v1/push/key", headers=user.headers)).json()["public_key"]
    browser, path = await subscribed(client, receiver, user)
    merchant, store = await merchant_with_store(client)
    await follow_store(client, user, store["id"])

    # the app was open near the store, reported its position, and was closed
    lat, lng = offset(store["lat"], store["lng"], north_m=150)
    ws = await open_ws(live_server, user.token)
    await ws.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
    await ws.send(json.dumps({"type": "ping"}))
    await recv_type(ws, "pong")
    await ws.close()
    await wait_until(lambda: _not(online(services, user.id)), timeout=10)

    # an offer with a description too long for one push message (4 KiB): cut to fit
    offer = await create_offer(client, merchant, store["id"], radius_m=500, description="🍵" * 1000)
    (msg,) = await arrivals(receiver, path)
    assert msg.headers["content-encoding"] == "aes128gcm"
    assert 0 < int(msg.headers["ttl"]) <= 30 * 60  # no longer than the offer lives
    assert len(msg.body) <= 4096
    check_vapid(msg.headers["authorization"], public_key, receiver.base)
    frame = browser.decrypt(msg.body)
    assert set(frame) == {"id", "type", "data"} and frame["type"] == "offer"
    event_key(frame["id"])  # a real event id (the history's), not a made-up one
    data = frame["data"]
    assert data["id"] == offer["id"] and data["title"] == offer["title"] and data["store"]["id"] == store["id"]
    assert 140 < data["distance_m"] < 160
    assert data["description"].startswith("🍵" * 100) and data["description"].endswith("…")

    # the same event is in the user's history: the app opening later replays it once
    history = await services.redis.xrange(event_history(user.id))
    assert [eid for eid, _ in history][-1] == frame["id"]

    # a mention in someone's post
    author = await register(client)
    resp = await client.post("/v1/posts", json={"text": f"coffee with @{user.username}"}, headers=author.headers)
    assert resp.status_code == 201, resp.text
    got = await arrivals(receiver, path, 2)
    mention = browser.decrypt(got[1].body)
    assert mention["type"] == "notification" and mention["data"]["kind"] == "mention"
    assert mention["data"]["post"]["id"] == resp.json()["id"] and mention["data"]["actors"][0]["id"] == author.id
    check_vapid(got[1].headers["authorization"], public_key, receiver.base)


async def test_an_open_socket_gets_the_event_and_no_push(client, services, receiver, live_server):
    user = await register(client)
    _browser, path = await subscribed(client, receiver, user)
    _quiet_browser, quiet_path = await subscribed(client, receiver, await register(client))
    ws = await open_ws(live_server, user.token)
    await wait_until(lambda: _all(online(services, user.id)), timeout=10)
    fan = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=fan.headers)).status_code == 204
    assert (await recv_type(ws, "notification", timeout=10))["data"]["kind"] == "follow"
    # a later push to another (offline) user proves the worker ran past this event
    other = (await services.db.push_subscriptions.find_one({"endpoint": receiver.base + quiet_path}))["user_id"]
    assert (await client.post(f"/v1/users/{other}/follow", headers=fan.headers)).status_code == 204
    await arrivals(receiver, quiet_path)
    assert receiver.at(path) == []
    await ws.close()


async def test_gone_subscription_is_dropped(client, services, receiver):
    user = await register(client)
    _browser, path = await subscribed(client, receiver, user)
    receiver.script(path, (410, {}))
    fan = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=fan.headers)).status_code == 204
    await arrivals(receiver, path)

    async def dropped():
        return await services.db.push_subscriptions.count_documents({"user_id": ObjectId(user.id)}) == 0

    assert await wait_until(dropped, timeout=10)


async def test_busy_push_service_is_retried_after_retry_after(client, services, receiver):
    user = await register(client)
    browser, path = await subscribed(client, receiver, user)
    receiver.script(path, (429, {"Retry-After": "1"}), (503, {"Retry-After": "1"}), (201, {}))
    fan = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=fan.headers)).status_code == 204
    first, second, third = await arrivals(receiver, path, 3, timeout=30)
    frames = [browser.decrypt(m.body) for m in (first, second, third)]
    assert frames[0] == frames[1] == frames[2] and frames[0]["data"]["kind"] == "follow"
    assert second.at - first.at >= 0.9 and third.at - second.at >= 0.9  # Retry-After honoured
    assert int(third.headers["ttl"]) <= int(first.headers["ttl"])
    assert await services.db.push_subscriptions.count_documents({"user_id": ObjectId(user.id)}) == 1


async def test_likes_are_not_pushed(client, services, receiver):
    """Only the contract's kinds wake a phone: a like is not pushed, a comment is."""
    user = await register(client)
    browser, path = await subscribed(client, receiver, user)
    resp = await client.post("/v1/posts", json={"text": "my lunch"}, headers=user.headers)
    post_id = resp.json()["id"]
    fan = await register(client)
    assert (await client.post(f"/v1/posts/{post_id}/like", headers=fan.headers)).status_code == 200
    resp = await client.post(f"/v1/posts/{post_id}/comments", json={"text": "looks good"}, headers=fan.headers)
    assert resp.status_code == 201, resp.text
    (msg,) = await arrivals(receiver, path)
    frame = browser.decrypt(msg.body)
    assert frame["data"]["kind"] == "comment"  # the like before it was never sent


async def _not(value):
    return not any(await value)


async def _all(value):
    return all(await value)


async def test_signing_out_ends_the_devices_pushes(client, services, receiver):
    """A subscription lasts as long as the session that made it: after logout the next event is not
    sent, and the subscription is deleted instead."""
    user = await register(client)
    _browser, path = await subscribed(client, receiver, user)
    second = await client.post("/v1/auth/login", json={"username": user.username, "password": "password123"})
    other_browser, other_path = await subscribed(client, receiver, type(user)(
        user.id, user.username, second.json()["token"], user.role, user.user))
    assert (await client.post("/v1/auth/logout", headers=user.headers)).status_code == 204
    fan = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=fan.headers)).status_code == 204
    # the session still signed in gets it, in the same delivery the ended one is dropped
    (msg,) = await arrivals(receiver, other_path)
    assert other_browser.decrypt(msg.body)["data"]["kind"] == "follow"
    assert receiver.at(path) == []
    left = [d["endpoint"] async for d in services.db.push_subscriptions.find({"user_id": ObjectId(user.id)})]
    assert left == [receiver.base + other_path]


def test_a_push_services_retry_after_is_read_or_ignored_never_raised():
    from push.sender import retry_after_s

    assert retry_after_s("120") == 120.0 and retry_after_s(" 7 ") == 7.0
    assert retry_after_s(None) is None and retry_after_s("") is None
    for odd in ("²", "١٢", "soon", "-5", "1e3"):  # a digit int/float cannot read, words: unreadable
        assert retry_after_s(odd) is None, odd
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # an HTTP date in the past


async def test_a_suspended_account_is_pushed_nothing_until_lifted(client, services, receiver):
    """Suspension keeps the account's tokens (and so its subscriptions) but closes its sockets:
    no push reaches it either while it lasts; lifted, the same subscription is used again."""
    from moderation.users import moderate_user
    from solomo.accounts import Principal
    from tests.support import make_account

    user, fan, other = await register(client), await register(client), await register(client)
    mod = await make_account(services, "moderator")
    moderator = Principal(ObjectId(mod.id), mod.username, mod.username, "moderator")
    browser, path = await subscribed(client, receiver, user)
    _, witness = await subscribed(client, receiver, other)
    await moderate_user(services, moderator, ObjectId(user.id), "suspend", "spam")
    for target in (user, other):  # the same kind of event for both: the witness's shows it went out
        assert (await client.post(f"/v1/users/{target.id}/follow", headers=fan.headers)).status_code == 204
    await arrivals(receiver, witness)
    assert receiver.at(path) == []
    assert await services.db.push_subscriptions.count_documents({"user_id": ObjectId(user.id)}) == 1  # kept
    await moderate_user(services, moderator, ObjectId(user.id), "unsuspend", "appeal")
    late = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=late.headers)).status_code == 204
    (msg,) = await arrivals(receiver, path)
    assert browser.decrypt(msg.body)["data"]["kind"] == "follow"
