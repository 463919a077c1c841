"""compose.yaml and the Dockerfile, checked without a Docker engine: the Compose Specification
schema, and cross-checks against the code (settings, modules, queues, command-line options)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
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


APP_SERVICES = ("api", "worker", "beat")


def _command_value(command: list[str], flag: str) -> str:
    return str(command[command.index(flag) + 1])


def cluster_nodes(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items()
            if isinstance(s.get("command"), list) and "--cluster-enabled" in s["command"]}


def rs_members(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items()
            if isinstance(s.get("command"), list) and s["command"][:1] == ["mongod"]}


def job_script(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(str(c) for c in command)


def test_expected_services(services):
    assert {"broker", "redis-cluster-init", "mongo-init", *APP_SERVICES} <= set(services)
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["beat"]["deploy"]["replicas"] == 1  # exactly one scheduler
    for name in APP_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["mongo-init"]["condition"] == "service_completed_successfully", name
        assert deps["redis-cluster-init"]["condition"] == "service_completed_successfully", name
        assert deps["broker"]["condition"] == "service_healthy", name
        assert services[name]["image"] == services["api"]["image"]
    for name, service in services.items():  # every long-running service is checked or says why not
        if service.get("restart") != "no":
            assert "healthcheck" in service, name
    # the app waits for the servers only through the jobs, and each job waits for every server it forms
    init_deps = set(services["redis-cluster-init"]["depends_on"])
    assert init_deps == set(cluster_nodes(services))
    assert set(services["mongo-init"]["depends_on"]) == set(rs_members(services))
    for job in ("redis-cluster-init", "mongo-init"):
        assert services[job]["restart"] == "no", job
        assert all(d["condition"] == "service_healthy" for d in services[job]["depends_on"].values()), job


def test_redis_cluster_of_six_nodes_formed_once(services):
    nodes = cluster_nodes(services)
    assert len(nodes) == 6
    for name, node in nodes.items():
        command = node["command"]
        assert command[0] == "redis-server" and node["image"].split(":")[0] == "redis", name
        assert _command_value(command, "--cluster-enabled") == "yes", name
        assert _command_value(command, "--cluster-node-timeout") == "2000", name
        assert _command_value(command, "--appendonly") == "yes", name
        assert _command_value(command, "--cluster-announce-hostname") == name, name  # the slot map names services
        assert any(str(v).endswith(":/data") for v in node["volumes"]), name
    volumes = [v for node in nodes.values() for v in node["volumes"]]
    assert len(set(volumes)) == 6  # a volume per node
    script = job_script(services["redis-cluster-init"])
    assert "--cluster create" in script and "--cluster-yes" in script
    assert re.search(r"--cluster-replicas 1\b", script)  # three masters, one replica each
    hosts = re.search(r"for host in ([\w -]+);", script)
    assert hosts and hosts.group(1).split() == sorted(nodes)  # the job checks and joins every node
    # idempotent: a node that knows another node or serves a slot means "formed", and the job stops
    assert "cluster_known_nodes:1" in script and "cluster_slots_assigned:0" in script
    assert script.index("exit 0") < script.index("--cluster create")


def test_broker_is_a_separate_plain_redis(services):
    broker = services["broker"]
    assert broker["image"].split(":")[0] == "redis"
    assert "--cluster-enabled" not in broker["command"]
    assert "broker" not in cluster_nodes(services)
    assert _command_value(broker["command"], "--maxmemory-policy") == "noeviction"  # never drop a task
    env = services["api"]["environment"]
    broker_url = urlsplit(env["SOLOMO_BROKER_URL"])
    data_url = urlsplit(env["SOLOMO_REDIS_URL"])
    assert broker_url.hostname == "broker" and broker_url.scheme == "redis"
    assert data_url.hostname in cluster_nodes(services)  # any node: the client finds the rest
    assert data_url.path in ("", "/0", "/")  # a cluster has database 0 only
    for name in APP_SERVICES:
        assert services[name]["environment"]["SOLOMO_BROKER_URL"] == env["SOLOMO_BROKER_URL"], name


def test_mongo_replica_set_of_three_members(services):
    members = rs_members(services)
    assert len(members) == 3
    names = {_command_value(m["command"], "--replSet") for m in members.values()}
    assert len(names) == 1
    rs_name = names.pop()
    for name, member in members.items():
        assert member["image"] == "mongo:6.0", name  # the embedded mongod the tests run is 6.0
        assert "--bind_ip_all" in member["command"], name
    script = job_script(services["mongo-init"])
    assert "rs.initiate(" in script and f"_id: '{rs_name}'" in script
    assert "NotYetInitialized" in script  # initiates only a set that does not exist yet
    hosts = re.findall(r"host: '([^']+)'", script)
    ports = {f"{name}:{_command_value(m['command'], '--port')}" for name, m in members.items()}
    assert sorted(hosts) == sorted(ports)
    timeout = re.search(r"electionTimeoutMillis: (\d+)", script)
    assert timeout and 1000 <= int(timeout.group(1)) <= 10000
    url = urlsplit(services["api"]["environment"]["SOLOMO_MONGO_URL"])
    # clients reach the members under the names the replica set advertises
    assert sorted(url.netloc.split(",")) == sorted(hosts)
    query = parse_qs(url.query)
    assert query["replicaSet"] == [rs_name]
    assert query["w"] == ["majority"] and query["retryWrites"] == ["true"]
    from pymongo.uri_parser import parse_uri

    parsed = parse_uri(url.geturl())  # the driver accepts it as it is
    assert len(parsed["nodelist"]) == 3
    assert {k.lower(): v for k, v in parsed["options"].items()} == {"replicaset": rs_name, "w": "majority",
                                                                     "retrywrites": True}


def test_every_solomo_variable_is_a_setting(services):
    fields = set(Settings.model_fields)
    prefix = Settings.model_config["env_prefix"]
    seen = set()
    for name, service in services.items():
        for key in service.get("environment") or {}:
            if key.startswith(prefix):
                assert key[len(prefix):].lower() in fields, f"{name}: {key} is not a Settings field"
                seen.add(key)
    assert {"SOLOMO_MONGO_URL", "SOLOMO_REDIS_URL", "SOLOMO_REDIS_CLUSTER", "SOLOMO_BROKER_URL",
            "SOLOMO_SECRET_KEY"} <= seen
    assert {"redis_cluster", "broker_url"} <= fields
    env = services["api"]["environment"]
    # the secret key has no default in compose: `docker compose up` refuses to start without one
    assert re.fullmatch(r"\$\{SOLOMO_SECRET_KEY:\?.+\}", env["SOLOMO_SECRET_KEY"])
    loaded = Settings(**{k[len(prefix):].lower(): v for k, v in env.items() if k != "SOLOMO_SECRET_KEY"})
    assert not loaded.uses_embedded
    assert loaded.model_dump()["redis_cluster"] is True
    assert loaded.effective_broker_url == env["SOLOMO_BROKER_URL"]
    assert urlsplit(loaded.effective_broker_url).hostname != urlsplit(loaded.effective_redis_url).hostname


def test_every_app_command_exists(services):
    """Each service running the app image starts a command the code has: uvicorn on the ASGI app,
    a Celery subcommand of ``workers.app``, or a subcommand of the ``solomo`` CLI."""
    import typer.main

    from solomo.cli import cli

    solomo_cli = typer.main.get_command(cli)
    subcommands = solomo_cli.commands  # a TyperGroup
    for name, service in services.items():
        if service.get("image") != services["api"]["image"]:
            continue
        command = service["command"]
        if command[0] == "celery":
            _celery_params(command)
        elif command[0] == "solomo":
            assert command[1] in subcommands, f"{name}: solomo has no subcommand {command[1]}"
        else:
            assert command[0] == "uvicorn", f"{name}: unknown command {command[0]}"
    assert {"dev", "seed", "users"} <= set(subcommands) and "beat" not in subcommands  # the check reads the CLI


def test_api_command_is_a_valid_uvicorn_invocation(services):
    import uvicorn

    command = services["api"]["command"]
    assert command[0] == "uvicorn"
    params = uvicorn.main.make_context("uvicorn", command[1:]).params
    assert params["app"] == "solomo.asgi:app" and params["ws"] == "websockets-sansio"
    # the same flags as every other start (solomo.core.serving): 64 KiB messages, enforced by uvicorn
    flags = uvicorn.main.make_context("uvicorn", ["solomo.asgi:app", *UVICORN_FLAGS]).params
    shared = ("http", "loop", "ws", "ws_max_size", "access_log")
    assert {k: params[k] for k in shared} == {k: flags[k] for k in shared}
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
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
    for package in packages:  # every package of the project (import-linter's list names them all)
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
