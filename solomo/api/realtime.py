"""WebSocket ``/v1/ws?token=…[&last_event_id=…]``: the real-time channel (see solomo.realtime.session)."""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from solomo.core import closecodes as codes
from solomo.realtime.session import refuse, serve


async def ws_endpoint(ws: WebSocket) -> None:
    services = ws.app.state.services
    hub = services.extras.get("hub")
    if hub is None:  # the app runs without the real-time lifecycle hook
        await refuse(ws, codes.GOING_AWAY, "real time is not available")
        return
    await serve(ws, services, hub)


extra_routes: list[BaseRoute] = [WebSocketRoute("/v1/ws", ws_endpoint)]
