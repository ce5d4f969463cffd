"""Lifecycle hooks: the three actions with kube's failure messages, and how the process worker
runs postStart (the container is not running until it returns; a failure kills it) and preStop
(within the grace period, before SIGTERM). Time is an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tinykube.kubelet import hooks, volumes
from tinykube.kubelet.process import ProcessRuntime
from tinykube.kubelet.worker import NodeContext

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}
CONTAINER = {"name": "c", "ports": [{"name": "web", "containerPort": 0}]}
WHERE = 'for Container "c" in Pod "p_ns(u1)" failed - error:'


class Clock:
    """Real time scaled down 100 times; the lengths asked for are kept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.gate: asyncio.Event | None = None  # when set, sleeps wait for it
        self.changed = asyncio.Event()  # a sleep began or the worker notified

    def notify(self, _pod: Any) -> None:
        self.changed.set()

    def now(self) -> float:
        return asyncio.get_running_loop().time() * 100

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.changed.set()
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(seconds / 100)


@pytest.fixture
async def http() -> AsyncIterator[tuple[int, list[str]]]:
    """A local HTTP server: 200 except for /bad (500); it keeps the request heads."""
    heads: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        heads.append(head)
        code = "500 Internal Server Error" if head.startswith("GET /bad ") else "200 OK"
        writer.write(f"HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], heads
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(("hook", "expected"), [
    ({"exec": {"command": ["true"]}}, None),
    ({"exec": {"command": ["sh", "-c", "echo out; exit 3"]}},
     f"Exec lifecycle hook ([sh -c echo out; exit 3]) {WHERE} command failed with exit code 3: "
     "out"),
    ({"httpGet": {"path": "/ok", "port": "PORT"}}, None),
    ({"httpGet": {"path": "/ok", "port": "web", "httpHeaders": [{"name": "X-A", "value": "b"}]}},
     None),
    ({"httpGet": {"path": "/bad", "port": "PORT"}},
     f"HTTP lifecycle hook (/bad) {WHERE} HTTP probe failed with statuscode: 500"),
    ({"httpGet": {"path": "/x", "port": "nope"}},
     f"HTTP lifecycle hook (/x) {WHERE} port 'nope' is not a port of container 'c'"),
    ({"sleep": {"seconds": 5}}, None),
    ({}, None),
], ids=["exec-ok", "exec-fails", "http-ok", "http-named-port-headers", "http-500",
        "http-unknown-port", "sleep", "none"])
async def test_run_hook(http: tuple[int, list[str]], hook: dict[str, Any],
                        expected: str | None) -> None:
    port, heads = http
    container = {**CONTAINER, "ports": [{"name": "web", "containerPort": port}]}
    if "httpGet" in hook and hook["httpGet"]["port"] == "PORT":
        hook = {"httpGet": {**hook["httpGet"], "port": port}}
    clock = Clock()
    message = await hooks.run_hook(hook, container, POD, pod_ip="127.0.0.1", env={},
                                   wrap=list, cwd=None, connect=asyncio.open_connection,
                                   clock=clock, seconds=5)
    assert message == expected
    if "httpGet" in hook and hook["httpGet"]["port"] != "nope":
        assert heads[0].startswith(f"GET {hook['httpGet']['path']} HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{port}\r\n" in heads[0]
        assert ("X-A: b\r\n" in heads[0]) == ("httpHeaders" in hook["httpGet"])
    assert clock.sleeps == ([5] if "sleep" in hook else [])


def pod(lifecycle: dict[str, Any], grace: int = 10) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "command": ["sleep", "30"],
                 "lifecycle": lifecycle}
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": "Never", "containers": [container],
                     "terminationGracePeriodSeconds": grace}}


def runtime(tmp_path: Path) -> tuple[ProcessRuntime, list[tuple[str, str]], Clock]:
    events: list[tuple[str, str]] = []
    clock = Clock()

    async def event(_pod: Any, _type: str, reason: str, message: str) -> None:
        events.append((reason, message))
    node = NodeContext(host_ip="127.0.0.1", event=event, notify=clock.notify,
                       services=list, clock=clock)
    manager = volumes.VolumeManager(tmp_path, volumes.Objects(
        configmaps=lambda _n, _m: None, secrets=lambda _n, _m: None,
        claims=lambda _n, _m: None, persistent_volumes=lambda _n: None,
        token=lambda _p, _s: None), can_mount=False)
    return (ProcessRuntime(node, root=tmp_path, cluster_dns=lambda: None, sandbox_mode="none",
                           volumes=manager), events, clock)


async def until(clock: Clock, check: Any, seconds: float = 10.0) -> None:
    """Wait (bounded) for `check()`, rechecking on each notification or clock sleep."""
    async with asyncio.timeout(seconds):
        while not check():
            clock.changed.clear()
            await clock.changed.wait()


def state(rt: ProcessRuntime, the_pod: dict[str, Any]) -> dict[str, Any]:
    status = rt.workers["u1"].status(the_pod, "now")
    return dict(status["containerStatuses"][0])


async def test_post_start_holds_running_until_it_returns(tmp_path: Path) -> None:
    rt, events, clock = runtime(tmp_path)
    clock.gate = asyncio.Event()
    the_pod = pod({"postStart": {"sleep": {"seconds": 3}}})
    await rt.sync(the_pod, pod_ip="127.0.0.1")
    await until(clock, lambda: clock.sleeps == [3])
    assert ("Started", "Started container c") in events
    held = state(rt, the_pod)
    assert "running" not in held["state"] and held["started"] is False
    clock.gate.set()
    await until(clock, lambda: "running" in state(rt, the_pod)["state"])
    assert state(rt, the_pod)["started"] is True
    rt.workers["u1"].kill()
    await rt.close()


async def test_failing_post_start_kills_the_container(tmp_path: Path) -> None:
    rt, events, clock = runtime(tmp_path)
    the_pod = pod({"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}})
    await rt.sync(the_pod, pod_ip="127.0.0.1")
    await until(clock, lambda: "terminated" in state(rt, the_pod)["state"])
    failed = (f"Exec lifecycle hook ([sh -c exit 1]) {WHERE} command failed with exit code 1: ")
    assert [e for e in events if e[0] in ("FailedPostStartHook", "Killing")] == [
        ("FailedPostStartHook", failed), ("Killing", "FailedPostStartHook")]
    assert state(rt, the_pod)["started"] is False
    await rt.close()


@pytest.mark.parametrize(("lifecycle", "grace", "sleeps", "event"), [
    ({"preStop": {"sleep": {"seconds": 3}}}, 10, [3, 10], None),
    ({"preStop": {"sleep": {"seconds": 30}}}, 5, [30, 5], None),
    ({"preStop": {"exec": {"command": ["false"]}}}, 10, [10],
     f"Exec lifecycle hook ([false]) {WHERE} command failed with exit code 1: "),
    ({}, 10, [], None),
], ids=["sleep-within-grace", "sleep-past-grace", "exec-fails", "no-hook"])
async def test_pre_stop_runs_before_sigterm(tmp_path: Path, lifecycle: dict[str, Any],
                                            grace: int, sleeps: list[float],
                                            event: str | None) -> None:
    rt, events, clock = runtime(tmp_path)
    the_pod = pod(lifecycle, grace)
    await rt.sync(the_pod, pod_ip="127.0.0.1")
    await until(clock, lambda: "running" in state(rt, the_pod)["state"])
    worker = rt.workers["u1"]
    await rt.terminate(the_pod)
    assert worker.stop_task is not None
    await asyncio.wait_for(worker.stop_task, 10)
    assert sorted(clock.sleeps) == sorted(sleeps)
    assert state(rt, the_pod)["state"]["terminated"]["exitCode"] == 143  # SIGTERM, not KILL
    assert [m for r, m in events if r == "FailedPreStopHook"] == ([event] if event else [])
    await rt.close()


def ready(status: dict[str, Any] | None) -> str:
    assert status is not None
    return next(c["status"] for c in status["conditions"] if c["type"] == "Ready")


async def test_stopping_pod_stays_ready_during_pre_stop(tmp_path: Path) -> None:
    """While preStop runs the pod keeps its live readiness (its endpoints are serving and
    terminating); once the container stopped it is not ready."""
    rt, _events, clock = runtime(tmp_path)
    the_pod = pod({"preStop": {"sleep": {"seconds": 2}}})
    await rt.sync(the_pod, pod_ip="127.0.0.1")
    await until(clock, lambda: "running" in state(rt, the_pod)["state"])
    clock.gate = asyncio.Event()
    await rt.terminate(the_pod)
    await until(clock, lambda: 2 in clock.sleeps)
    assert ready(rt.stopping_status(the_pod)) == "True"
    clock.gate.set()
    worker = rt.workers["u1"]
    assert worker.stop_task is not None
    await asyncio.wait_for(worker.stop_task, 10)
    assert ready(rt.stopping_status(the_pod)) == "False"
    await rt.close()
    rt.forget(the_pod)
    assert rt.stopping_status(the_pod) is None
