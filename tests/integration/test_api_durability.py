"""Durability of `tinykube up`: acknowledged writes survive SIGKILL and restarts.

A write is acknowledged (201) only after SQLite committed it, so killing the process with SIGKILL
in the middle of a stream of creates must lose none of the acknowledged ones; writes that were in
flight may or may not be there. The resourceVersion sequence continues after a restart, even
past objects that were created and then killed before their reply.
"""

from __future__ import annotations

import http.client
import signal
import threading
from pathlib import Path

import orjson

from tests.conftest import start_cluster
from tests.integration.api_http import Server, names_and_versions

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
WRITERS = 4
ACKS_BEFORE_KILL = 400
FLAGS = ("--no-dns", "--no-proxy")


class WriteStream:
    """Threads that create ConfigMaps as fast as the server answers, recording each ack."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.acked: dict[str, int] = {}  # "default/<name>" -> resourceVersion in the 201
        self.enough = threading.Event()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._write, args=(n,), daemon=True)
                         for n in range(WRITERS)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)

    def _write(self, writer: int) -> None:
        conn = self.server.connect()
        try:
            for index in range(1_000_000):
                name = f"w{writer}-{index}"
                try:
                    reply = conn.request("POST", CONFIGMAPS, {
                        "metadata": {"name": name}, "data": {"index": str(index)}})
                except (OSError, http.client.HTTPException):
                    return  # the server was killed; this write was never acknowledged
                self._record(name, reply.status, reply.body)
        finally:
            conn.close()

    def _record(self, name: str, status: int, body: bytes) -> None:
        with self._lock:
            if status != 201:
                self.failures.append(f"{name}: {status} {body[:200]!r}")
                self.enough.set()
                return
            self.acked[f"default/{name}"] = int(orjson.loads(body)["metadata"]["resourceVersion"])
            if len(self.acked) >= ACKS_BEFORE_KILL:
                self.enough.set()


def test_sigkill_during_writes_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_cluster(data_dir, *FLAGS)
    stream = WriteStream(Server(first.url, data_dir))
    stream.start()
    try:
        assert stream.enough.wait(timeout=60), "the writers made no progress"
        first.process.send_signal(signal.SIGKILL)  # while the writers are still sending
        assert first.process.wait(timeout=20) == -signal.SIGKILL
    finally:
        first.stop()
        stream.join()
    assert stream.failures == []
    acked = dict(stream.acked)
    assert len(acked) >= ACKS_BEFORE_KILL

    second = start_cluster(data_dir, *FLAGS)
    try:
        conn = Server(second.url, data_dir).connect()
        stored = names_and_versions(conn, CONFIGMAPS)
        lost = sorted(set(acked) - set(stored))
        assert lost == [], f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
        assert {name: int(stored[name]) for name in acked} == acked

        highest = max(int(rv) for rv in stored.values())
        reply = conn.request("POST", CONFIGMAPS, {"metadata": {"name": "after-restart"}})
        assert reply.status == 201, reply.body
        assert int(reply.json()["metadata"]["resourceVersion"]) > highest
        conn.close()
    finally:
        assert second.stop() == 0


def test_restart_after_sigterm_keeps_all_objects(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_cluster(data_dir, *FLAGS)
    conn = Server(first.url, data_dir).connect()
    try:
        created = [conn.request("POST", CONFIGMAPS, {"metadata": {"name": f"keep-{n}"},
                                                     "data": {"n": str(n)}})
                   for n in range(3)]
        service = conn.request("POST", "/api/v1/namespaces/default/services", {
            "metadata": {"name": "kept"}, "spec": {"ports": [{"port": 80}]}})
        assert [r.status for r in created] == [201, 201, 201] and service.status == 201
        before = {path: names_and_versions(conn, path)
                  for path in (CONFIGMAPS, "/api/v1/namespaces/default/services")}
    finally:
        conn.close()
        assert first.stop(signal.SIGTERM) == 0

    second = start_cluster(data_dir, *FLAGS)
    conn = Server(second.url, data_dir).connect()
    try:
        for path, objects in before.items():
            after = names_and_versions(conn, path)
            # The controllers may have touched the objects since; none may be gone or go back.
            assert set(objects) <= set(after), path
            assert all(int(after[name]) >= int(rv) for name, rv in objects.items()), path
        kept = conn.request("GET", "/api/v1/namespaces/default/services/kept").json()
        assert kept["metadata"]["uid"] == service.json()["metadata"]["uid"]
        assert kept["spec"]["clusterIP"] == service.json()["spec"]["clusterIP"]
        for reply in created:
            name = reply.json()["metadata"]["name"]
            again = conn.request("GET", f"{CONFIGMAPS}/{name}").json()
            assert again == reply.json()
    finally:
        conn.close()
        assert second.stop(signal.SIGTERM) == 0
