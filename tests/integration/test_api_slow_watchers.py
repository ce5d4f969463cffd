"""Slow watchers against a real `tinykube up`: memory stays bounded, they are cut off, their
memory is freed when they go, and a watcher that keeps up receives everything.

50 watches that never read (raw TLS sockets with a 4 KiB receive buffer) and one that reads
every event follow a ConfigMap of 64 KiB while it is updated 1,500 times (96 MiB of events).
The API server's RSS (VmRSS of /proc/PID/status) is read after every update.

Stated bounds, against the RSS once the watches are open:
- peak growth <= PEAK_GROWTH_MIB (160 MiB). Measured: ~107 MiB, most of it the watch history,
  which keeps at most 32 MiB of encoded objects (about 70 MiB in memory). Before the byte
  bounds: +231 MiB, and growing with every update.
- after the slow watchers leave <= LEFT_GROWTH_MIB (100 MiB), the history alone. Measured:
  ~81 MiB; before: +242 MiB, held after they left.
The reading watcher is never more than READER_LAG updates (1 MiB) behind, well within the 8 MiB
a watcher may fall behind, and must get all 1,500 events, in order, on one stream.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import Cluster
from tests.integration.api_http import Server

SLOW_WATCHERS = 50
UPDATES = 1_500
OBJECT_BYTES = 64 * 1024
READER_LAG = 16
PEAK_GROWTH_MIB = 160
LEFT_GROWTH_MIB = 100
PATH = "/api/v1/namespaces/default/configmaps"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def configmap(version: int) -> dict[str, object]:
    return {"metadata": {"name": "big"}, "data": {"blob": f"{version:08d}".ljust(OBJECT_BYTES,
                                                                                "x")}}


def watch_request(server: Server, rv: str) -> bytes:
    return (f"GET {PATH}?watch=1&resourceVersion={rv} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {server.token}\r\nAccept: application/json\r\n\r\n").encode()


@contextlib.contextmanager
def slow_watches(server: Server, rv: str) -> Iterator[list[ssl.SSLSocket]]:
    """Watches whose client never reads: the server's writes to them stall at once."""
    url = urllib.parse.urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    context = server.ssl_context()
    sockets = []
    try:
        for _ in range(SLOW_WATCHERS):
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.connect((url.hostname, url.port))
            sock = context.wrap_socket(raw, server_hostname=url.hostname)
            sock.sendall(watch_request(server, rv))
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def read_to_end(sock: ssl.SSLSocket, deadline: float) -> tuple[int, bool]:
    """(bytes read, whether the server ended the stream) by `deadline`."""
    received = 0
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except (ConnectionResetError, ssl.SSLError):
            return received, True  # cut off: the connection was aborted
        if not data:
            return received, True
        received += len(data)
    return received, False


class Reader(threading.Thread):
    """A watcher that reads every event and records each resourceVersion it sees."""

    def __init__(self, server: Server, rv: str) -> None:
        super().__init__(daemon=True)
        url = urllib.parse.urlsplit(server.url)
        assert url.hostname is not None and url.port is not None
        self.conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=60,
                                                context=server.ssl_context())
        self.conn.request("GET", f"{PATH}?watch=1&resourceVersion={rv}",
                          headers={"Authorization": f"Bearer {server.token}"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        self.versions: list[int] = []
        self.seen = threading.Condition()
        self.ended = False

    def run(self) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):  # the test is over
            self._read()
        with self.seen:
            self.ended = True
            self.seen.notify_all()

    def _read(self) -> None:
        for line in self.response:
            meta = orjson.loads(line)["object"]["metadata"]
            if meta["name"] != "big":
                continue  # the namespace's other ConfigMaps (kube-root-ca.crt)
            with self.seen:
                self.versions.append(int(meta["resourceVersion"]))
                self.seen.notify_all()

    def stop(self) -> None:
        assert self.conn.sock is not None
        self.conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread out of its read
        self.join(timeout=10)
        self.conn.close()

    def wait_for(self, count: int, timeout: float = 30) -> None:
        with self.seen:
            assert self.seen.wait_for(lambda: len(self.versions) >= count or self.ended,
                                      timeout), f"the reader got {len(self.versions)} events"


@pytest.mark.timeout(180)
def test_slow_watchers_are_cut_off_within_a_memory_bound(cluster: Cluster) -> None:
    server = Server(cluster.url, cluster.data_dir)
    pid = cluster.process.pid  # `tinykube up` serves the API in its own process
    conn = server.connect()
    created = conn.request("POST", PATH, configmap(0))
    assert created.status == 201, created.body
    rv = created.json()["metadata"]["resourceVersion"]
    reader = Reader(server, rv)
    reader.start()
    with slow_watches(server, rv) as sockets:
        baseline = rss_mib(pid)
        peak = baseline
        versions = []
        for i in range(1, UPDATES + 1):
            reader.wait_for(i - READER_LAG)  # the reader keeps up (at most 1 MiB behind)
            reply = conn.request("PUT", f"{PATH}/big", configmap(i))
            assert reply.status == 200, reply.body
            versions.append(int(reply.json()["metadata"]["resourceVersion"]))
            peak = max(peak, rss_mib(pid))
        reader.wait_for(UPDATES)
        assert reader.versions == versions, "the reader missed events or saw them twice"
        assert not reader.ended, "a watcher that keeps up must not be cut off"
        assert peak - baseline <= PEAK_GROWTH_MIB, f"peak RSS +{peak - baseline:.0f} MiB"

        deadline = time.monotonic() + 30
        endings = [read_to_end(sock, deadline) for sock in sockets]
        total = UPDATES * OBJECT_BYTES
        assert all(ended for _, ended in endings), "every slow watcher is cut off"
        assert max(received for received, _ in endings) < total // 4, "...long before the end"
    deadline = time.monotonic() + 30
    while (left := rss_mib(pid) - baseline) > LEFT_GROWTH_MIB and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left <= LEFT_GROWTH_MIB, f"RSS +{left:.0f} MiB after the slow watchers left"
    reader.stop()
    conn.close()
