"""The embedded three-member replica set: it forms, writes reach a majority, and stop leaves no
process behind; the app's client writes with majority write concern and retryable writes."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from pymongo import MongoClient

from solomo.db import mongo_client
from solomo.embedded import EmbeddedError, EmbeddedMongoReplicaSet


def test_replica_set_forms_with_three_members_and_stops_cleanly():
    tmp = Path(tempfile.mkdtemp(prefix="solomo-rs-test-"))
    rs = EmbeddedMongoReplicaSet(tmp)
    try:
        rs.start()
        states = rs.states()
        assert sorted(states) == sorted(rs.ports) and len(set(rs.ports)) == 3
        assert sorted(states.values()) == ["PRIMARY", "SECONDARY", "SECONDARY"]
        assert rs.url == f"mongodb://127.0.0.1:{rs.ports[0]},127.0.0.1:{rs.ports[1]},127.0.0.1:{rs.ports[2]}" \
                         f"/?replicaSet={rs.name}"
        client: MongoClient[dict[str, object]] = MongoClient(rs.url, w=3, wtimeoutMS=20_000,
                                                             serverSelectionTimeoutMS=10_000)
        try:
            status = client.admin.command("replSetGetStatus")
            assert len(status["members"]) == 3
            config = client.admin.command("replSetGetConfig")["config"]
            assert config["settings"]["electionTimeoutMillis"] == 1000
            assert config["settings"]["heartbeatIntervalMillis"] == 500
            client.rs_test.t.insert_one({"on": "all three"})  # w=3: every member holds it
        finally:
            client.close()
        pids = [proc.process.pid for proc in rs.procs.values() if proc.process is not None]
        assert len(pids) == 3
    finally:
        rs.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    assert not [proc for proc in rs.procs.values() if proc.alive()]
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_failed_start_stops_what_it_started():
    tmp = Path(tempfile.mkdtemp(prefix="solomo-rs-test-"))
    rs = EmbeddedMongoReplicaSet(tmp)
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", rs.ports[2]))  # the third member cannot listen: it exits, the set cannot form
        taken.listen()
        with pytest.raises(EmbeddedError, match=str(rs.ports[2])):
            rs.start(timeout=20.0)
        assert len(rs.procs) == 3 and not [proc for proc in rs.procs.values() if proc.alive()]
    finally:
        taken.close()
        rs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_app_writes_with_majority_and_retryable_writes(settings):
    client = mongo_client(settings)
    assert client.write_concern.document == {"w": "majority", "j": True}
    assert client.options.retry_writes and client.options.retry_reads
    assert client.read_preference.mongos_mode == "primary"
