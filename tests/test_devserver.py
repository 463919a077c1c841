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
from redis import Redis
from redis.cluster import RedisCluster

from solomo.core.settings import Settings, has_secret_key
from solomo.devserver import SECRET_KEY_FILE, dev_secret_key
from solomo.embedded import EmbeddedRedis, EmbeddedRedisCluster, _redis_ping, free_port, port_open
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
        "SOLOMO_EMBEDDED_BROKER_PORT": str(free_port()),
        "SOLOMO_PORT": str(api_port),
        "SOLOMO_PASSWORD_TIME_COST": "1",
        "SOLOMO_PASSWORD_MEMORY_KIB": "1024",
    })
    return env


def _start_dev(tmp_path: Path, env: dict[str, str], api_port: int) -> subprocess.Popen[bytes]:
    """`solomo dev --no-seed` with ``env``, once its API answers /readyz (else an error with its logs)."""
    proc = subprocess.Popen([sys.executable, "-m", "solomo.cli", "dev", "--no-seed"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while time.monotonic() - started < 60 and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.3)
    if proc.poll() is None:
        proc.kill()
    out = proc.communicate(timeout=10)[0].decode(errors="replace")
    logs = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                   for p in sorted((tmp_path / "data").rglob("*.log")))
    raise AssertionError(f"readyz did not answer 200 within 60 s; exit {proc.returncode}:\n{out}{logs}")


def _stop_dev(proc: subprocess.Popen[bytes], children: list[psutil.Process]) -> str:
    """Ctrl-C: a clean stop (exit 0) that leaves none of ``children`` running; returns its output."""
    try:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    return out


def _redis_servers(children: list[psutil.Process]) -> dict[int, Path]:
    """The redis-servers among ``children``: port → working folder (its --dir). A redis-server sets its
    process title to ``redis-server 127.0.0.1:<port>``."""
    found: dict[int, Path] = {}
    for child in children:
        title = " ".join(child.cmdline())
        if "redis-server" in title:
            found[int(title.split(":")[-1].split()[0])] = Path(child.cwd())
    return found


@pytest.mark.timeout(180)
def test_dev_starts_everything_and_stops_cleanly(tmp_path: Path):
    api_port = free_port()
    env = _dev_env(tmp_path, api_port)
    proc = _start_dev(tmp_path, env, api_port)
    try:
        children = _descendants(proc.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "mongod" in names and "celery" in names and "uvicorn" in names
        # the data Redis and the broker's own Redis, each in its own folder
        servers = _redis_servers(children)
        assert servers == {int(env["SOLOMO_EMBEDDED_REDIS_PORT"]): tmp_path / "data" / "redis",
                           int(env["SOLOMO_EMBEDDED_BROKER_PORT"]): tmp_path / "data" / "broker"}, servers
    finally:
        _stop_dev(proc, _descendants(proc.pid) or [])
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
    # A free port can be taken by another process of the run (the suite runs on two workers)
    # before `solomo dev` checks it; it then refuses to start: try again on fresh ports (bounded).
    for attempt in range(3):
        proc, lines = _run_dev_console(tmp_path / f"try{attempt}")
        if not any("busy: is another `make run` going?" in line for line in lines):
            break
    up = next((i for i, line in enumerate(lines) if line.startswith("SoLoMo is up")), None)
    assert up is not None, "\n".join(lines)
    before = lines[:up]
    assert any(line.startswith("Seeded the demo city") for line in before), before
    # the start line, the summary (six lines) and nothing per request, JSON or otherwise
    assert len(before) <= 10, "\n".join(before)
    assert not [line for line in before if line.startswith("{") or "seed.local" in line], before
    assert proc.returncode == 0


def _run_dev_console(tmp_path: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`solomo dev` with the seed, on ports of its own: its console up to "SoLoMo is up", then stopped."""
    api_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "solomo.cli", "dev"], cwd=ROOT, env=_dev_env(tmp_path, api_port),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
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
    return proc, lines


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


def _register(api_port: int) -> None:
    """An account made through the API and read back with its token: the data Redis is in use."""
    body = json.dumps({"username": f"dev_{os.getpid()}", "password": "password123"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{api_port}/v1/auth/register", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = json.loads(resp.read())["token"]
    me = urllib.request.Request(f"http://127.0.0.1:{api_port}/v1/me", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(me, timeout=10) as resp:
        assert resp.status == 200


def _broker_bound(port: int) -> bool:
    """Whether the worker has declared its queues on the Redis at ``port`` (kombu's binding keys)."""
    with Redis(port=port) as broker:
        for _ in range(120):  # bounded: the worker may come up after the API
            if broker.keys("_kombu.binding.*"):
                return True
            time.sleep(0.25)
    return False


@pytest.mark.timeout(180)
def test_dev_with_an_external_data_redis_embeds_mongod_and_the_broker(tmp_path: Path):
    external = EmbeddedRedis(tmp_path / "external", free_port(), persistent=False)
    external.start()
    try:
        api_port = free_port()
        env = {**_dev_env(tmp_path, api_port), "SOLOMO_REDIS_URL": external.url}
        proc = _start_dev(tmp_path, env, api_port)
        try:
            children = _descendants(proc.pid)
            assert any("mongod" in " ".join(c.cmdline()) for c in children)
            servers = _redis_servers(children)  # the broker only: the data Redis is the external one
            assert servers == {int(env["SOLOMO_EMBEDDED_BROKER_PORT"]): tmp_path / "data" / "broker"}, servers
            assert not port_open(int(env["SOLOMO_EMBEDDED_REDIS_PORT"]))
            _register(api_port)
            assert _broker_bound(int(env["SOLOMO_EMBEDDED_BROKER_PORT"]))
            with Redis(port=external.port) as data:
                assert data.dbsize() > 0  # the API's data went there …
                assert not data.keys("_kombu*")  # … and none of the broker's
        finally:
            out = _stop_dev(proc, _descendants(proc.pid))
        assert "external Redis" in out.splitlines()[0], out
        assert external.proc.alive() and _redis_ping(external.port)  # not ours to stop
    finally:
        external.stop()


@pytest.mark.timeout(180)
def test_dev_against_a_redis_cluster_embeds_mongod_and_the_broker(tmp_path: Path):
    cluster = EmbeddedRedisCluster(tmp_path / "external").start()
    try:
        api_port = free_port()
        env = {**_dev_env(tmp_path, api_port), "SOLOMO_REDIS_CLUSTER": "true", "SOLOMO_REDIS_URL": cluster.url}
        proc = _start_dev(tmp_path, env, api_port)
        try:
            servers = _redis_servers(_descendants(proc.pid))
            assert servers == {int(env["SOLOMO_EMBEDDED_BROKER_PORT"]): tmp_path / "data" / "broker"}, servers
            _register(api_port)
            assert _broker_bound(int(env["SOLOMO_EMBEDDED_BROKER_PORT"]))
            client = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
            try:
                assert client.dbsize(target_nodes=RedisCluster.PRIMARIES) > 0
                assert not client.keys("_kombu*", target_nodes=RedisCluster.PRIMARIES)
            finally:
                client.close()
        finally:
            out = _stop_dev(proc, _descendants(proc.pid))
        assert "external Redis Cluster" in out.splitlines()[0], out
        assert all(node.alive() for node in cluster.nodes.values())  # not ours to stop
    finally:
        cluster.stop()


def test_each_server_without_a_url_is_embedded_and_the_broker_is_never_the_data_redis():
    everything = Settings(mongo_url=None, redis_url=None, broker_url=None, embedded_mongo_port=1,
                          embedded_redis_port=2, embedded_broker_port=3)
    assert everything.embedded_ports == (1, 2, 3) and everything.uses_embedded
    assert everything.effective_broker_url == "redis://127.0.0.1:3/0"
    cluster = everything.model_copy(update={"redis_url": "redis://127.0.0.1:7000/0", "redis_cluster": True})
    assert cluster.embedded_ports == (1, None, 3) and cluster.uses_embedded
    assert cluster.effective_broker_url == "redis://127.0.0.1:3/0"  # not db 1 of the data Redis
    external = cluster.model_copy(update={"mongo_url": "mongodb://db/", "broker_url": "redis://broker:6379/0"})
    assert external.embedded_ports == (None, None, None) and not external.uses_embedded
    assert external.effective_broker_url == "redis://broker:6379/0"
    with pytest.raises(ValueError, match="SOLOMO_REDIS_URL"):  # the embedded Redis is no cluster
        Settings(redis_url=None, redis_cluster=True)


def test_embedded_for_starts_only_what_does_not_answer(tmp_path: Path):
    from solomo.embedded import embedded_for

    running = EmbeddedRedis(tmp_path, free_port(), persistent=False)  # as a `make run` would have it
    running.start()
    try:
        broker_port = free_port()
        with embedded_for(tmp_path, mongo_port=None, redis_port=running.port, broker_port=broker_port) as urls:
            assert urls == {"redis_url": running.url, "broker_url": f"redis://127.0.0.1:{broker_port}/0"}
            assert _redis_ping(broker_port) and (tmp_path / "broker").is_dir()
        assert not _redis_ping(broker_port)  # started for the command, stopped after it
        assert running.proc.alive() and _redis_ping(running.port)  # found running: left alone
    finally:
        running.stop()
