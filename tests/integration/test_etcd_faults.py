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
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.api_http import Server
from tests.integration.etcd_cluster import APIServerProcess, EtcdCluster, api_servers, needs_etcd
from tests.integration.etcd_register import RegisterLoad
from tests.integration.etcd_writes import WRITES, Watcher, Writer, verify
from tinykube.testing_linearize import OK
from tinykube.testing_linearize import check as check_linearizable

pytestmark = needs_etcd


Cluster = tuple[EtcdCluster, list[APIServerProcess], list[Server]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with api_servers(tmp_path_factory.mktemp("faults")) as started:
        yield started


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


def test_sigkill_of_an_etcd_member(cluster: Cluster) -> None:
    etcd, _, servers = cluster

    def kill_member() -> None:
        os.kill(etcd.members[0].process.pid, signal.SIGKILL)
        etcd.members[0].process.wait(timeout=10)
    writers, watcher = _run_fault(servers, servers[1], "m-", kill_member)
    verify(servers[1], writers, [watcher], "m-")
    assert sum(len(w.acks) for w in writers) >= WRITES  # the load went on through the fault


def test_sigkill_of_an_api_server(cluster: Cluster) -> None:
    _, processes, servers = cluster

    def kill_server() -> None:
        os.kill(processes[1].process.pid, signal.SIGKILL)
        processes[1].process.wait(timeout=10)
    started = time.monotonic()
    writers, watcher = _run_fault(servers, servers[0], "s-", kill_server)
    assert time.monotonic() - started < 50
    assert sum(w.failed for w in writers[1::2]) > 0  # B's writers saw it go
    verify(servers[0], writers, [watcher], "s-")
    assert sum(len(w.acks) for w in writers) >= WRITES


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
