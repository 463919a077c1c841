"""How every uvicorn process that serves SoLoMo is started, and the WebSocket message cap.

``UVICORN_FLAGS`` go into every command that starts uvicorn (``solomo/devserver.py``, the test
``LiveServer``, the benchmarks); ``compose.yaml`` and the ``Dockerfile`` spell the same flags
(``tests/test_compose.py`` checks them against this module). ``--ws-max-size`` makes uvicorn's
WebSocket parser refuse a larger frame from its header (close 1009) instead of buffering up to
its 16 MiB default; the session checks the same cap again for a server started without it.
"""

from __future__ import annotations

from typing import Final

WS_MAX_MESSAGE_BYTES: Final = 64 * 1024
"""The largest client message a socket accepts (contract: "Limits on sockets")."""

UVICORN_FLAGS: Final = ("--ws", "websockets-sansio", "--ws-max-size", str(WS_MAX_MESSAGE_BYTES), "--no-access-log")
"""The flags every uvicorn start of an app shares (after the app, host and port)."""
