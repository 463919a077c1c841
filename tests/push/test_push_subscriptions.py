"""Web Push subscriptions: the key, storing, bounds, and refusals decided before anything is stored."""

from __future__ import annotations

import base64
import os
import socket
import uuid

import pytest
from bson import ObjectId

from tests.push.receiver import Browser, Receiver, unb64url
from tests.support import register, wait_until

pytestmark = pytest.mark.usefixtures("celery_worker")


def endpoint(receiver: Receiver, name: str = "") -> str:
    return f"{receiver.base}/push/{name or uuid.uuid4().hex}"


async def test_key_is_a_p256_point_and_stable(client):
    user = await register(client)
    assert (await client.get("/v1/push/key")).status_code == 401
    first = (await client.get("/v1/push/key", headers=user.headers)).json()["public_key"]
    again = (await client.get("/v1/push/key", headers=user.headers)).json()["public_key"]
    raw = unb64url(first)
    assert first == again and "=" not in first and len(raw) == 65 and raw[0] == 4


async def test_subscribe_unsubscribe_and_move(client, services, receiver):
    a, b = await register(client), await register(client)
    url = endpoint(receiver)
    body = {"endpoint": url, "keys": Browser().keys(), "expirationTime": None}
    resp = await client.post("/v1/push/subscriptions", json=body, headers=a.headers)
    assert resp.status_code == 201, resp.text
    doc = await services.db.push_subscriptions.find_one({"endpoint": url})
    assert doc["user_id"] == ObjectId(a.id)
    # the same browser, another account signed in: the endpoint moves
    assert (await client.post("/v1/push/subscriptions", json=body, headers=b.headers)).status_code == 201
    assert await services.db.push_subscriptions.count_documents({"endpoint": url}) == 1
    assert (await services.db.push_subscriptions.find_one({"endpoint": url}))["user_id"] == ObjectId(b.id)
    # a's unsubscribe does not touch b's subscription
    resp = await client.request("DELETE", "/v1/push/subscriptions", json={"endpoint": url}, headers=a.headers)
    assert resp.status_code == 204
    assert await services.db.push_subscriptions.count_documents({"endpoint": url}) == 1
    for _ in range(2):  # idempotent
        resp = await client.request("DELETE", "/v1/push/subscriptions", json={"endpoint": url}, headers=b.headers)
        assert resp.status_code == 204
    assert await services.db.push_subscriptions.count_documents({"endpoint": url}) == 0


async def test_subscriptions_per_user_are_bounded(client, services, receiver):
    user = await register(client)
    limit = services.settings.push_max_subscriptions
    urls = [endpoint(receiver) for _ in range(limit + 2)]
    for url in urls:
        resp = await client.post("/v1/push/subscriptions", json={"endpoint": url, "keys": Browser().keys()},
                                 headers=user.headers)
        assert resp.status_code == 201, resp.text
    kept = {d["endpoint"] async for d in services.db.push_subscriptions.find({"user_id": ObjectId(user.id)})}
    assert kept == set(urls[2:])  # the newest ones; the oldest were replaced


@pytest.mark.parametrize("bad", [
    {"p256dh": base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()},  # not on the curve
    {"p256dh": base64.urlsafe_b64encode(b"\x02" + os.urandom(32)).rstrip(b"=").decode()},  # compressed
    {"p256dh": "not base64!"},
    {"auth": base64.urlsafe_b64encode(os.urandom(15)).rstrip(b"=").decode()},  # 15 bytes
    {"auth": "%%%%"},
])
async def test_bad_keys_are_refused(client, services, receiver, bad):
    user = await register(client)
    url = endpoint(receiver)
    keys = {**Browser().keys(), **bad}
    resp = await client.post("/v1/push/subscriptions", json={"endpoint": url, "keys": keys}, headers=user.headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_keys", resp.text
    assert await services.db.push_subscriptions.count_documents({"endpoint": url}) == 0


@pytest.fixture(scope="module")
def trap():
    """A loopback port NOT in the allow-list, with a listener that counts connections: nothing may
    ever reach it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


def refused_endpoints(trap_port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{trap_port}/push/x",  # loopback, not allow-listed
        f"https://127.0.0.1:{trap_port}/push/x",
        "https://127.0.0.1/push/x",
        "https://10.1.2.3/push", "https://172.16.0.9/push", "https://192.168.1.20/push",  # private
        "https://169.254.169.254/latest/meta-data", "https://[fe80::1]/push",  # link-local
        "https://100.64.0.1/push",  # shared address space
        "https://[::1]/push", "https://[::ffff:10.0.0.1]/push", "https://[fd00::1]/push",
        "https://224.0.0.1/push", "https://240.0.0.1/push", "https://0.0.0.0/push",  # multicast, reserved
        "https://2130706433/push", "https://0x7f.1/push", "https://0177.0.0.1/push", "https://127.1/push",
        "https://localhost/push", "https://push.localhost/x", "https://printer.local/x", "https://db.internal/x",
        "https://intranet/x", "https://1.0.0.10.in-addr.arpa/x",
        "http://fcm.googleapis.com/fcm/send/abc",  # public, but not https
        "https://fcm.googleapis.com:8443/fcm/send/abc",  # not the https port
        "https://user:pw@fcm.googleapis.com/fcm/send/abc",
        "ftp://fcm.googleapis.com/x", "https:///x", "https://fcm.googleapis.com\\@10.0.0.1/x",
        "https://fcm.googleapis.com/" + "a" * 1100,
    ]


async def test_refusals_are_decided_before_anything_is_stored(client, services, receiver, trap):
    user = await register(client)
    browser = Browser()
    port = trap.getsockname()[1]
    for url in refused_endpoints(port):
        resp = await client.post("/v1/push/subscriptions", json={"endpoint": url, "keys": browser.keys()},
                                 headers=user.headers)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_endpoint", (url, resp.text)
    assert await services.db.push_subscriptions.count_documents({"user_id": ObjectId(user.id)}) == 0
    # a public push service's https endpoint is accepted (stored, never contacted by this test: the
    # user has no event to receive)
    ok = "https://fcm.googleapis.com/fcm/send/" + uuid.uuid4().hex
    resp = await client.post("/v1/push/subscriptions", json={"endpoint": ok, "keys": browser.keys()},
                             headers=user.headers)
    assert resp.status_code == 201, resp.text
    await client.request("DELETE", "/v1/push/subscriptions", json={"endpoint": ok}, headers=user.headers)

    # the user's only subscription is the allow-listed receiver: an event for them reaches it, and
    # in the same delivery nothing went to the trap (no subscription of it exists to send to)
    sentinel = endpoint(receiver)
    resp = await client.post("/v1/push/subscriptions", json={"endpoint": sentinel, "keys": browser.keys()},
                             headers=user.headers)
    assert resp.status_code == 201
    fan = await register(client)
    assert (await client.post(f"/v1/users/{user.id}/follow", headers=fan.headers)).status_code == 204
    got = await wait_until(lambda: _async(receiver.at(sentinel.removeprefix(receiver.base))), timeout=20)
    assert browser.decrypt(got[0].body)["data"]["kind"] == "follow"
    with pytest.raises(BlockingIOError):
        trap.accept()  # nobody ever connected


async def _async(value):
    return value


async def test_resolver_drops_internal_addresses():
    """A public-looking name that resolves to an internal address is not connected to (the sender's
    resolver); the allow-listed host:port is."""
    from push.sender import PublicOnlyResolver

    with pytest.raises(OSError):
        await PublicOnlyResolver(frozenset()).resolve("localhost", 443)
    found = await PublicOnlyResolver(frozenset({"localhost:8443"})).resolve("localhost", 8443)
    assert found and all(r["port"] == 8443 for r in found)
