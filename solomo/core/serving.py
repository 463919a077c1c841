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

UVICORN_FLAGS: Final = ("--http", "httptools", "--loop", "uvloop", "--ws", "websockets-sansio",
                        "--ws-max-size", str(WS_MAX_MESSAGE_BYTES), "--no-access-log")
"""The flags every uvicorn start of an app shares (after the app, host and port).

``--http httptools --loop uvloop`` are named, not left to uvicorn's ``auto``: ``auto`` takes them
when they are installed and falls back without a word to the pure-Python ``h11`` parser and
asyncio's own loop when they are not, which is what every process ran until the twenty-first
round of issue 14 (``docs/benchmarks.md``). Alternating the two on the same code and minutes,
requests a second: ``/healthz`` 6,465–6,526 → 12,166–17,226, a home page 1,962–1,984 →
2,479–2,918, the bare yardstick (served with these flags too) 6,684–6,899 → 20,613–24,284.
Named, a missing install fails the start instead of serving slower without a word."""
