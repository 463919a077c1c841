"""App lifespan hook (listed in ``solomo.app.LIFECYCLE_HOOKS``): the per-process hub.

The hub lives in ``app.state.services.extras["hub"]``; the WebSocket endpoint finds it there.
"""

from __future__ import annotations

from starlette.applications import Starlette

from solomo.realtime.hub import Hub


async def start(app: Starlette) -> None:
    from offers.arrival import deliver_on_arrival

    services = app.state.services
    hub = Hub(services)
    hub.location_listeners.append(deliver_on_arrival)
    await hub.start()
    services.extras["hub"] = hub


async def stop(app: Starlette) -> None:
    hub: Hub | None = app.state.services.extras.pop("hub", None)
    if hub is not None:
        await hub.stop()
