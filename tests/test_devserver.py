"""`make run`'s command: the whole service comes up on its own embedded servers, and Ctrl-C
stops every process it started. Also the CLI's user creation against running servers."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from solomo.core.settings import Settings, has_secret_key
from solomo.devserver import SECRET_KEY_FILE, dev_secret_key
from solomo.embedded import free_port
from tests.support import ROOT


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _dev_env(tmp_path: Path, api_port: int) -> dict[str, str]:
    """`make run`'s environment on ports and a data directory of this test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLOMO_")}
    env.update({
        "SOLOMO_DATA_DIR": str(tmp_path / "data"),
        "SOLOMO_EMBEDDED_MONGO_PORT": str(free_port()),
        "SOLOMO_EMBEDDED_REDIS_PORT": str(free_port()),
        "SOLOMO_PORT": str(api_port),
        "SOLOMO_PASSWORD_TIME_COST": "1",
        "SOLOMO_PASSWORD_MEMORY_KIB": "1024",
    })
    return env


@pytest.mark.timeout(180)
def test_dev_starts_everything_and_stops_cleanly(tmp_path: Path):
    api_port = free_port()
    env = _dev_env(tmp_path, api_port)
    proc = subprocess.Popen([sys.executable, "-m", "solomo.cli", "dev", "--no-seed"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    children: list[psutil.Process] = []
    try:
        ready = False
        while time.monotonic() - started < 60 and proc.poll() is None:
            children = _descendants(proc.pid) or children
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/readyz", timeout=1) as resp:
                    ready = resp.status == 200
            except OSError:
                pass
            if ready:
                break
            time.sleep(0.3)
        if not ready:
            if proc.poll() is None:
                proc.kill()
            out = proc.communicate(timeout=10)[0].decode(errors="replace")
            logs = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                           for p in sorted((tmp_path / "data").rglob("*.log")))
            raise AssertionError(f"readyz did not answer 200 within 60 s; exit {proc.returncode}:\n{out}{logs}")
        children = _descendants(proc.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "mongod" in names and "redis-server" in names and "celery" in names and "uvicorn" in names
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    # no SOLOMO_SECRET_KEY in its environment: it made one, for its owner's eyes only
    key_file = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 32


def test_dev_secret_key_is_made_once_and_reused(tmp_path: Path):
    settings = Settings(secret_key="", data_dir=tmp_path / "data")  # SOLOMO_SECRET_KEY unset
    key = dev_secret_key(settings)
    key_file = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == key and len(key) >= 32
    assert has_secret_key(Settings(secret_key=key))
    assert dev_secret_key(settings) == key  # the next start signs with the same key
    key_file.chmod(0o644)
    assert dev_secret_key(settings) == key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert dev_secret_key(Settings(data_dir=tmp_path / "other")) == "test-secret"  # SOLOMO_SECRET_KEY wins
    assert not (tmp_path / "other").exists()
    assert dev_secret_key(Settings(secret_key="", data_dir=tmp_path / "third")) != key  # one per data folder


@pytest.mark.timeout(240)
def test_dev_console_shows_the_seed_summary_not_its_requests(tmp_path: Path):
    api_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "solomo.cli", "dev"], cwd=ROOT, env=_dev_env(tmp_path, api_port),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # until the one line that matters
            lines.append(line.rstrip("\n"))
            if line.startswith("SoLoMo is up") or len(lines) > 200:
                break
        proc.send_signal(signal.SIGINT)
        lines += proc.communicate(timeout=60)[0].splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    up = next((i for i, line in enumerate(lines) if line.startswith("SoLoMo is up")), None)
    assert up is not None, "\n".join(lines)
    before = lines[:up]
    assert any(line.startswith("Seeded the demo city") for line in before), before
    # the start line, the summary (six lines) and nothing per request, JSON or otherwise
    assert len(before) <= 10, "\n".join(before)
    assert not [line for line in before if line.startswith("{") or "seed.local" in line], before
    assert proc.returncode == 0


class _Console(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_dev_console_is_plain_on_a_terminal_and_log_files_stay_json():
    from solomo.devserver import console_log_format

    assert console_log_format(Settings(), _Console(tty=True)) == "plain"
    assert console_log_format(Settings(), _Console(tty=False)) == "json"  # piped: for machines
    assert console_log_format(Settings(log_format="json"), _Console(tty=True)) == "json"  # SOLOMO_LOG_FORMAT wins
    assert Settings().log_format == "json"  # what the API and the worker write to their log files


async def test_cli_creates_a_moderator_that_can_log_in(client):
    name = f"mod_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    cmd = [sys.executable, "-m", "solomo.cli", "users", "create", "--username", name, "--password", "password123"]
    out = subprocess.run([*cmd, "--role", "moderator"], cwd=ROOT, env=dict(os.environ),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["role"] == "moderator"
    resp = await client.post("/v1/auth/login", json={"username": name, "password": "password123"})
    assert resp.status_code == 200 and resp.json()["user"]["role"] == "moderator"
    cmd[cmd.index(name)] = name.upper()
    dup = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert dup.returncode == 1 and "username_taken" in dup.stderr
