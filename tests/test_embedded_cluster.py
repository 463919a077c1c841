"""EmbeddedRedisCluster: six real redis-server nodes formed into a Redis Cluster, a failover after
SIGKILL of a master, a killed node rejoining, and no process left behind."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError

from solomo.core.redisio import SlotTrustingCluster
from solomo.core.replicafence import FailoverSeen, ReplicaFence
from solomo.embedded import CLUSTER_SLOTS, EmbeddedError, EmbeddedRedisCluster, free_cluster_port

# Test scope: the tests below share one cluster and run in file order (the drill changes it, the last
# one stops it).


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedisCluster]:
    servers = EmbeddedRedisCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield servers
    finally:
        servers.stop()


def _role(port: int) -> str:
    with Redis(port=port, decode_responses=True) as node:
        return str(node.info("replication")["role"])


def test_cluster_forms_with_three_masters_and_three_replicas(cluster: EmbeddedRedisCluster):
    assert len(cluster.ports) == 6 and sorted(cluster.nodes) == sorted(cluster.ports)
    assert all(proc.alive() for proc in cluster.nodes.values())
    assert cluster.url == f"redis://127.0.0.1:{cluster.ports[0]}/0"
    roles = sorted(_role(port) for port in cluster.ports)
    assert roles == ["master"] * 3 + ["slave"] * 3
    with Redis(port=cluster.ports[0], decode_responses=True) as node:
        info = node.execute_command("CLUSTER", "INFO")
    assert "cluster_state:ok" in info and f"cluster_slots_assigned:{CLUSTER_SLOTS}" in info
    assert "cluster_known_nodes:6" in info
    assert len(cluster.masters()) == 3 and set(cluster.masters()) <= set(cluster.ports)


def test_keys_with_different_hash_tags_land_on_different_masters(cluster: EmbeddedRedisCluster):
    owners = {tag: cluster.master_port_for_key(f"feed:home:{{{tag}}}:1") for tag in ("a", "b", "c")}
    # {a}, {b}, {c} hash to slots 15495, 3300 and 7365: one in each third of the slot space
    assert len(set(owners.values())) == 3, owners
    assert cluster.master_port_for_key("feed:home:{a}:1") == cluster.master_port_for_key("events:{a}:99")
    client = RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    try:
        for tag, port in owners.items():
            client.set(f"k:{{{tag}}}", tag)
            with Redis(port=port, decode_responses=True) as master:  # the key is on that node itself
                assert master.execute_command("GET", f"k:{{{tag}}}") == tag
    finally:
        client.close()


async def test_a_script_goes_to_its_first_keys_slot_and_the_server_refuses_keys_of_two_slots(
        cluster: EmbeddedRedisCluster):
    """The data client (solomo.core.redisio.SlotTrustingCluster) does not hash every key of a script:
    the first key routes it, and a script whose keys span slots is still refused, by Redis."""
    client = SlotTrustingCluster.from_url(cluster.url, decode_responses=True)
    try:
        keys = [f"feed:home:{{b}}:{i}" for i in range(3)]
        assert await client._determine_slot("EVAL", "return 1", 3, *keys, "x") == client.keyslot(keys[0])
        async with client.pipeline(transaction=False) as pipe:
            pipe.eval("for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end return #KEYS", 3, *keys, "v")
            assert await pipe.execute() == [3]
        with Redis(port=cluster.master_port_for_key(keys[0]), decode_responses=True) as master:
            assert [master.execute_command("GET", k) for k in keys] == ["v", "v", "v"]  # on the tag's master
        with pytest.raises(ClusterCrossSlotError):  # redis-py's name for the server's CROSSSLOT reply
            await client.eval("return redis.call('SET', KEYS[2], 'w')", 2, "feed:home:{b}:9", "feed:home:{c}:9")
        assert await client.get("feed:home:{c}:9") is None  # nothing written by the refused script
    finally:
        await client.aclose()


async def test_a_fan_out_fence_waits_for_every_masters_replica_and_refuses_a_lagging_one(
        cluster: EmbeddedRedisCluster):
    """solomo.core.replicafence: before a fan-out checkpoint, each master of the reader buckets has
    its writes on a replica (INCR then WAIT on one connection); a replica that does not acknowledge
    (stopped here), or masters that changed since the run began, refuse the checkpoint."""
    client = SlotTrustingCluster.from_url(cluster.url, decode_responses=True)
    try:
        fence = await ReplicaFence.start(client)
        assert len(fence.masters) == 3 and all(replicas == 1 for _, replicas, _ in fence.masters.values())
        await fence.confirm()
        master = int(next(iter(fence.masters)).rsplit(":", 1)[1])
        with Redis(port=master, decode_responses=True) as admin:
            replica = int(admin.execute_command("ROLE")[2][0][1])
        process = cluster.nodes[replica].process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)  # a replica that does not keep up
        try:
            with pytest.raises(FailoverSeen, match="acknowledged"):
                await fence.confirm()
        finally:
            os.kill(process.pid, signal.SIGCONT)
        await fence.confirm()  # caught up again
        moved = ReplicaFence(client, {**fence.masters, "127.0.0.1:1": next(iter(fence.masters.values()))})
        with pytest.raises(FailoverSeen, match="changed"):  # the run saw other masters than these
            await moved.confirm()
        single = await ReplicaFence.start(AsyncRedis(port=master))
        assert single.masters == {} and await single.confirm() is None  # a single Redis: nothing to wait for
    finally:
        await client.aclose()


def test_sigkill_of_a_master_fails_over_to_its_replica_and_it_rejoins(cluster: EmbeddedRedisCluster):
    key = "drill:{a}"
    victim = cluster.master_port_for_key(key)
    client = RedisCluster(host="127.0.0.1", port=next(p for p in cluster.ports if p != victim),
                          decode_responses=True)
    try:
        client.set(key, "before")
        with Redis(port=victim) as master:
            assert master.wait(1, 5000) == 1  # the replica holds it before the master dies
        cluster.kill(victim)
        assert not cluster.nodes[victim].alive()
        cluster.wait_ok(30)  # bounded: raises when no replica took over
        successor = cluster.master_port_for_key(key)
        assert successor != victim and successor in cluster.masters() and len(cluster.masters()) == 3
        client.close()
        client = RedisCluster(host="127.0.0.1", port=successor, decode_responses=True)
        assert client.get(key) == "before"
        client.set(key, "after")
        assert client.get(key) == "after"

        cluster.restart(victim)
        cluster.wait_ok(30)
        assert _role(victim) == "slave"  # the old master came back as the new one's replica
        assert cluster.master_port_for_key(key) == successor
    finally:
        client.close()


def test_stop_leaves_no_process(cluster: EmbeddedRedisCluster):
    pids = [proc.process.pid for proc in cluster.nodes.values() if proc.process is not None]
    assert len(pids) == 6 and all(psutil.pid_exists(pid) for pid in pids)
    cluster.stop()
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_a_failed_start_stops_the_nodes_it_started(tmp_path: Path):
    ports = [free_cluster_port() for _ in range(5)]
    busy = free_cluster_port(set(ports) | {p + 10000 for p in ports})
    with socket.socket() as holder:  # another program holds the last node's port
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        servers = EmbeddedRedisCluster(tmp_path, ports=[*ports, busy])
        with pytest.raises(EmbeddedError, match=f":{busy} exited"):
            servers.start(timeout=10)
    started = [proc.process.pid for proc in servers.nodes.values() if proc.process is not None]
    assert len(started) == 6
    assert not any(psutil.pid_exists(pid) for pid in started)
