"""Container probes: the timing and result state machine (pure) and the three probe actions.

`ProbeTiming.of(probe)` reads the timing fields with the API defaults (initialDelaySeconds 0,
periodSeconds 10, timeoutSeconds 1, successThreshold 1, failureThreshold 3). `ProbeTracker`
turns single results into the probe's verdict as the kubelet's probe worker does: the verdict
flips only after `successThreshold` consecutive successes or `failureThreshold` consecutive
failures. The initial verdict is the kubelet's: readiness starts failed (not ready), liveness
starts successful, startup starts unknown.

`run_probe` performs one `exec`, `httpGet` or `tcpSocket` check with the probe's timeout and
returns (ok, message). `httpGet` succeeds for statuses 200-399, as upstream; `exec` runs the
command through the pod's sandbox wrapper (`wrap`) so it sees the pod's names.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]
Wrap = Callable[[list[str]], list[str]]
# Opens a probe's TCP connection: asyncio.open_connection on the host; in the netns network
# mode one whose socket lives in the node's namespace, where pod IPs are routed.
Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
KINDS = ("startupProbe", "livenessProbe", "readinessProbe")


@dataclasses.dataclass(frozen=True)
class ProbeTiming:
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Obj) -> ProbeTiming:
        return cls(float(probe.get("initialDelaySeconds") or 0),
                   float(probe.get("periodSeconds") or 10),
                   float(probe.get("timeoutSeconds") or 1),
                   int(probe.get("successThreshold") or 1),
                   int(probe.get("failureThreshold") or 3))


_INITIAL: dict[str, bool | None] = {"readinessProbe": False, "livenessProbe": True,
                                    "startupProbe": None}


@dataclasses.dataclass
class ProbeTracker:
    """Consecutive-result counting; `verdict` is True, False or None (unknown)."""

    timing: ProbeTiming
    verdict: bool | None = None
    _run: int = 0
    _last: bool | None = None

    @classmethod
    def for_kind(cls, kind: str, probe: Obj) -> ProbeTracker:
        return cls(ProbeTiming.of(probe), _INITIAL[kind])

    def observe(self, ok: bool) -> bool:
        """Record one result; True when the verdict changed."""
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        needed = self.timing.success_threshold if ok else self.timing.failure_threshold
        if self._run < needed or self.verdict is ok:
            return False
        self.verdict = ok
        return True


def resolve_port(port: int | str, container: Obj) -> int:
    """A probe's `port`: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for item in container.get("ports") or []:
        if item.get("name") == port:
            return int(item["containerPort"])
    raise ValueError(f"port {port!r} is not a port of container {container.get('name')!r}")


async def run_probe(probe: Obj, container: Obj, *, pod_ip: str, env: Mapping[str, str],
                    wrap: Wrap, cwd: str | None = None,
                    connect: Connect = asyncio.open_connection) -> tuple[bool, str]:
    """Run one probe action; (ok, message)."""
    timeout = ProbeTiming.of(probe).timeout
    try:
        if "exec" in probe:
            argv = wrap([str(a) for a in probe["exec"].get("command") or []])
            return await _exec(argv, env=env, cwd=cwd, seconds=timeout)
        if "httpGet" in probe:
            return await _http_get(probe["httpGet"], container, pod_ip, timeout, connect)
        if "tcpSocket" in probe:
            return await _tcp(probe["tcpSocket"], container, pod_ip, timeout, connect)
    except ValueError as exc:
        return False, str(exc)
    return True, "probe type is not supported by the process runtime; counted as success"


async def _exec(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None,
                seconds: float) -> tuple[bool, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=dict(env), cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
    except OSError as exc:
        return False, f"exec failed: {exc}"
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return False, f"command timed out after {seconds:g}s"
    text = output.decode(errors="replace").strip()
    if proc.returncode == 0:
        return True, text
    return False, f"command failed with exit code {proc.returncode}: {text}"[:1024]


async def _http_get(action: Obj, container: Obj, pod_ip: str, seconds: float,
                    connect: Connect) -> tuple[bool, str]:
    host = action.get("host") or pod_ip
    port = resolve_port(action.get("port", 80), container)
    tls = str(action.get("scheme", "HTTP")).upper() == "HTTPS"
    context = ssl.create_default_context() if tls else None
    if context is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    path = action.get("path") or "/"
    headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*",
               "Connection": "close"}
    headers.update({h["name"]: h["value"] for h in action.get("httpHeaders") or []})
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                                    headers.items()) + "\r\n"
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await connect(host, port, ssl=context)
            try:
                writer.write(request.encode())
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return False, f'Get "http://{host}:{port}{path}": context deadline exceeded'
    except OSError as exc:
        return False, f'Get "http://{host}:{port}{path}": {_reason(exc)}'
    parts = status_line.decode(errors="replace").split()
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if 200 <= code < 400:
        return True, f"HTTP probe succeeded with statuscode: {code}"
    return False, f"HTTP probe failed with statuscode: {code}"


def _reason(exc: OSError) -> str:
    """`connect: connection refused`, as Go words a failed dial."""
    return f"connect: {os.strerror(exc.errno).lower()}" if exc.errno else str(exc)


async def _tcp(action: Obj, container: Obj, pod_ip: str, seconds: float,
               connect: Connect) -> tuple[bool, str]:
    host = action.get("host") or pod_ip
    port = resolve_port(action.get("port", 0), container)
    try:
        async with asyncio.timeout(seconds):
            _, writer = await connect(host, port)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: {_reason(exc)}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""
