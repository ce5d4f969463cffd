"""Faults under a bounded write load through both API servers on a 3-member etcd.

Four writers (two per API server) create and update ConfigMaps while a watcher follows them
through one server; in the middle an etcd member, then an API server, is killed with SIGKILL.
Afterwards no acknowledged write is lost, each writer's resourceVersions only go up, and the
watch stream, compared with the final state, is ordered, without duplicates and without gaps
(`tinykube.testing_watch`).

On a cluster of its own, four clients get, put and compare-and-swap one ConfigMap through both
servers while the etcd leader, then an API server, is killed; the history of every call and
answer (and of every call left unanswered) must be linearizable (`tinykube.testing_linearize`,
`etcd_register`).
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.api_http import Server
from tests.integration.etcd_cluster import APIServerProcess, EtcdCluster, api_servers, needs_etcd
from tests.integration.etcd_register import NAMESPACE_PATH, RegisterLoad
from tinykube.testing_linearize import OK
from tinykube.testing_linearize import check as check_linearizable
from tinykube.testing_watch import Delivered, check

pytestmark = needs_etcd
WRITES = 40  # per writer


Cluster = tuple[EtcdCluster, list[APIServerProcess], list[Server]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with api_servers(tmp_path_factory.mktemp("faults")) as started:
        yield started


class Watcher(threading.Thread):
    """A watch of the ConfigMaps through one server, kept until it has seen `until`."""

    def __init__(self, server: Server, prefix: str) -> None:
        super().__init__(daemon=True)
        self.server, self.prefix = server, prefix
        conn = server.connect()
        listed = conn.request("GET", NAMESPACE_PATH).json()
        self.start_rv = int(listed["metadata"]["resourceVersion"])
        self.events: list[Delivered] = []
        self.until: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        parsed = urllib.parse.urlsplit(self.server.url)
        assert parsed.hostname and parsed.port
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=30,
                                           context=self.server.ssl_context())
        try:
            conn.request("GET", f"{NAMESPACE_PATH}?watch=1&resourceVersion={self.start_rv}",
                         headers={"Authorization": f"Bearer {self.server.token}"})
            response = conn.getresponse()
            assert response.status == 200
            while line := response.readline():
                event = orjson.loads(line)
                meta = event["object"]["metadata"]
                rv = int(meta["resourceVersion"])
                if meta["name"].startswith(self.prefix):
                    self.events.append(Delivered(event["type"], meta["name"], rv))
                if self.until is not None and rv >= self.until:
                    return
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            conn.close()


class Writer(threading.Thread):
    """Creates then updates ConfigMaps through one server; records what was acknowledged."""

    def __init__(self, server: Server, prefix: str, progress: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.server, self.prefix, self.progress = server, prefix, progress
        self.acked: list[tuple[str, int]] = []
        self.failed = 0

    def _send(self, conn: Any, method: str, path: str, body: dict[str, Any]) -> int | None:
        try:
            reply = conn.request(method, path, body)
        except (OSError, http.client.HTTPException):
            self.failed += 1
            return None
        if reply.status >= 300:
            self.failed += 1
            return None
        return int(reply.json()["metadata"]["resourceVersion"])

    def run(self) -> None:
        conn = self.server.connect()
        for i in range(WRITES):
            name = f"{self.prefix}{i % 10}"
            body = {"metadata": {"name": name}, "data": {"i": str(i)}}
            if i < 10:
                rv = self._send(conn, "POST", NAMESPACE_PATH, body)
            else:
                rv = self._send(conn, "PUT", f"{NAMESPACE_PATH}/{name}", body)
            if rv is None:
                conn.close()
                conn = self.server.connect()
            else:
                self.acked.append((name, rv))
            self.progress()


def _run_fault(servers: list[Server], watch_on: Server, prefix: str,
               fault: Callable[[], None]) -> tuple[list[Writer], Watcher]:
    watcher = Watcher(watch_on, prefix)
    watcher.start()
    done = threading.Semaphore(0)
    writers = [Writer(servers[w % len(servers)], f"{prefix}{w}-", done.release)
               for w in range(4)]
    for writer in writers:
        writer.start()
    for _ in range(WRITES):  # a quarter of the load, then the fault
        assert done.acquire(timeout=30)
    fault()
    for writer in writers:
        writer.join(timeout=50)
        assert not writer.is_alive()
    return writers, watcher


def _verify(watch_on: Server, writers: list[Writer], watcher: Watcher, prefix: str) -> None:
    conn = watch_on.connect()
    listed = conn.request("GET", NAMESPACE_PATH).json()  # a quorum read
    final = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"])
             for i in listed["items"] if i["metadata"]["name"].startswith(prefix)}
    watcher.until = int(listed["metadata"]["resourceVersion"])
    sentinel = conn.request("POST", NAMESPACE_PATH, {"metadata": {"name": f"end-{prefix}0"}})
    assert sentinel.status == 201
    watcher.join(timeout=20)
    assert watcher.error is None and not watcher.is_alive()
    acked = [a for writer in writers for a in writer.acked]
    for writer in writers:  # each client's versions only go up
        versions = [rv for _, rv in writer.acked]
        assert versions == sorted(versions)
    for name, rv in acked:  # no acknowledged write lost
        assert final.get(name, 0) >= rv, (name, rv, final.get(name))
    assert check(watcher.events, acked, final, watcher.start_rv) == []
    assert len(acked) >= WRITES  # the load went on through the fault


def test_sigkill_of_an_etcd_member(cluster: Cluster) -> None:
    etcd, _, servers = cluster

    def kill_member() -> None:
        os.kill(etcd.members[0].process.pid, signal.SIGKILL)
        etcd.members[0].process.wait(timeout=10)
    writers, watcher = _run_fault(servers, servers[1], "m-", kill_member)
    _verify(servers[1], writers, watcher, "m-")


def test_sigkill_of_an_api_server(cluster: Cluster) -> None:
    _, processes, servers = cluster

    def kill_server() -> None:
        os.kill(processes[1].process.pid, signal.SIGKILL)
        processes[1].process.wait(timeout=10)
    started = time.monotonic()
    writers, watcher = _run_fault(servers, servers[0], "s-", kill_server)
    assert time.monotonic() - started < 50
    assert sum(w.failed for w in writers[1::2]) > 0  # B's writers saw it go
    _verify(servers[0], writers, watcher, "s-")


def test_a_register_stays_linearizable_through_sigkills(tmp_path: Path) -> None:
    with api_servers(tmp_path) as (etcd, processes, servers):
        load = RegisterLoad(servers)
        leader = etcd.leader()
        killed_etcd = load.after_answers(60)
        os.kill(leader.process.pid, signal.SIGKILL)
        leader.process.wait(timeout=10)
        killed_server = load.after_answers(60)
        os.kill(processes[1].process.pid, signal.SIGKILL)
        processes[1].process.wait(timeout=10)
        load.after_answers(60)
        history = load.finish(servers[0])
    load.check_outcomes()
    for fault in (killed_etcd, killed_server):  # writes were answered after each fault
        assert any(o.kind != "get" and o.output == OK and o.call > fault for o in history)
    assert check_linearizable(history, initial="init") == [], load.outcomes()
    # the history constrains: the last read made stale is caught
    stale = [*history[:-1], dataclasses.replace(history[-1], output="init")]
    assert check_linearizable(stale, initial="init")[0].startswith("not linearizable")
