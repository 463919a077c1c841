"""One WebSocket session on ``/v1/ws``: authenticate, resume, then send events and read messages.

Order matters for "no gap, no duplicate" on resume: the connection joins the hub *parked*
before the history is read, so anything published from then on is captured; the replay sends
the history after ``last_event_id``; :meth:`Connection.go_live` then releases the parked frames
newer than the last replayed id (stream ids only grow, so anything older was in the replay).

Client messages: ``{"type": "ping"}`` → ``{"type": "pong"}``; ``{"type": "location", "lat", "lng"}``
stores the live position and runs the hub's location listeners (offers for late arrivals).
Anything else gets ``{"type": "error", "data": {"code", "message"}}``; floods are limited per socket
and, if they go on, closed with 4429. Location messages, which cost the most, have their own
tighter limit per socket (so per user at most ``ws_max_sockets_per_user`` times that); one over it
gets a ``rate_limited`` error and changes nothing. A message over 64 KiB closes the socket with
1009 (uvicorn's ``--ws-max-size`` refuses it first; this check covers a server started without).

Limits on the socket's life: its token is checked again right after it joins the hub, from
MongoDB (a suspension or logout that raced the handshake missed the pub/sub message meant for
it), then every ``settings.ws_recheck_s`` through the token cache (the hub's one schedule for all
its sockets, :mod:`solomo.realtime.rechecks`): expiry, revocation, deletion and suspension close
it (4401 or 4403) within that interval and a tick, even when the fast pub/sub message was lost.
Each socket takes one of its user's slots; the oldest beyond the cap closes with 4409.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal, cast

import orjson
from bson import ObjectId
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from geo.positions import forget as forget_position
from geo.positions import set_position
from solomo.accounts import hash_token
from solomo.api.models import Lat, Lng, StrictBody
from solomo.core import closecodes as codes
from solomo.core.errors import ApiError
from solomo.core.events import LAST_EVENT_KEY, event_key, frame
from solomo.core.keys import event_history as history_key
from solomo.core.metrics import EVENTS_DELIVERED, SOCKETS_CONNECTED
from solomo.core.services import Services
from solomo.core.serving import WS_MAX_MESSAGE_BYTES
from solomo.realtime.connection import Connection
from solomo.realtime.hub import Hub
from solomo.realtime.limits import TokenBucket
from solomo.realtime.rechecks import refusal, token_problem
from solomo.realtime.slots import new_slot

log = logging.getLogger("solomo.realtime")

MAX_MESSAGE_CHARS = 4096
RATE_PER_S = 10.0
BURST = 20
MAX_STRIKES = 20
"""Messages refused by the rate limit before the socket is closed with 4429."""
LOCATION_RATE_PER_S = 1.0
LOCATION_BURST = 5
REPLAY_PAGE = 100
PONG = '{"type":"pong"}'


class LocationMessage(StrictBody):
    type: Literal["location"]
    lat: Lat
    lng: Lng
    accuracy_m: float | None = None


def error_frame(code: str, message: str, details: list[Any] | None = None) -> str:
    data: dict[str, Any] = {"code": code, "message": message}
    if details:
        data["details"] = details
    return orjson.dumps({"type": "error", "data": data}).decode()


async def refuse(ws: WebSocket, code: int, reason: str) -> None:
    """Accept then close at once, so every client (browsers too) can read the close code."""
    await ws.accept()
    await ws.close(code, reason)


async def serve(ws: WebSocket, services: Services, hub: Hub) -> None:
    token = ws.query_params.get("token", "")
    last_event_id = ws.query_params.get("last_event_id") or None
    try:
        principal = await services.authenticator.principal_for_token(token)
    except ApiError as exc:
        await refuse(ws, *refusal(exc))
        return
    after = None
    if last_event_id is not None:
        try:
            after = event_key(last_event_id)
        except ValueError:
            await refuse(ws, codes.BAD_REQUEST, "last_event_id is not an event id")
            return

    # join the hub before the handshake completes: whatever is published once the client sees
    # the socket open is delivered (queued until the socket is started)
    conn = Connection(ws, principal.sid, services.settings.ws_queue_size, live=after is None,
                      slot=new_slot(hub.pid))
    conn.token_hash = hash_token(token)
    hub.add(conn)
    try:
        # from MongoDB: a suspension or logout between the check above and hub.add sent its
        # close command while this socket could not hear it
        problem = await token_problem(services, token, fresh=True)
        if problem is not None:
            hub.remove(conn)
            await refuse(ws, *problem)
            return
        await claim_slot(conn, hub)  # before the client sees it open: a later socket is newer
        await ws.accept()
    except BaseException:
        hub.remove(conn)
        with contextlib.suppress(Exception):
            await hub.release_slot(conn)
        raise
    SOCKETS_CONNECTED.inc()
    conn.start()
    reader = asyncio.create_task(read_messages(conn, services, hub), name=f"ws-read-{principal.sid}")
    hub.rechecks.watch(conn, token)
    try:
        if last_event_id is not None:
            last = await replay(conn, services, last_event_id)
            conn.go_live(event_key(last) if last else after)
        await conn.done.wait()
    except Exception as exc:
        log.warning("socket of %s failed: %s", principal.sid, exc)
        conn.finish(1011, "server error")
    finally:
        hub.remove(conn)
        hub.rechecks.forget(conn)
        SOCKETS_CONNECTED.dec()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        if conn.peer_closed:
            await conn.stop_sending()
        else:
            await conn.close()
        with contextlib.suppress(Exception):  # a slot left behind goes with its process or the cap
            await hub.release_slot(conn)
        if conn.close_code == codes.UNAUTHORIZED:  # its reader is done: no location comes after this
            await forget_if_deleted(services, conn.user_id)


async def forget_if_deleted(services: Services, user_id: str) -> None:
    """A socket closed because its token went: if that is because the account was deleted, its live
    position goes too. The erasure forgets the position once (``profiles.erasure``), but a socket
    that missed the close command (pub/sub is best effort) kept reading until its token's re-check,
    and a ``location`` it took meanwhile would stay, counted in offer targeting and audiences, for
    the position's lifetime. Read only on a 4401 close (a logout, a password change, a deletion)."""
    try:
        doc = await services.db.users.find_one({"_id": ObjectId(user_id)}, {"status": 1})
        if doc is None or doc.get("status") == "deleted":
            await forget_position(services.redis, user_id)
    except (PyMongoError, RedisError) as exc:  # the positions' expiry still takes it in time
        log.warning("could not check whether %s was deleted, to forget their position: %s", user_id, exc)


async def claim_slot(conn: Connection, hub: Hub) -> None:
    try:
        await hub.claim_slot(conn)
    except RedisError as exc:  # the cap waits for Redis; the socket itself works without it
        log.warning("could not count the socket of %s against its cap: %s", conn.user_id, exc)


async def replay(conn: Connection, services: Services, last_event_id: str) -> str | None:
    """Send the user's history after ``last_event_id``; returns the last id sent (or None)."""
    if event_key(last_event_id) == LAST_EVENT_KEY:
        return None  # nothing can follow it, and Redis refuses to read after it
    key = history_key(conn.user_id)
    start = "(" + last_event_id
    last: str | None = None
    while not conn.done.is_set():
        entries = cast(list[tuple[str, dict[str, str]]],
                       await services.redis.xrange(key, min=start, max="+", count=REPLAY_PAGE))
        for eid, fields in entries:
            await conn.send_wait(frame(eid, fields.get("type", ""), fields.get("data", "null")))
            EVENTS_DELIVERED.labels(type=fields.get("type", "") or "unknown").inc()
            last = eid
        if len(entries) < REPLAY_PAGE:
            break
        start = "(" + entries[-1][0]
    return last


async def read_messages(conn: Connection, services: Services, hub: Hub) -> None:
    bucket = TokenBucket(RATE_PER_S, BURST)
    locations = TokenBucket(LOCATION_RATE_PER_S, LOCATION_BURST)
    strikes = 0
    try:
        while not conn.done.is_set():
            message = await conn.ws.receive()
            if message["type"] == "websocket.disconnect":
                conn.peer_closed = True
                conn.finish(int(message.get("code") or 1005), "peer closed")
                return
            if too_big(message):
                conn.finish(codes.MESSAGE_TOO_BIG, f"messages are at most {WS_MAX_MESSAGE_BYTES} bytes")
                return
            if not bucket.take():
                strikes += 1
                if strikes == 1:
                    conn.send(error_frame("rate_limited", f"at most {RATE_PER_S:g} messages a second"))
                if strikes >= MAX_STRIKES:
                    conn.finish(codes.FLOODING, "too many messages")
                continue
            try:
                await handle(conn, services, hub, message.get("text"), locations)
            except (RedisError, PyMongoError) as exc:
                # A backing store hiccup fails this one message, never the reader: a reader that
                # died silently would leave an open socket nobody reads (and pongs never seen).
                log.warning("socket message failed for %s: %s", conn.user_id, exc)
                conn.send(error_frame("unavailable", "a backing service is unavailable; retry shortly"))
    except (WebSocketDisconnect, RuntimeError):
        conn.peer_closed = True
        conn.finish(1006, "peer gone")
    except Exception:
        log.exception("socket reader failed for %s", conn.user_id)
        conn.finish(1011, "internal error")


def too_big(message: Any) -> bool:
    data = message.get("bytes")
    if data is not None:
        return len(data) > WS_MAX_MESSAGE_BYTES
    text = message.get("text") or ""
    # a character is 1..4 bytes in UTF-8: encode only when the length alone does not decide
    return len(text) > WS_MAX_MESSAGE_BYTES or (
        len(text) * 4 > WS_MAX_MESSAGE_BYTES and len(text.encode()) > WS_MAX_MESSAGE_BYTES)


async def handle(conn: Connection, services: Services, hub: Hub, text: str | None, locations: TokenBucket) -> None:
    if text is None:
        conn.send(error_frame("bad_request", "send JSON text frames"))
        return
    if len(text) > MAX_MESSAGE_CHARS:
        conn.send(error_frame("payload_too_large", f"messages are at most {MAX_MESSAGE_CHARS} characters"))
        return
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        conn.send(error_frame("bad_request", "the message is not valid JSON"))
        return
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ping":
        conn.send(PONG)
    elif kind == "location":
        if locations.take():
            await on_location(conn, services, hub, message)
        else:
            conn.send(error_frame("rate_limited", f"at most {LOCATION_RATE_PER_S:g} location a second; "
                                                  "this one was ignored"))
    else:
        conn.send(error_frame("unknown_type", "known message types: ping, location"))


async def on_location(conn: Connection, services: Services, hub: Hub, message: dict[str, Any]) -> None:
    try:
        loc = LocationMessage.model_validate(message)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                   for e in exc.errors(include_url=False, include_input=False, include_context=False)]
        conn.send(error_frame("invalid", "location is not valid", details))
        return
    await set_position(services.redis, conn.user_id, loc.lat, loc.lng)
    for listener in hub.location_listeners:
        try:
            await listener(services, conn.user_id, loc.lat, loc.lng)
        except Exception as exc:  # a listener's failure must not drop the socket
            log.warning("location listener %s failed: %s", getattr(listener, "__name__", listener), exc)
