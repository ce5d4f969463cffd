"""The composition root of `tinykube up`: the API server, and every other component beside it.

The API server runs in this process. Everything else (nodes, controllers, cluster DNS, service
proxy: `components.start_components`) runs by default in one child process, as a real cluster
runs kube-apiserver apart from the controller manager, the scheduler and the kubelets. Both
sides meet only over HTTP, as they would in one process too, so the split adds no serialization
and puts the second core to work; the child uses the API server's private unix socket (plain
HTTP, same bearer token). `--single-process` keeps them together (easier to profile).

Order matters only at start. The child is started first, so that its imports overlap the API
server's start-up; it gets its options once the API server answers, registers the nodes, starts
the controllers, DNS and proxy, and reports back (see `components` for the line protocol). Its
announcements are passed on to `announce`, during start-up and after (a port the proxy cannot
bind is reported whenever it happens). If either side fails, the other is stopped and the error
is reported; stopping sends the child SIGTERM (SIGKILL after `CHILD_STOP_TIMEOUT`).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import json
import logging
import socket
import subprocess
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from tinykube import clock as clocks
from tinykube import identities
from tinykube.apiserver.server import APIServerOptions, RunningAPIServer, open_apiserver
from tinykube.component_options import ComponentOptions, NodeSpec
from tinykube.dns.options import DNSOptions
from tinykube.launch import CLOCK, FAILED, READY, run_until, spawn_components
from tinykube.settings import DEFAULT_POD_CIDR

if TYPE_CHECKING:
    from tinykube.components import RunningComponents

log = logging.getLogger(__name__)
CHILD_STOP_TIMEOUT = 30.0  # seconds: process pods get their grace period on the way out


@dataclasses.dataclass
class ClusterOptions:
    api: APIServerOptions
    nodes: list[NodeSpec] = dataclasses.field(
        default_factory=lambda: [NodeSpec(socket.gethostname().lower())])
    pod_cidr: str = DEFAULT_POD_CIDR
    dns: DNSOptions | None = dataclasses.field(default_factory=DNSOptions)
    proxy: bool = True
    default_runtime: str = "virtual"  # the runtime of pods without a runtimeClassName
    single_process: bool = False
    verbose: int = 0
    network: str = "host"  # "netns": nodes and pods in network namespaces (root)
    virtual_job_seconds: float = 1.0  # a Job's virtual pods succeed after this long
    insecure_registries: list[str] = dataclasses.field(default_factory=list)
    registry_mirrors: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    resolv_conf: str = "/etc/resolv.conf"  # the kubelet's --resolv-conf ("": none)
    hpa_sync_period: float = 15.0
    node_monitor_grace_period: float = 40.0
    leader_election: list[float] = dataclasses.field(default_factory=lambda: [15.0, 10.0, 2.0])
    host_sockets: int | None = None  # rootless netns mode: the child's end of hostsockets
    holder_pid: int | None = None  # rootless netns mode: the namespaces' launcher
    image_cache_size: int | None = None  # image GC (see ComponentOptions)
    image_gc_high: int = 85
    image_gc_low: int = 80
    image_min_age: float = 120.0
    test_clock: bool = False  # `--test-clock`: every component on one `clock.TestClock`
    ui_listen: str = "127.0.0.1:0"  # the observer's endpoint (live map, DNS log); "": none

    def components(self, api: RunningAPIServer) -> ComponentOptions:
        return ComponentOptions(kubeconfig=api.kubeconfig, data_dir=self.api.data_dir,
                                host_ip=self.api.host, nodes=self.nodes, pod_cidr=self.pod_cidr,
                                dns=self.dns, proxy=self.proxy,
                                default_runtime=self.default_runtime, verbose=self.verbose,
                                api_socket=str(api.local_socket) if api.local_socket else None,
                                kubelet_token=api.credentials.kubelet_token,
                                network=self.network, service_cidr=self.api.service_cidr,
                                virtual_job_seconds=self.virtual_job_seconds,
                                insecure_registries=self.insecure_registries,
                                registry_mirrors=self.registry_mirrors,
                                resolv_conf=self.resolv_conf,
                                hpa_sync_period=self.hpa_sync_period,
                                node_monitor_grace_period=self.node_monitor_grace_period,
                                leader_election=self.leader_election,
                                host_sockets=self.host_sockets,
                                holder_pid=self.holder_pid,
                                image_cache_size=self.image_cache_size,
                                image_gc_high=self.image_gc_high, image_gc_low=self.image_gc_low,
                                image_min_age=self.image_min_age,
                                test_clock=clocks.installed().time()
                                if self.test_clock else None,
                                ui_listen=self.ui_listen,
                                identities=_identities(api, self.nodes))

    def api_options(self, local_socket: bool) -> APIServerOptions:
        """The API server's options, with a static token for each node's agent too."""
        users = [*self.api.component_users, *(identities.node_user(n.name) for n in self.nodes)]
        return dataclasses.replace(self.api, local_socket=local_socket, warm_at_open=False,
                                   component_users=users)


def _identities(api: RunningAPIServer, nodes: list[NodeSpec]) -> dict[str, str]:
    """component -> the static token the API server made for its user (`identities`): the
    components' and each node agent's (`kubelet/NODE`)."""
    users = {name: user for name, (user, _groups) in identities.COMPONENTS.items()}
    users.update({identities.node_component(n.name): identities.node_user(n.name)[0]
                  for n in nodes})
    return {name: api.component_tokens[user] for name, user in users.items()
            if user in api.component_tokens}


class ChildComponents:
    """The components running in a child process (`python -m tinykube.components`)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: asyncio.StreamReader | None = None
        self._clock_reply: asyncio.Future[float | None] | None = None

    def __repr__(self) -> str:
        return f"ChildComponents(pid={self.process.pid}, returncode={self.process.poll()})"

    async def start(self, options: ComponentOptions, announce: Callable[[str], None]) -> None:
        """Send the options; pass announcements on until the child is ready (OSError if not)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        loop = asyncio.get_running_loop()
        self.lines = lines = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines),
                                     self.process.stdout)
        try:
            self.process.stdin.write(options.to_json().encode() + b"\n")
            self.process.stdin.flush()  # stdin stays open: its end tells the child we are gone
        except BrokenPipeError:
            pass  # the child is gone already: its exit code is reported below
        while line := (await self.lines.readline()).decode():
            text = line.rstrip("\n")
            if text == READY:
                return
            if text.startswith(FAILED):
                await self._exited()
                raise OSError(text.removeprefix(FAILED))
            announce(text)
        code = await self._exited()
        raise OSError(f"the node and controller process exited with code {code} while starting "
                      "(its log is above)")

    async def relay(self, announce: Callable[[str], None]) -> None:
        """Pass later announcements on until the child exits; an exit is an error."""
        assert self.lines is not None
        while line := (await self.lines.readline()).decode():
            if line.startswith(CLOCK) and self._clock_reply is not None:
                answer = json.loads(line.removeprefix(CLOCK))
                if "error" in answer:
                    self._clock_reply.set_exception(TimeoutError(answer["error"]))
                else:
                    due = answer["next"]
                    self._clock_reply.set_result(None if due is None else float(due))
                continue
            announce(line.rstrip("\n"))
        code = await self._exited()
        raise RuntimeError(f"exited with code {code}")

    async def clock_step(self, when: float) -> float | None:
        """Set the child's test clock to `when` and wait until it settled (`clock`); when
        its next timer is due."""
        assert self.process.stdin is not None
        self._clock_reply = reply = asyncio.get_running_loop().create_future()
        self.process.stdin.write(f"{CLOCK}{json.dumps({'to': when})}\n".encode())
        self.process.stdin.flush()
        try:
            async with asyncio.timeout(clocks.SETTLE_TIMEOUT + 5):
                due: float | None = await reply
                return due
        except TimeoutError:
            raise TimeoutError("the node and controller process did not settle") from None
        finally:
            self._clock_reply = None

    async def _exited(self) -> int:
        """Wait for the child's exit (in a thread: the process is not the loop's child)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.process.wait)

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(CHILD_STOP_TIMEOUT):
                    await self._exited()
            except TimeoutError:
                log.warning("the node and controller process did not stop in %.0f s: killing it",
                            CHILD_STOP_TIMEOUT)
                self.process.kill()
                await self._exited()
        if self.process.stdin is not None:
            self.process.stdin.close()


@dataclasses.dataclass
class RunningCluster:
    api: RunningAPIServer
    components: RunningComponents | ChildComponents
    tasks: list[asyncio.Task[Any]]
    clock: clocks.Clock | None = None  # the clock installed before a test clock (put back)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.api.stop_scraping()  # the kubelets go next
        await self.components.stop()
        await self.api.stop()
        if self.clock is not None:
            clocks.install(self.clock)


async def start_cluster(options: ClusterOptions, announce: Callable[[str], None] = print,
                        process: subprocess.Popen[bytes] | None = None) -> RunningCluster:
    """Start the API server here and the components in `process` (from `spawn_components`,
    started as early as possible), or in this process too with `options.single_process`."""
    if not options.single_process and process is None:
        process = spawn_components()
    child = None if process is None else ChildComponents(process)
    test_clock = clocks.TestClock() if options.test_clock else None
    previous = clocks.install(test_clock) if test_clock is not None else None
    try:
        cluster = await _start(options, announce, child)
    except BaseException:
        if previous is not None:
            clocks.install(previous)
        raise
    cluster.clock = previous
    if test_clock is not None:
        handler = cluster.api.server.handler
        cluster.api.server.clock_driver = clocks.ClockDriver(
            test_clock, handler.request_progress if child is None else None,
            child.clock_step if child is not None else None)
    return cluster


async def _start(options: ClusterOptions, announce: Callable[[str], None],
                 child: ChildComponents | None) -> RunningCluster:
    try:
        api = await open_apiserver(options.api_options(local_socket=child is not None))
    except BaseException:
        if child is not None:
            await child.stop()
        raise
    try:
        if child is None:
            from tinykube.components import start_components  # only here: the child has them

            running = await start_components(options.components(api), announce)
            api.warm_documents()
            return RunningCluster(api, running, list(running.tasks))
        await child.start(options.components(api), announce)
    except BaseException:
        if child is not None:
            await child.stop()
        await api.stop()
        raise
    api.warm_documents()  # after the components' start (`APIServerOptions.warm_at_open`)
    relay = asyncio.create_task(child.relay(announce), name="node and controller process")
    return RunningCluster(api, child, [relay])


async def run_until_stopped(cluster: RunningCluster, stop: asyncio.Event) -> str | None:
    """Run until `stop` is set or a component dies; then stop everything. What failed, if
    something did."""
    try:
        return await run_until(cluster.tasks, stop)
    finally:
        await cluster.stop()


# glibc's M_MMAP_THRESHOLD (mallopt's parameter number) and its default value. glibc raises the
# threshold each time a large mmap'ed block is freed, and blocks under it come from the heap
# after that; orjson encodes into a 1 MiB buffer, so once an object is encoded, the 64 KiB to
# 1 MiB buffers of requests and watch events fragment the heap and RSS grows with every write
# of a big object (measured: +200 MiB over 4,000 writes of a 64 KiB ConfigMap with a bounded
# watch history, against a flat +68 MiB, the history itself, with the threshold fixed).
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024


def return_large_blocks_to_the_os() -> None:
    """Fix glibc's mmap threshold at its default, so large blocks go back to the OS when freed
    instead of staying in a fragmented heap. Nothing happens on another C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - musl, macOS
        return
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def run_forever(coro_factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    return_large_blocks_to_the_os()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(coro_factory())
    else:
        uvloop.run(coro_factory())


__all__ = ["ClusterOptions", "NodeSpec", "run_until_stopped", "start_cluster"]
