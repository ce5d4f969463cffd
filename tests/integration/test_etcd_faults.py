"""Faults under a bounded write load through both API servers on a 3-member etcd.

Four writers (two per API server) create and update ConfigMaps while a watcher follows them
through one server; in the middle an etcd member, then an API server, is killed with SIGKILL.
Afterwards no acknowledged write is lost, each writer's resourceVersions only go up, and the
watch stream, compared with the final state, is ordered, without duplicates and without gaps
(`tinykube.testing_watch`).

On a cluster of its own, four clients get, put and compare-and-swap one ConfigMap through both
servers while the etcd leader, then an API server, is killed; the history of every call and
answer (and of every call left unanswered) must be linearizable (`tinykube.testing_linearize`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.client
import math
import os
import random
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.api_http import Connection, Reply, Server
from tests.integration.etcd_cluster import (
    APIServerProcess,
    EtcdCluster,
    needs_etcd,
    start_apiserver,
    start_etcd,
)
from tinykube.testing import free_port
from tinykube.testing_linearize import CONFLICT, OK, Operation
from tinykube.testing_linearize import check as check_linearizable
from tinykube.testing_watch import Delivered, check

pytestmark = needs_etcd
NAMESPACE_PATH = "/api/v1/namespaces/default/configmaps"
WRITES = 40  # per writer


Cluster = tuple[EtcdCluster, list[APIServerProcess], list[Server]]


@contextlib.contextmanager
def _cluster(tmp: Path) -> Iterator[Cluster]:
    """A 3-member etcd and two API servers on it (the first one `tinykube up --store`)."""
    etcd = start_etcd(tmp)
    started: list[APIServerProcess] = []
    try:
        data = tmp / "data"
        started.append(start_apiserver(etcd.url, data, free_port(udp=False), first=True,
                                       log=tmp / "a.log"))
        started.append(start_apiserver(etcd.url, data, free_port(udp=False), first=False,
                                       log=tmp / "b.log"))
        yield etcd, started, [Server(s.url, data) for s in started]
    finally:
        for server in started:
            server.stop()
        etcd.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with _cluster(tmp_path_factory.mktemp("faults")) as started:
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


REGISTER = f"{NAMESPACE_PATH}/register"
REQUEST_TIMEOUT = 10.0  # seconds a client waits for an answer before it counts as none
MAX_OPERATIONS = 400  # per client, a bound on the load whatever the pace


class RegisterClient(threading.Thread):
    """Gets, puts and compare-and-swaps one ConfigMap's value `v`, recording each operation.

    A put is an update without resourceVersion; a cas is an update with the resourceVersion the
    client last saw with the value it expects (every write puts a new value, so a value names
    one revision and the revision comparison is a value comparison). An update without an
    answer (dropped connection, timeout, 5xx) is left unanswered: it may or may not have taken
    effect. A refused connection never reached a server and an unanswered get constrains
    nothing, so neither is recorded. After a connection fails the client goes on through the
    next server, as a client given several servers does.
    """

    def __init__(self, client: int, servers: list[Server], clock: Callable[[], float],
                 answered: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.client, self.servers, self.clock, self.answered = client, servers, clock, answered
        self.home = client % len(servers)
        self.stop = threading.Event()
        self.history: list[Operation] = []
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.rng = random.Random(client)

    def run(self) -> None:
        known: tuple[str, str] | None = None  # (value, resourceVersion) last seen
        conn: Connection | None = None
        for n in range(MAX_OPERATIONS):
            if self.stop.is_set():
                break
            kind = self.rng.choice(("get", "put", "cas")) if known else "get"
            value, expect = f"c{self.client}-{n}", known[0] if kind == "cas" and known else None
            meta = {"name": "register"} | (
                {"resourceVersion": known[1]} if kind == "cas" and known else {})
            conn = conn or self.servers[self.home].connect(timeout=REQUEST_TIMEOUT)
            call = self.clock()
            try:
                reply: Reply | None = conn.request("GET", REGISTER) if kind == "get" else \
                    conn.request("PUT", REGISTER, {"metadata": meta, "data": {"v": value}})
            except ConnectionRefusedError:
                reply, kind = None, "refused"
            except (OSError, http.client.HTTPException):
                reply = None
            ret = self.clock()
            if reply is None or reply.status >= 500:
                conn.close()
                conn, self.home = None, (self.home + 1) % len(self.servers)
            if (seen := self._record(kind, value, expect, call, ret, reply)) is not None:
                known = seen
        if conn is not None:
            conn.close()

    def _record(self, kind: str, value: str, expect: str | None, call: float, ret: float,
                reply: Reply | None) -> tuple[str, str] | None:
        """Adds the operation to the history; returns the (value, resourceVersion) it saw."""
        status = reply.status if reply is not None else 0
        self.outcomes[f"{kind} {status or 'no answer'}"] += 1
        if reply is None or status >= 500:
            if kind in ("put", "cas"):
                self.history.append(Operation(self.client, call, math.inf, kind, value, expect))
            return None
        self.answered()
        arg = None if kind == "get" else value
        if status == 409 and kind == "cas":
            self.history.append(Operation(self.client, call, ret, kind, arg, expect, CONFLICT))
            return None
        if status != 200:  # anything else is a defect the test reports by its outcome
            return None
        meta, data = reply.json()["metadata"], reply.json()["data"]
        self.history.append(Operation(self.client, call, ret, kind, arg, expect,
                                      data["v"] if kind == "get" else OK))
        return data["v"], meta["resourceVersion"]


def test_a_register_stays_linearizable_through_sigkills(tmp_path: Path) -> None:
    with _cluster(tmp_path) as (etcd, processes, servers):
        create = servers[0].connect().request(
            "POST", NAMESPACE_PATH, {"metadata": {"name": "register"}, "data": {"v": "init"}})
        assert create.status == 201, create.body
        started = time.monotonic()

        def clock() -> float:
            return time.monotonic() - started
        answered = threading.Semaphore(0)
        clients = [RegisterClient(c, servers, clock, answered.release) for c in range(4)]
        for client in clients:
            client.start()

        def after_answers(count: int) -> float:
            for _ in range(count):
                assert answered.acquire(timeout=30)
            return clock()
        leader = etcd.leader()
        killed_etcd = after_answers(60)
        os.kill(leader.process.pid, signal.SIGKILL)
        leader.process.wait(timeout=10)
        killed_server = after_answers(60)
        os.kill(processes[1].process.pid, signal.SIGKILL)
        processes[1].process.wait(timeout=10)
        after_answers(60)
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=3 * REQUEST_TIMEOUT)
            assert not client.is_alive()
        call = clock()
        final = servers[0].connect().request("GET", REGISTER)
        assert final.status == 200, final.body
        last = Operation(99, call, clock(), "get", output=final.json()["data"]["v"])

    outcomes = sum((c.outcomes for c in clients), collections.Counter[str]())
    history = [op for c in clients for op in c.history] + [last]
    expected = {"200", "no answer", "500", "503", "504"}  # and a cas's 409
    assert all(o == "cas 409" or o.split(" ", 1)[1] in expected for o in outcomes), outcomes
    for fault in (killed_etcd, killed_server):  # writes were answered after each fault
        assert any(o.kind != "get" and o.output == OK and o.call > fault for o in history)
    assert check_linearizable(history, initial="init") == [], outcomes
    # the history constrains: the last read made stale is caught
    stale = [*history[:-1], dataclasses.replace(last, output="init")]
    assert check_linearizable(stale, initial="init")[0].startswith("not linearizable")
