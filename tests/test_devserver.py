"""`make run`'s command: the whole service comes up on its own embedded servers, and Ctrl-C
stops every process it started. Also the CLI's user creation against running servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from solomo.embedded import free_port
from tests.support import ROOT


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.timeout(180)
def test_dev_starts_everything_and_stops_cleanly(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLOMO_")}
    api_port = free_port()
    env.update({
        "SOLOMO_DATA_DIR": str(tmp_path / "data"),
        "SOLOMO_EMBEDDED_MONGO_PORT": str(free_port()),
        "SOLOMO_EMBEDDED_REDIS_PORT": str(free_port()),
        "SOLOMO_PORT": str(api_port),
        "SOLOMO_PASSWORD_TIME_COST": "1",
        "SOLOMO_PASSWORD_MEMORY_KIB": "1024",
    })
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
