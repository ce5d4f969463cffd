"""One process pod's life: each container's command runs as a local process group.

One `PodWorker` per pod (by uid) runs the pod's life in a task:

1. one plain event says the image is not pulled; init containers run in order, each until it
   exits 0 (a failing one is restarted with back-off, or fails the pod under `Never`);
2. every app container is supervised by its own loop: start the process (in its own session,
   so its pid is its process group, wrapped by the pod's `Sandbox` for its names), pump its
   output into its `ContainerLog`, run its probes, and when it stops decide with
   `restartPolicy` and `CrashBackoff` whether and when it starts again.

Probes: the startup probe runs first; liveness and readiness start once it succeeded. The
readiness verdict is the container's `ready`; a liveness (or startup) failure kills the
container, which the loop then restarts. Every change calls `notify`, and the node agent writes
the pod status computed by `status.process_status` from the workers' `ContainerRecord`s.

Lifecycle hooks (`hooks.run_hook`): `postStart` runs right after the process starts; the
container is not running (nor `started`, nor probed) until it returns, and a failing one is a
`FailedPostStartHook` event and a kill (then the restart policy decides, as upstream).

`stop(grace)` (pod deletion) stops restarts, runs each running container's `preStop` hook
(exec, httpGet or sleep) within the grace period, sends SIGTERM to each process group and
SIGKILL to what is left when the grace period is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tinykube import clock as clocks
from tinykube.api import errors
from tinykube.api.meta import rfc3339
from tinykube.kubelet import env as pod_env
from tinykube.kubelet import hooks, probes, sandbox, stdio
from tinykube.kubelet import status as pod_status
from tinykube.kubelet.cgroups import Cgroups, memory_limit
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.mounts import Mount
from tinykube.kubelet.restarts import Clock, CrashBackoff, should_restart

Obj = Mapping[str, Any]
EventFn = Callable[[Obj, str, str, str], Awaitable[None]]
MountsFn = Callable[[Obj, Mapping[str, str]], Sequence[Mount]]  # (container, env) -> mounts
READY_TIMEOUT = 30.0  # bounds the wait for a helper to bind a container's volumes
MIN_GRACE = 2.0  # the kubelet's minimumGracePeriodInSeconds after an overrun preStop hook
EXIT_WAIT = 2.0  # real seconds a stopping process counts as busy on a test clock (then: idle)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _close_pipe(pipe: tuple[int, int] | None) -> None:
    if pipe is not None:
        os.close(pipe[0])
        os.close(pipe[1])


def _wait_closed(fd: int, timeout: float) -> None:
    """Wait until every writer of pipe `fd` closed it (or `timeout`), then close it."""
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def exit_code(returncode: int) -> tuple[int, int | None]:
    """asyncio's returncode -> (exit code as a container runtime reports it, signal)."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


class NodeContext:
    """What workers share: the node's address, events, clock, back-off and Service lookup."""

    def __init__(self, *, host_ip: str, event: EventFn, notify: Callable[[Obj], None],
                 services: Callable[[], Iterable[Obj]], clock: Clock | None = None,
                 backoff: CrashBackoff | None = None, max_log_bytes: int = 10 << 20,
                 connect: probes.Connect = asyncio.open_connection,
                 cgroups: Cgroups | None = None) -> None:
        self.host_ip = host_ip
        self.cgroups = cgroups if cgroups is not None and cgroups.available else None
        self.connect = connect  # probes' TCP connections (see probes.Connect)
        self.event = event
        self.notify = notify
        self.services = services
        self.clock = clock or clocks.installed()  # the process's (a test clock's) or a fake
        self.backoff = backoff or CrashBackoff()
        self.max_log_bytes = max_log_bytes


class PodWorker:
    """Runs one pod's containers and keeps their records."""

    def __init__(self, pod: Obj, pod_ip: str, *, node: NodeContext, box: sandbox.Sandbox,
                 log_dir: Path, mounts: MountsFn = lambda _container, _env: ()) -> None:
        self.pod = pod
        self.mounts = mounts  # a container's volumes (see `volumes.mounts`)
        self.volume_paths: dict[str, Path] = {}  # volume name -> host path, once set up
        self.pod_ip = pod_ip
        self.node = node
        self.box = box
        spec = pod.get("spec", {})
        self.uid = str(pod["metadata"].get("uid", ""))
        waiting = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        self.init = {c["name"]: pod_status.ContainerRecord(c["name"], c.get("image", ""),
                                                           reason="PodInitializing")
                     for c in spec.get("initContainers") or []}
        self.main = {c["name"]: pod_status.ContainerRecord(c["name"], c.get("image", ""),
                                                           reason=waiting)
                     for c in spec.get("containers") or []}
        self.logs = {name: ContainerLog(log_dir / name, max_bytes=node.max_log_bytes)
                     for name in [*self.init, *self.main]}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.stdio: dict[str, stdio.ContainerIO] = {}  # running containers' streams (attach)
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.stop_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        states = {n: r.state for n, r in {**self.init, **self.main}.items()}
        return f"PodWorker({self.pod['metadata'].get('name')}, {states})"

    @property
    def policy(self) -> str:
        return str(self.pod.get("spec", {}).get("restartPolicy", "Always"))

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod/{self.uid}")

    def status(self, pod: Obj, now: str) -> dict[str, Any]:
        return pod_status.process_status(pod, init=list(self.init.values()),
                                         main=list(self.main.values()), pod_ip=self.pod_ip,
                                         host_ip=self.node.host_ip, now=now)

    def _changed(self) -> None:
        self.node.notify(self.pod)

    async def _event(self, type_: str, reason: str, message: str) -> None:
        await self.node.event(self.pod, type_, reason, message)

    # --- the pod's life ---------------------------------------------------------------------

    async def _run(self) -> None:
        spec = self.pod.get("spec", {})
        await self._announce()
        for container in spec.get("initContainers") or []:
            if not await self._supervise(container, self.init[container["name"]], init=True):
                return
        await asyncio.gather(*(self._supervise(c, self.main[c["name"]], init=False)
                               for c in spec.get("containers") or []))

    async def _announce(self) -> None:
        """Say once how the pod's images are treated (here: not pulled)."""
        spec = self.pod.get("spec", {})
        images = ", ".join(sorted({c.get("image", "") for c in spec.get("containers") or []}))
        await self._event("Normal", "Pulled", f'Container image "{images}" is not pulled: the '
                          "process runtime runs the container's command on this host")

    async def _supervise(self, container: Obj, record: pod_status.ContainerRecord, *,
                         init: bool) -> bool:
        """Run a container until it should stay stopped; True when it exited 0."""
        with clocks.installed().busy():  # idle only while its process runs (a test clock)
            return await self._supervise_busy(container, record, init=init)

    async def _supervise_busy(self, container: Obj, record: pod_status.ContainerRecord, *,
                              init: bool) -> bool:
        key = f"{self.uid}/{container['name']}"
        while not self.stopping:
            code = await self._run_once(container, record, probing=not init)
            if code is None:
                return False
            done = code == 0 and init
            if done or self.stopping or not should_restart(self.policy, code):
                return code == 0
            await self._back_off(key, container, record)
        return False

    async def _back_off(self, key: str, container: Obj,
                        record: pod_status.ContainerRecord) -> None:
        clock, backoff = self.node.clock, self.node.backoff
        record.last_terminated = record.terminated()
        delay = backoff.remaining(key, clock.now())
        record.state, record.message = "waiting", ""
        record.reason = "ContainerCreating"
        if delay > 0:
            meta = self.pod["metadata"]
            record.reason = "CrashLoopBackOff"
            record.message = (f"back-off {backoff.current(key, clock.now()):g}s restarting "
                              f"failed container={container['name']} pod={meta['name']}_"
                              f"{meta.get('namespace')}({self.uid})")
            self._changed()
            await self._event("Warning", "BackOff", "Back-off restarting failed container "
                              f"{container['name']} in pod {meta['name']}_"
                              f"{meta.get('namespace')}({self.uid})")
            await clock.sleep(delay)
        backoff.restarted(key, clock.now())
        record.restart_count += 1

    def exec_command(self, container_name: str, command: Sequence[str],
                     ) -> tuple[list[str], dict[str, str], str | None]:
        """(argv, env, cwd) to run `command` as `kubectl exec` does: in the container's
        sandbox, with its environment and working directory. Raises BadRequest when the
        container is not running."""
        name = self.pod["metadata"].get("name")
        record = self.main.get(container_name) or self.init.get(container_name)
        if record is None or container_name not in self.procs:
            raise errors.BadRequest(f'container "{container_name}" in pod "{name}" is not '
                                    "running")
        spec = self.pod["spec"]
        every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        container = next(c for c in every if c["name"] == container_name)
        return (self._in_container(container)(list(command)), self._env(container),
                self._exec_cwd(container))

    def _exec_cwd(self, container: Obj) -> str | None:
        """The host working directory of a command run in the container (exec, probes)."""
        return container.get("workingDir") or None

    def _identity(self, container: Obj) -> sandbox.Identity | None:
        return sandbox.identity(self.pod, container, uid=os.geteuid(), gid=os.getegid())

    def _in_container(self, container: Obj) -> probes.Wrap:
        """How to run a command inside the running container (`kubectl exec`, exec probes,
        preStop hooks): in its namespaces and cgroups, as its user."""
        name = container["name"]
        cgroups = self.node.cgroups
        paths = cgroups.paths(self.uid, name) if cgroups is not None else []
        proc = self.procs.get(name)
        join = proc.pid if proc is not None and proc.returncode is None else None
        user = self._identity(container)
        return lambda argv: self.box.wrap(argv, paths, user=user, join=join)

    def _cgroups(self, container: Obj) -> list[str]:
        """The container's cgroups (made now, with its memory limit); none without them."""
        if self.node.cgroups is None:
            return []
        return self.node.cgroups.container(self.uid, container["name"],
                                           memory_limit(container))

    def attach_target(self, container_name: str) -> stdio.ContainerIO:
        """The running container's streams, for `kubectl attach`; BadRequest if not running."""
        io = self.stdio.get(container_name)
        if io is None:
            raise errors.BadRequest(f'container "{container_name}" in pod '
                                    f'"{self.pod["metadata"].get("name")}" is not running')
        return io

    # --- one run of one container -----------------------------------------------------------

    def _base_env(self, container: Obj) -> dict[str, str]:
        """What a container's environment starts from (here: the host's PATH and HOME)."""
        return {"PATH": os.environ.get("PATH", DEFAULT_PATH),
                "HOME": os.environ.get("HOME", "/root"), "HOSTNAME": self.box.hostname,
                "POD_IP": self.pod_ip}

    def _env(self, container: Obj) -> dict[str, str]:
        pod = {**self.pod, "status": {**self.pod.get("status", {}), "podIP": self.pod_ip,
                                      "podIPs": [{"ip": self.pod_ip}],
                                      "hostIP": self.node.host_ip,
                                      "hostIPs": [{"ip": self.node.host_ip}]}}
        base = self._base_env(container)
        spec = self.pod.get("spec", {})
        services = pod_env.service_env(
            list(self.node.services()), namespace=str(self.pod["metadata"].get("namespace")),
            enable_service_links=spec.get("enableServiceLinks", True) is not False)
        return pod_env.container_env(pod, container, base=base, services=services)

    async def _run_once(self, container: Obj, record: pod_status.ContainerRecord, *,
                        probing: bool) -> int | None:
        """Start the container, wait for it to stop; its exit code (None: cannot start)."""
        try:
            argv, env, mounts = self._prepare(container)
        except pod_env.EnvError as exc:
            record.state, record.reason, record.message = ("waiting",
                                                           "CreateContainerConfigError", str(exc))
            self._changed()
            await self._event("Warning", "Failed", f"Error: {exc}")
            return None
        log = self.logs[container["name"]]
        log.start_run()
        io = stdio.ContainerIO(container)
        cgroups = self._cgroups(container)
        # With volumes, the container counts as started once the helper has bound them
        ready = os.pipe() if self._binds_mounts(mounts) else None
        ooms = self._oom_kills(container["name"])  # before: the run may be OOM-killed at once
        try:
            proc = await self._spawn(container, argv, env, io, cgroups, mounts,
                                     ready[1] if ready else None)
        except asyncio.CancelledError:  # stopped while starting: what `_prepare` made goes
            _close_pipe(ready)
            io.started(None)
            await asyncio.shield(self._cleanup(container))
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            _close_pipe(ready)
            io.started(None)
            log.end_run()
            await self._cleanup(container)
            self._record_exit(record, 128, None, "StartError", str(exc), started=rfc3339())
            self._changed()
            await self._event("Warning", "Failed", f"Error: {exc}")
            return 128
        return await self._follow(container, record, proc, io, env, log, probing=probing,
                                  ready=ready, ooms=ooms)

    async def _follow(self, container: Obj, record: pod_status.ContainerRecord,
                      proc: asyncio.subprocess.Process, io: stdio.ContainerIO,
                      env: Mapping[str, str], log: ContainerLog, *, probing: bool,
                      ready: tuple[int, int] | None = None, resumed: str | None = None,
                      ooms: int = 0) -> int:
        """Watch a started run until it ends, then clean up after it. `resumed`: the start
        time of a run an earlier agent started (no Started event, no postStart hook)."""
        io.started(proc)
        self.stdio[container["name"]] = io
        try:
            if ready is not None:
                os.close(ready[1])
                await asyncio.to_thread(_wait_closed, ready[0], READY_TIMEOUT)
            return await self._watch(container, record, proc, env, log, probing=probing,
                                     resumed=resumed, ooms=ooms)
        finally:
            if proc.returncode is None:  # cancelled while running: leave nothing behind
                _killpg(proc.pid, signal.SIGKILL)
            if self.node.cgroups is not None:  # what it started (setsid escapes too) goes too
                self.node.cgroups.kill_all(self.uid, container["name"])
            self.procs.pop(container["name"], None)
            self.stdio.pop(container["name"], None)
            io.end()
            await self._cleanup(container)

    def _prepare(self, container: Obj) -> tuple[list[str], dict[str, str], Sequence[Mount]]:
        """(argv, env, volume mounts) of the container's next run; EnvError when it cannot
        run."""
        env = self._env(container)
        argv = pod_env.command_line(container, env)
        refused = sandbox.runs_as_root_refused(self.pod, container, uid=os.geteuid())
        if refused is not None:
            raise pod_env.EnvError(refused)
        return argv, env, self.mounts(container, env)

    def _binds_mounts(self, mounts: Sequence[Mount]) -> bool:
        """Whether the sandbox helper binds `mounts` (the run is started once it has: a ready
        pipe it closes when it execs the command)."""
        return bool(mounts) and self.box.mode != "none"

    async def _spawn(self, container: Obj, argv: list[str], env: Mapping[str, str],
                     io: stdio.ContainerIO, cgroups: list[str], mounts: Sequence[Mount],
                     ready: int | None) -> asyncio.subprocess.Process:
        """Start one run of the container: its command in the pod's sandbox."""
        options = io.spawn_options()
        if ready is not None:
            options["pass_fds"] = (*options.get("pass_fds", ()), ready)
        return await asyncio.create_subprocess_exec(
            *self.box.wrap(argv, cgroups, user=self._identity(container), mounts=mounts,
                           ready=ready),
            cwd=container.get("workingDir") or None, env=env,
            start_new_session=True, **options)

    async def _cleanup(self, container: Obj) -> None:
        """After a run (however it ended): nothing to undo for a process."""

    def _container_id(self, name: str, run: int) -> str:
        return f"tinykube://{self.uid}/{name}/{run}"

    async def _watch(self, container: Obj, record: pod_status.ContainerRecord,
                     proc: asyncio.subprocess.Process, env: Mapping[str, str],
                     log: ContainerLog, *, probing: bool, resumed: str | None = None,
                     ooms: int = 0) -> int:
        """Follow a run until it ends; `ooms`: the OOM kill count before it started."""
        name = container["name"]
        self.procs[name] = proc
        record.started_at, record.finished_at = resumed or rfc3339(), None
        record.container_id = self._container_id(name, log.runs)
        if resumed is None:
            self._started(container, record, proc)
            await self._event("Normal", "Started", f"Started container {name}")
        pump = asyncio.create_task(self.stdio[name].pump(log))
        prober = None
        started = await self._post_start(container, proc, env) if resumed is None else \
            proc.returncode is None
        if started:
            record.state, record.reason, record.message = "running", "", ""
            has_startup = bool(container.get("startupProbe")) and probing
            record.started = not has_startup
            record.ready = record.started and not (probing and
                                                   bool(container.get("readinessProbe")))
            self._changed()
            if probing:
                prober = asyncio.create_task(self._probe(container, record, proc, env))
        try:
            with clocks.installed().idle():
                returncode = await proc.wait()
        finally:
            if prober is not None:
                prober.cancel()
                await asyncio.gather(prober, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), 1.0)
        pump.cancel()
        log.end_run()
        code, sig = exit_code(returncode)
        reason = "Completed" if code == 0 else "Error"
        if self._oom_kills(name) > ooms:
            reason = "OOMKilled"  # the kernel's OOM killer ended a process of the container
        self._record_exit(record, code, sig, reason, "", started=record.started_at,
                          finished=self._finished_at(proc))
        self._changed()
        return code

    def _started(self, container: Obj, record: pod_status.ContainerRecord,
                 proc: asyncio.subprocess.Process) -> None:
        """A run started (its record has its startedAt and containerID): nothing more here."""

    def _oom_kills(self, name: str) -> int:
        return self.node.cgroups.oom_kills(self.uid, name) if self.node.cgroups else 0

    def _finished_at(self, proc: asyncio.subprocess.Process) -> str | None:
        """When the run's process exited, if known better than "now" (a shim records it)."""
        return None

    @staticmethod
    def _record_exit(record: pod_status.ContainerRecord, code: int, sig: int | None,
                     reason: str, message: str, *, started: str | None,
                     finished: str | None = None) -> None:
        record.state, record.exit_code, record.signal = "terminated", code, sig
        record.reason, record.message = reason, message
        record.started_at, record.finished_at = started, finished or rfc3339()
        record.ready = record.started = False

    # --- probes -----------------------------------------------------------------------------

    async def _probe(self, container: Obj, record: pod_status.ContainerRecord,
                     proc: asyncio.subprocess.Process, env: Mapping[str, str]) -> None:
        started_at = self.node.clock.now()
        startup = container.get("startupProbe")
        if startup:
            if not await self._probe_until(container, "startupProbe", startup, env,
                                           started_at, lambda _verdict: False):
                await self._kill_for_restart(container, proc, "startup")
                return
            record.started = True
            record.ready = not container.get("readinessProbe")
            self._changed()
        loops: list[Awaitable[object]] = []
        if container.get("readinessProbe"):
            def ready(verdict: bool) -> bool:
                record.ready = verdict
                self._changed()
                return True
            loops.append(self._probe_until(container, "readinessProbe",
                                           container["readinessProbe"], env, started_at, ready))
        if container.get("livenessProbe"):
            async def liveness() -> None:
                await self._probe_until(container, "livenessProbe", container["livenessProbe"],
                                        env, started_at, lambda verdict: verdict)
                await self._kill_for_restart(container, proc, "liveness")
            loops.append(liveness())
        await asyncio.gather(*loops)

    async def _probe_until(self, container: Obj, kind: str, probe: Obj, env: Mapping[str, str],
                           started_at: float, keep_going: Callable[[bool], bool]) -> bool:
        """Probe periodically; on each verdict change call `keep_going(verdict)` and stop
        (returning the verdict) when it says so."""
        clock = self.node.clock
        tracker = probes.ProbeTracker.for_kind(kind, probe)
        next_at = started_at + tracker.timing.initial_delay
        label = kind.removesuffix("Probe").capitalize()
        while True:
            await clock.sleep(max(0.0, next_at - clock.now()))
            next_at = max(next_at + tracker.timing.period, clock.now())
            with clocks.installed().busy():  # the test clock waits for its verdict
                ok, message = await probes.run_probe(
                    probe, container, pod_ip=self.pod_ip, env=env,
                    wrap=self._in_container(container), cwd=self._exec_cwd(container),
                    connect=self.node.connect)
            if not ok:
                await self._event("Warning", "Unhealthy", f"{label} probe failed: {message}")
            if tracker.observe(ok) and not keep_going(bool(tracker.verdict)):
                return bool(tracker.verdict)

    async def _kill_for_restart(self, container: Obj, proc: asyncio.subprocess.Process,
                                probe: str) -> None:
        with clocks.installed().busy():  # until it is gone (its restart is `_supervise`'s)
            await self._event("Normal", "Killing", f"Container {container['name']} failed "
                              f"{probe} probe, will be restarted")
            await self._stop_process(container, proc, self._grace())

    # --- stopping ---------------------------------------------------------------------------

    def _grace(self) -> float:
        return float(self.pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))

    async def _post_start(self, container: Obj, proc: asyncio.subprocess.Process,
                          env: Mapping[str, str]) -> bool:
        """Run the postStart hook (the container is not running until it returns); when it
        fails, a `FailedPostStartHook` event and the container is killed (False)."""
        hook = (container.get("lifecycle") or {}).get("postStart") or {}
        if hooks.kind(hook) is None:
            return True
        await self._until_running(container, proc)
        message = await self._run_hook(hook, container, env, hooks.NO_TIMEOUT)
        if message is None:
            return True
        await self._event("Warning", "FailedPostStartHook", message)
        if proc.returncode is None:
            await self._event("Normal", "Killing", "FailedPostStartHook")
            await self._stop_process(container, proc, self._grace())
        return False

    async def _until_running(self, container: Obj, proc: asyncio.subprocess.Process) -> None:
        """Wait until the run's command is running (a process is, once spawned)."""

    async def _run_hook(self, hook: Obj, container: Obj, env: Mapping[str, str],
                        seconds: float) -> str | None:
        return await hooks.run_hook(
            hook, container, self.pod, pod_ip=self.pod_ip, env=env,
            wrap=self._in_container(container), cwd=self._exec_cwd(container),
            connect=self.node.connect, clock=self.node.clock, seconds=seconds)

    async def _pre_stop(self, container: Obj, grace: float) -> bool:
        """Run the preStop hook within `grace` seconds (a failure is a `FailedPreStopHook`
        event); False when the grace period ran out first."""
        hook = (container.get("lifecycle") or {}).get("preStop") or {}
        if hooks.kind(hook) is None or grace <= 0:
            return True
        run = asyncio.ensure_future(self._run_hook(hook, container, self._env(container), grace))
        timer = asyncio.ensure_future(self.node.clock.sleep(grace))
        try:
            await asyncio.wait({run, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not run.done():
                run.cancel()
            await asyncio.gather(run, timer, return_exceptions=True)
        if run.cancelled():
            return False  # "PreStop hook not completed in grace period" (a log line upstream)
        message = run.result()
        if message is not None:
            await self._event("Warning", "FailedPreStopHook", message)
        return True

    async def _stop_process(self, container: Obj, proc: asyncio.subprocess.Process,
                            grace: float) -> None:
        """preStop hook, SIGTERM to the group, SIGKILL once `grace` seconds have passed (or
        MIN_GRACE after a preStop hook that used up the grace period, as the kubelet)."""
        clock = self.node.clock
        deadline = clock.now() + grace
        in_time = True
        if proc.returncode is None:
            in_time = await self._pre_stop(container, grace)
        _killpg(proc.pid, signal.SIGTERM)
        remaining = max(0.0, deadline - clock.now()) if in_time else MIN_GRACE
        if not await _exits_within(proc, clock, remaining):
            _killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop(self, grace: float) -> None:
        """Stop the pod for good (deletion)."""
        self.stopping = True
        spec = self.pod.get("spec", {})
        containers = {c["name"]: c for c in [*(spec.get("initContainers") or []),
                                            *(spec.get("containers") or [])]}
        await asyncio.gather(*(self._stop_process(containers[n], p, grace)
                               for n, p in list(self.procs.items())))
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def kill(self) -> None:
        """Immediate cleanup (the pod object is gone): SIGKILL everything, drop the logs."""
        self.stopping = True
        for proc in self.procs.values():
            _killpg(proc.pid, signal.SIGKILL)
        for task in (self.task, self.stop_task):
            if task is not None:
                task.cancel()
        for log in self.logs.values():
            log.remove()


async def _exits_within(proc: asyncio.subprocess.Process, clock: Clock, seconds: float) -> bool:
    """Whether `proc` exits within `seconds` on `clock` (a grace period: a test clock's too)."""
    if not getattr(clock, "testing", False):  # the loop's time (or a unit test's fake)
        try:
            await asyncio.wait_for(proc.wait(), seconds)
        except TimeoutError:
            return False
        return True
    exited = asyncio.ensure_future(proc.wait())
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:  # still busy while it stops as told; idle if it outlives EXIT_WAIT (real seconds)
        await asyncio.wait({exited}, timeout=EXIT_WAIT)
        with clocks.installed().idle():
            await asyncio.wait({exited, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not exited.done():
            exited.cancel()
        await asyncio.gather(exited, timer, return_exceptions=True)
    return exited.done() and not exited.cancelled()
