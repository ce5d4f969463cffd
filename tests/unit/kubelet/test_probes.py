"""Probe verdicts from single results (a table per kind), and the three actions on loopback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tinykube.kubelet import probes

S, F = True, False


@pytest.mark.parametrize(("kind", "probe", "results", "verdicts"), [
    pytest.param("readinessProbe", {}, [S, F, F, F], [S, S, S, F],
                 id="readiness-defaults-three-failures"),
    pytest.param("readinessProbe", {"failureThreshold": 1}, [F, S, F, S], [F, S, F, S],
                 id="readiness-threshold-one"),
    pytest.param("readinessProbe", {"successThreshold": 2}, [S, S, F, S, S],
                 [F, S, S, S, S], id="readiness-two-successes-needed"),
    pytest.param("readinessProbe", {"failureThreshold": 2}, [S, F, S, F, F],
                 [S, S, S, S, F], id="failures-must-be-consecutive"),
    pytest.param("livenessProbe", {"failureThreshold": 2}, [F, F], [S, F],
                 id="liveness-starts-alive"),
    pytest.param("startupProbe", {"failureThreshold": 2}, [F, S], [None, S],
                 id="startup-unknown-until-decided"),
    pytest.param("startupProbe", {"failureThreshold": 2}, [F, F], [None, F],
                 id="startup-fails"),
])
def test_tracker_verdicts(kind: str, probe: dict[str, Any], results: list[bool],
                          verdicts: list[bool | None]) -> None:
    tracker = probes.ProbeTracker.for_kind(kind, probe)
    seen = []
    for ok in results:
        tracker.observe(ok)
        seen.append(tracker.verdict)
    assert seen == verdicts


def test_observe_reports_only_changes() -> None:
    tracker = probes.ProbeTracker.for_kind("readinessProbe", {"failureThreshold": 1})
    assert [tracker.observe(ok) for ok in (F, S, S, F)] == [False, True, False, True]


@pytest.mark.parametrize(("probe", "timing"), [
    pytest.param({}, probes.ProbeTiming(0, 10, 1, 1, 3), id="defaults"),
    pytest.param({"initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
                  "successThreshold": 1, "failureThreshold": 7},
                 probes.ProbeTiming(5, 2, 3, 1, 7), id="all-fields"),
])
def test_timing(probe: dict[str, Any], timing: probes.ProbeTiming) -> None:
    assert probes.ProbeTiming.of(probe) == timing


@pytest.mark.parametrize(("port", "expected"), [
    pytest.param(8080, 8080, id="number"), pytest.param("8081", 8081, id="digits"),
    pytest.param("web", 9000, id="named"),
])
def test_resolve_port(port: int | str, expected: int) -> None:
    container = {"name": "c", "ports": [{"name": "web", "containerPort": 9000}]}
    assert probes.resolve_port(port, container) == expected


@pytest.fixture
async def http_server() -> AsyncIterator[int]:
    """A loopback server: 200 for /ok, 302 for /moved, 500 otherwise."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        words = (await reader.readline()).decode().split()
        code = {"/ok": 200, "/moved": 302}.get(words[1] if len(words) > 1 else "", 500)
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(("path", "ok"), [
    pytest.param("/ok", True, id="200"), pytest.param("/moved", True, id="302"),
    pytest.param("/broken", False, id="500"),
])
async def test_http_get(http_server: int, path: str, ok: bool) -> None:
    probe = {"httpGet": {"path": path, "port": http_server, "host": "127.0.0.1"}}
    result, _ = await probes.run_probe(probe, {}, pod_ip="127.0.0.1", env={}, wrap=list)
    assert result is ok


async def test_tcp_socket(http_server: int) -> None:
    probe = {"tcpSocket": {"port": http_server}}
    assert (await probes.run_probe(probe, {}, pod_ip="127.0.0.1", env={}, wrap=list))[0]
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    refused = await probes.run_probe({"tcpSocket": {"port": port}}, {}, pod_ip="127.0.0.1",
                                     env={}, wrap=list)
    assert refused[0] is False and "refused" in refused[1].lower()


@pytest.mark.parametrize(("code", "ok"), [
    pytest.param("raise SystemExit(0)", True, id="exit-0"),
    pytest.param("raise SystemExit(3)", False, id="exit-3"),
    pytest.param("import time; time.sleep(5)", False, id="timeout"),
])
async def test_exec(code: str, ok: bool) -> None:
    probe = {"exec": {"command": [sys.executable, "-c", code]}, "timeoutSeconds": 0.5}
    wrapped: list[list[str]] = []

    def wrap(argv: list[str]) -> list[str]:
        wrapped.append(argv)
        return argv
    result, message = await probes.run_probe(probe, {}, pod_ip="127.0.0.1", env={}, wrap=wrap)
    assert result is ok, message
    assert wrapped == [[sys.executable, "-c", code]]
