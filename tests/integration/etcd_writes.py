"""A bounded write load on ConfigMaps through several API servers, and what it must show
(the etcd fault and partition tests).

`Writer` creates then updates ConfigMaps through one server, recording each acknowledged write
(name, resourceVersion, when it was sent and answered); `Watcher` watches the ConfigMaps
through one server from the resourceVersion of a list; `Lister` makes consistent lists (no
resourceVersion) through one server, recording each answer. `verify` checks, against a final
quorum list: no acknowledged write lost, each writer's resourceVersions only rise, every
watcher's stream is ordered, without duplicate or gap, and agrees with the final state
(`tinykube.testing_watch`). `stale_lists` finds the lists that miss a write acknowledged before
they were sent: a consistent list is linearizable, so it holds every write answered before it
was called, at that write's version or a later one.

`WriteLoad` runs four writers (two per server), a watcher and a lister per server, until
stopped (each bounded in operations), on `time.monotonic`'s clock.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson

from tests.integration.api_http import Connection, Server
from tests.integration.etcd_register import NAMESPACE_PATH
from tinykube.testing_watch import Delivered, check

WRITES = 40  # per writer, the fault tests' load
FAILURE_PAUSE = 0.1  # seconds a writer or lister waits after a failed request (a client's)


@dataclasses.dataclass(frozen=True)
class Ack:
    name: str
    rv: int
    call: float
    ret: float


@dataclasses.dataclass(frozen=True)
class Listed:
    call: float
    ret: float
    status: int  # 0: no answer
    rv: int = 0
    items: dict[str, int] = dataclasses.field(default_factory=dict)


class Watcher(threading.Thread):
    """A watch of the ConfigMaps through one server, kept until it has seen `until`."""

    def __init__(self, server: Server, prefix: str) -> None:
        super().__init__(daemon=True)
        self.server, self.prefix = server, prefix
        conn = server.connect()
        listed = conn.request("GET", NAMESPACE_PATH).json()
        conn.close()
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
    """Creates ten ConfigMaps, then updates them in turn, `writes` requests in all (or until
    `stop`) through one server; records what was acknowledged."""

    def __init__(self, server: Server, prefix: str, progress: Callable[[], None] = lambda: None,
                 writes: int = WRITES, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.server, self.prefix, self.progress = server, prefix, progress
        self.writes, self.pause = writes, pause
        self.acks: list[Ack] = []
        self.failed = 0
        self.stop = threading.Event()

    @property
    def acked(self) -> list[tuple[str, int]]:
        return [(a.name, a.rv) for a in self.acks]

    def _send(self, conn: Connection, method: str, path: str, body: dict[str, Any]) -> int | None:
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
        for i in range(self.writes):
            if self.stop.is_set():
                break
            name = f"{self.prefix}{i % 10}"
            body = {"metadata": {"name": name}, "data": {"i": str(i)}}
            call = time.monotonic()
            if i < 10:
                rv = self._send(conn, "POST", NAMESPACE_PATH, body)
            else:
                rv = self._send(conn, "PUT", f"{NAMESPACE_PATH}/{name}", body)
            if rv is None:
                conn.close()
                conn = self.server.connect()
                time.sleep(FAILURE_PAUSE)
            else:
                self.acks.append(Ack(name, rv, call, time.monotonic()))
                time.sleep(self.pause)
            self.progress()
        conn.close()


class Lister(threading.Thread):
    """Consistent lists of the ConfigMaps through one server (at most `lists`, until `stop`),
    each recorded with the versions of the `prefix` ones."""

    def __init__(self, server: Server, prefix: str, lists: int = 300,
                 pause: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.server, self.prefix, self.lists, self.pause = server, prefix, lists, pause
        self.answers: list[Listed] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = self.server.connect(timeout=15)
        for _ in range(self.lists):
            if self.stop.is_set():
                break
            call = time.monotonic()
            try:
                reply = conn.request("GET", NAMESPACE_PATH)
            except (OSError, http.client.HTTPException):
                self.answers.append(Listed(call, time.monotonic(), 0))
                conn.close()
                conn = self.server.connect(timeout=15)
                time.sleep(FAILURE_PAUSE)
                continue
            ret = time.monotonic()
            if reply.status != 200:
                self.answers.append(Listed(call, ret, reply.status))
                time.sleep(FAILURE_PAUSE)
                continue
            doc = reply.json()
            items = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"])
                     for i in doc["items"] if i["metadata"]["name"].startswith(self.prefix)}
            self.answers.append(Listed(call, ret, 200, int(doc["metadata"]["resourceVersion"]),
                                       items))
            time.sleep(self.pause)
        conn.close()

    def outcomes(self) -> collections.Counter[int]:
        return collections.Counter(a.status for a in self.answers)


def stale_lists(lists: list[Listed], acks: list[Ack]) -> list[str]:
    """The answered lists that miss a write acknowledged before they were called."""
    problems = []
    for listed in (a for a in lists if a.status == 200):
        for ack in acks:
            if ack.ret < listed.call and listed.items.get(ack.name, 0) < ack.rv:
                problems.append(f"stale: a list at {listed.rv} called {listed.call:.3f} has "
                                f"{ack.name} at {listed.items.get(ack.name)}, acknowledged at "
                                f"{ack.rv} ({ack.ret:.3f})")
                break
    return problems


def verify(via: Server, writers: list[Writer], watchers: list[Watcher], prefix: str) -> None:
    """The checks of the module docstring, against a quorum list through `via`."""
    conn = via.connect()
    listed = conn.request("GET", NAMESPACE_PATH).json()  # a quorum read
    final = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"])
             for i in listed["items"] if i["metadata"]["name"].startswith(prefix)}
    for watcher in watchers:
        watcher.until = int(listed["metadata"]["resourceVersion"])
    sentinel = conn.request("POST", NAMESPACE_PATH, {"metadata": {"name": f"end-{prefix}0"}})
    assert sentinel.status == 201, sentinel.body
    conn.close()
    for watcher in watchers:
        watcher.join(timeout=20)
        assert watcher.error is None and not watcher.is_alive(), watcher.error
    acked = [a for writer in writers for a in writer.acked]
    for writer in writers:  # each client's versions only go up
        versions = [rv for _, rv in writer.acked]
        assert versions == sorted(versions)
    for name, rv in acked:  # no acknowledged write lost
        assert final.get(name, 0) >= rv, (name, rv, final.get(name))
    for watcher in watchers:
        assert check(watcher.events, acked, final, watcher.start_rv) == [], watcher.server.url


class WriteLoad:
    """Writers, watchers and listers through `servers` (see the module docstring)."""

    def __init__(self, servers: list[Server], prefix: str, writes: int = 400,
                 pause: float = 0.02) -> None:
        self.prefix = prefix
        self.watchers = [Watcher(s, prefix) for s in servers]
        self.writers = [Writer(servers[w % len(servers)], f"{prefix}{w}-", writes=writes,
                               pause=pause) for w in range(4)]
        self.listers = [Lister(s, prefix) for s in servers]
        for thread in [*self.watchers, *self.writers, *self.listers]:
            thread.start()

    def acks(self, since: float = 0.0, until: float = float("inf")) -> list[Ack]:
        return [a for w in self.writers for a in list(w.acks) if since < a.call
                and a.ret < until]

    def stop(self) -> None:
        for thread in [*self.writers, *self.listers]:
            thread.stop.set()
        for thread in [*self.writers, *self.listers]:
            thread.join(timeout=30)
            assert not thread.is_alive()
