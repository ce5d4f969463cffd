"""A single-key register under load through several API servers, recorded for
`tinykube.testing_linearize` (the etcd fault and partition tests).

`RegisterLoad(servers)` creates the ConfigMap `register` (value `init`) and starts four
`RegisterClient`s, two homed on each server; `after_answers(n)` waits until n more operations
were answered and returns the clock then (the test's fault times); `finish(via)` stops the
clients, adds one last read through `via` and returns the whole history.
"""

from __future__ import annotations

import collections
import http.client
import math
import random
import threading
import time
from collections.abc import Callable

from tests.integration.api_http import Connection, Reply, Server
from tinykube.testing_linearize import CONFLICT, OK, Operation

NAMESPACE_PATH = "/api/v1/namespaces/default/configmaps"
REGISTER = f"{NAMESPACE_PATH}/register"
REQUEST_TIMEOUT = 10.0  # seconds a client waits for an answer before it counts as none
MAX_OPERATIONS = 400  # per client, a bound on the load whatever the pace
# a member cut off from the others refuses a request carrying require-leader before running
# it, and the etcd store sends writes only to such retries (`store.etcd._with_leader`): a 500
# with these words did not take effect
NOT_RUN = b"etcdserver: no leader"


class RegisterClient(threading.Thread):
    """Gets, puts and compare-and-swaps one ConfigMap's value `v`, recording each operation.

    A put is an update without resourceVersion; a cas is an update with the resourceVersion the
    client last saw with the value it expects (every write puts a new value, so a value names
    one revision and the revision comparison is a value comparison). An update without an
    answer (dropped connection, timeout, 5xx) is left unanswered: it may or may not have taken
    effect, but for etcd's `no leader` refusal (NOT_RUN), which is no operation. A refused
    connection never reached a server and an unanswered get constrains nothing, so neither is
    recorded. After a connection fails the client goes on through the
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
        if status == 500 and NOT_RUN in reply.body:  # type: ignore[union-attr]
            return None  # refused before it ran: no operation
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


class RegisterLoad:
    """Four clients of the register through `servers`, on one clock."""

    def __init__(self, servers: list[Server], clients: int = 4) -> None:
        create = servers[0].connect().request(
            "POST", NAMESPACE_PATH, {"metadata": {"name": "register"}, "data": {"v": "init"}})
        assert create.status == 201, create.body
        self.started = time.monotonic()
        self._answered = threading.Semaphore(0)
        self.clients = [RegisterClient(c, servers, self.clock, self._answered.release)
                        for c in range(clients)]
        for client in self.clients:
            client.start()

    def clock(self) -> float:
        return time.monotonic() - self.started

    def after_answers(self, count: int, timeout: float = 30) -> float:
        """Wait for `count` more answered operations (each within `timeout`); the clock."""
        for _ in range(count):
            assert self._answered.acquire(timeout=timeout), self.outcomes()
        return self.clock()

    def after_writes(self, count: int, since: float, timeout: float = 90) -> float:
        """Wait until `count` writes called after `since` have succeeded (at most `timeout`
        seconds in all: a partition's election takes longer on a loaded machine); the clock."""
        deadline = time.monotonic() + timeout
        while self.writes_ok(since) < count:
            assert time.monotonic() < deadline, self.outcomes()
            self._answered.acquire(timeout=0.5)
        return self.clock()

    def writes_ok(self, since: float, until: float = math.inf) -> int:
        return sum(1 for c in self.clients for op in list(c.history)
                   if op.kind != "get" and op.output == OK and since < op.call
                   and op.ret < until)

    def finish(self, via: Server) -> list[Operation]:
        """Stop the clients; their history and a last read through `via`."""
        for client in self.clients:
            client.stop.set()
        for client in self.clients:
            client.join(timeout=3 * REQUEST_TIMEOUT)
            assert not client.is_alive()
        call = self.clock()
        final = via.connect().request("GET", REGISTER)
        deadline = time.monotonic() + 10
        while final.status == 500 and b"no leader" in final.body \
                and time.monotonic() < deadline:  # a member just back, no leader yet: never ran
            time.sleep(0.2)
            call = self.clock()
            final = via.connect().request("GET", REGISTER)
        assert final.status == 200, final.body
        last = Operation(99, call, self.clock(), "get", output=final.json()["data"]["v"])
        return [op for c in self.clients for op in c.history] + [last]

    def outcomes(self) -> collections.Counter[str]:
        return sum((c.outcomes for c in self.clients), collections.Counter[str]())

    def check_outcomes(self) -> None:
        """Every answer was one a register's client may get (a cas may also get 409)."""
        expected = {"200", "no answer", "500", "503", "504"}
        outcomes = self.outcomes()
        assert all(o == "cas 409" or o.split(" ", 1)[1] in expected for o in outcomes), outcomes
