"""API8 (security misconfiguration): nothing serves or works with the published default secret
key — the API and the Celery worker refuse to start with it, with a message that says what to do.
(``solomo dev`` generates a key of its own: tests/test_devserver.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from solomo.core.settings import InsecureSecretKey, Settings, load_settings
from solomo.embedded import free_port
from tests.support import ROOT


@pytest.mark.parametrize("key", ["", "   ", "dev-only-change-me"])
def test_the_api_refuses_to_start_with_the_default_key(key: str):
    from solomo.app import create_app

    with pytest.raises(InsecureSecretKey, match="SOLOMO_SECRET_KEY is not set"):
        create_app(Settings(secret_key=key))


def test_the_default_is_no_key(monkeypatch):
    from solomo.app import create_app

    monkeypatch.delenv("SOLOMO_SECRET_KEY")
    assert load_settings().secret_key == ""
    with pytest.raises(InsecureSecretKey, match="openssl rand"):
        create_app()
    create_app(Settings(secret_key="a key of its own"))  # any other key starts


def _without_key() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SOLOMO_SECRET_KEY"}
    env["SOLOMO_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: it must not get that far
    return env


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("what", "command"), [
    ("the API", ["-c", "import solomo.asgi"]),  # what `uvicorn solomo.asgi:app` imports first
    ("the Celery worker", ["-m", "celery", "-A", "workers.app", "worker", "--pool", "solo", "--loglevel", "WARNING"]),
])
def test_processes_refuse_to_start_without_a_key(what: str, command: list[str]):
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=_without_key(), capture_output=True,
                          text=True, timeout=50)
    assert done.returncode != 0, done.stdout + done.stderr
    assert f"{what}: SOLOMO_SECRET_KEY is not set" in done.stderr, done.stderr
