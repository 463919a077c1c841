"""compose.yaml and the Dockerfile, checked without a Docker engine: the Compose Specification
schema, and cross-checks against the code (settings, modules, queues, command-line options)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest
import yaml

from solomo.core.serving import UVICORN_FLAGS, WS_MAX_MESSAGE_BYTES
from solomo.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"


def check_jsonschema() -> str:
    exe = Path(sys.executable).with_name("check-jsonschema")
    found = str(exe) if exe.exists() else shutil.which("check-jsonschema")
    assert found, "check-jsonschema is in the dev extra"
    return found


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_compose_matches_the_specification(tmp_path):
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    # the validator really checks: an unknown key in a service is refused
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["api"]["replicaz"] = 2
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(broken))
    assert validate(bad).returncode != 0


def test_expected_services(services):
    assert {"mongo", "redis", "api", "worker", "beat"} <= set(services)
    assert services["mongo"]["image"].split(":")[0] == "mongo"
    assert services["redis"]["image"].split(":")[0] == "redis"
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("api", "worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["mongo"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        assert services[name]["image"] == services["api"]["image"]


def test_mongo_is_a_replica_set_initiated_by_its_healthcheck(services):
    mongo = services["mongo"]
    command = mongo["command"]
    rs_name = command[command.index("--replSet") + 1]
    port = command[command.index("--port") + 1]
    check = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate(" in check and f"_id: '{rs_name}'" in check and "isWritablePrimary" in check
    member = re.search(r"host: '([^']+)'", check)
    assert member, check
    url = urlsplit(services["api"]["environment"]["SOLOMO_MONGO_URL"])
    # clients reach the member under the name the replica set advertises
    assert url.netloc == member.group(1) == f"mongo:{port}"
    assert parse_qs(url.query)["replicaSet"] == [rs_name]


def test_every_solomo_variable_is_a_setting(services):
    fields = set(Settings.model_fields)
    prefix = Settings.model_config["env_prefix"]
    seen = set()
    for name, service in services.items():
        for key in service.get("environment") or {}:
            if key.startswith(prefix):
                assert key[len(prefix):].lower() in fields, f"{name}: {key} is not a Settings field"
                seen.add(key)
    assert {"SOLOMO_MONGO_URL", "SOLOMO_REDIS_URL", "SOLOMO_BROKER_URL", "SOLOMO_SECRET_KEY"} <= seen
    env = services["api"]["environment"]
    # the secret key has no default in compose: `docker compose up` refuses to start without one
    assert re.fullmatch(r"\$\{SOLOMO_SECRET_KEY:\?.+\}", env["SOLOMO_SECRET_KEY"])
    assert urlsplit(env["SOLOMO_REDIS_URL"]).path != urlsplit(env["SOLOMO_BROKER_URL"]).path  # data db != broker db
    loaded = Settings(**{k[len(prefix):].lower(): v for k, v in env.items() if k != "SOLOMO_SECRET_KEY"})
    assert not loaded.uses_embedded


def test_api_command_is_a_valid_uvicorn_invocation(services):
    import uvicorn

    command = services["api"]["command"]
    assert command[0] == "uvicorn"
    params = uvicorn.main.make_context("uvicorn", command[1:]).params
    assert params["app"] == "solomo.asgi:app" and params["ws"] == "websockets-sansio"
    # the same flags as every other start (solomo.core.serving): 64 KiB messages, enforced by uvicorn
    flags = uvicorn.main.make_context("uvicorn", ["solomo.asgi:app", *UVICORN_FLAGS]).params
    assert {k: params[k] for k in ("ws", "ws_max_size", "access_log")} == {
        k: flags[k] for k in ("ws", "ws_max_size", "access_log")}
    assert params["ws_max_size"] == WS_MAX_MESSAGE_BYTES
    assert params["host"] == "0.0.0.0"
    module, _, attr = params["app"].partition(":")
    from starlette.applications import Starlette

    assert isinstance(getattr(importlib.import_module(module), attr), Starlette)
    check = " ".join(services["api"]["healthcheck"]["test"])
    assert f"127.0.0.1:{params['port']}/readyz" in check
    assert any(str(p).endswith(f":{params['port']}") for p in services["api"]["ports"])


def test_metrics_are_never_on_a_published_port(services):
    """The API serves /metrics on its internal port (exposed, not published); its public port has none
    (no token set), and no service publishes a metrics port."""
    import uvicorn

    api, worker = services["api"], services["worker"]
    port = str(api["environment"]["SOLOMO_METRICS_PORT"])
    assert port in [str(p) for p in api["expose"]]
    assert str(worker["environment"]["SOLOMO_WORKER_METRICS_PORT"]) in [str(p) for p in worker["expose"]]
    params = uvicorn.main.make_context("uvicorn", api["command"][1:]).params
    assert int(port) != params["port"]
    for name, service in services.items():
        assert "SOLOMO_METRICS_TOKEN" not in (service.get("environment") or {}), name
        published = [str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])]
        assert port not in published and "9100" not in published, name
    loaded = Settings(**{k[len("SOLOMO_"):].lower(): v for k, v in api["environment"].items()
                         if k != "SOLOMO_SECRET_KEY"})
    assert loaded.metrics_port == int(port)


def _celery_params(command: list[str]) -> tuple[str, dict[str, Any]]:
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery

    assert command[0] == "celery" and command[1] == "-A"
    module = importlib.import_module(command[2])
    from celery import Celery

    assert isinstance(module.app, Celery)
    ctx = celery.make_context("celery", command[1:4])
    ctx.obj = CLIContext(app=module.app, no_color=True, workdir=None, quiet=True)
    sub = celery.get_command(ctx, command[3])
    assert sub is not None, command[3]
    return command[3], sub.make_context(command[3], command[4:], parent=ctx).params


def test_worker_and_beat_commands(services):
    from workers.app import app

    name, params = _celery_params(services["worker"]["command"])
    assert name == "worker"
    declared = {q.name for q in app.conf.task_queues}
    assert set(params["queues"]) == declared  # consumes every queue the app routes to
    name, params = _celery_params(services["beat"]["command"])
    assert name == "beat" and str(params["schedule"]).startswith("/tmp/")  # writable for a non-root user
    assert app.conf.beat_schedule
    with pytest.raises(click.UsageError):  # the parse really checks options
        _celery_params(["celery", "-A", "workers.app", "worker", "--no-such-option"])


def test_dockerfile_cmd_matches_compose(services):
    steps = dockerfile_instructions()
    cmds = [json.loads(rest) for word, rest in steps if word == "CMD"]  # exec form only
    assert cmds == [services["api"]["command"]]
    assert not [w for w, _ in steps if w == "ENTRYPOINT"]  # compose commands replace CMD as a whole
    base = next(rest for word, rest in steps if word == "FROM")
    assert re.match(r"python:3\.1[1-9]", base)
    expose = {rest for word, rest in steps if word == "EXPOSE"}
    assert expose == {"8000"}
    assert any(word == "USER" and rest != "root" for word, rest in steps)
    health = next(rest for word, rest in steps if word == "HEALTHCHECK")
    assert "/readyz" in health


def test_prometheus_multiprocess_dir_is_fresh_per_container(services):
    steps = dockerfile_instructions()
    env = " ".join(rest for word, rest in steps if word == "ENV")
    match = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", env)
    assert match
    for name in ("api", "worker", "beat"):
        assert any(t.split(":")[0] == match.group(1) for t in services[name]["tmpfs"]), name


def test_dockerignore_keeps_the_context_small():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".solomo", "tests"} <= ignored
    copied = {rest.split()[0] for word, rest in dockerfile_instructions() if word == "COPY"}
    assert not copied & ignored
    for package in ("solomo", "checkins", "feed", "geo", "offers", "moderation", "workers"):
        assert package in copied, package


def test_every_uvicorn_start_in_the_code_uses_the_shared_flags():
    """Whoever starts uvicorn (dev server, tests, benchmarks) passes ``UVICORN_FLAGS``, so no
    process serves sockets with uvicorn's 16 MiB default message size."""
    starts = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts or ".solomo" in path.parts:
            continue
        text = path.read_text()
        for match in re.finditer(r'"-m",\s*"uvicorn"', text):
            starts.append(path.relative_to(ROOT))
            call = text[match.end():match.end() + 300]
            assert "*UVICORN_FLAGS" in call, f"{path.relative_to(ROOT)}: uvicorn started without UVICORN_FLAGS"
    assert len(starts) >= 4, starts
