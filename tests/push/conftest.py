from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.push.receiver import Receiver


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """The push service: on the loopback port tests/conftest.py allow-listed."""
    server = Receiver(int(os.environ["SOLOMO_TEST_PUSH_PORT"]))
    server.start()
    try:
        yield server
    finally:
        server.stop()
