"""More DNS processes on one address (`--dns-workers N`): SO_REUSEPORT across processes.

One Python process answers on one core. To use more, the first DNS server binds its UDP and
TCP sockets with SO_REUSEPORT and starts N-1 worker processes, each a `tinykube dns --join`
on the same address. The kernel then spreads queries over every socket bound to it (by a hash
of the client's address and port, so one client socket keeps talking to one worker).

A worker is a whole cluster DNS of its own, like a CoreDNS replica: its own informers against
the API server (with the kubeconfig it is given: `tinykube up` writes one of the DNS's own
identity, `dns-workers.kubeconfig`), its own model and answer caches. It binds
only once its informers have listed (`DNSOptions.join`), so the kernel never hands a query to
a worker that would still answer SERVFAIL for not being synced. Drills and the query log's
settings come from ConfigMaps, so every worker follows them; the query log's ring and the
Prometheus metrics are per process, and `tinykube dns log` and `/metrics` show the first
one's. A worker that exits is started again after `RESTART_DELAY` seconds; closing stops
every worker by its PID (SIGTERM, then SIGKILL after `STOP_GRACE` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinykube.dns.app import DNSOptions

log = logging.getLogger(__name__)
READY_TIMEOUT = 60.0  # seconds a worker may take to list the cluster and bind
RESTART_DELAY = 1.0
STOP_GRACE = 5.0
READY_PREFIX = b"tinykube DNS listening on "


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def worker_argv(options: DNSOptions, address: tuple[str, int], kubeconfig: str | None,
                python: str = sys.executable) -> list[str]:
    """The command line of one worker: `tinykube dns --join` on `address` with `options`."""
    argv = [python, "-m", "tinykube", "dns", "--join", "--listen", _host_port(*address),
            "--fallback-port", "0", "--cluster-domain", options.domain,
            "--ttl", str(options.ttl), "--pod-records", options.pod_records,
            "--upstream", ",".join(_host_port(*u) for u in options.upstream or ()) or "none"]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if options.log_queries:
        argv.append("--log-queries")
    return argv


@dataclass
class DNSWorkers:
    """N-1 worker processes beside this DNS server; `start` returns once all have bound."""

    argv: list[str]
    count: int
    processes: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closing: bool = False

    async def start(self) -> None:
        ready = [asyncio.get_running_loop().create_future() for _ in range(self.count)]
        self._tasks = [asyncio.create_task(self._supervise(i, f), name=f"dns-worker-{i + 1}")
                       for i, f in enumerate(ready)]
        try:
            await asyncio.wait_for(asyncio.gather(*ready), READY_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def _supervise(self, index: int, ready: asyncio.Future[None]) -> None:
        while not self._closing:
            process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
            self.processes[index] = process
            assert process.stdout is not None
            async for line in process.stdout:  # its log goes to our stderr; stdout says ready
                if line.startswith(READY_PREFIX) and not ready.done():
                    ready.set_result(None)
            code = await process.wait()
            if self._closing:
                return
            if not ready.done():
                ready.set_exception(RuntimeError(
                    f"DNS worker {index + 1} exited ({code}) before it listened: see its log"))
                return
            log.error("DNS worker %d (pid %d) exited with %s; starting it again", index + 1,
                      process.pid, code)
            await asyncio.sleep(RESTART_DELAY)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.returncode is None]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:  # first: no supervisor starts a worker after this
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
