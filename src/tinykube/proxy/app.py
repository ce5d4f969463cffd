"""Assembling the service proxy: userspace backend + syncer + informers.

`start_proxy(client)` starts the informers and returns a `RunningProxy` once the first sync
with synced caches is done (every listener that could be bound is listening, and the ones that
could not are in `running.failing`); `run_proxy(client)` does the same and runs until cancelled.
`tinykube up` and `tinykube proxy` call these.

Bind failures reach the caller through `on_bind_failure(error, service)`, an async callback
called once per new failure with the Service object (None if it is already gone); the usual
callback records a Warning Event on the Service and prints a line. Without a callback the
failure is only logged (the syncer always logs it). Service addresses left out by the bounds on
what the proxy opens (`limits`: per Service, and a budget under RLIMIT_NOFILE) reach
`on_refusal(refusal, service)` the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tinykube.client.events import Recorder
from tinykube.client.rest import RESTClient
from tinykube.proxy import model
from tinykube.proxy.backend import BindError
from tinykube.proxy.limits import Limits, Refusal
from tinykube.proxy.model import ListenKey
from tinykube.proxy.syncer import BindFailureHandler, ProxyController, RefusalHandler, Syncer
from tinykube.proxy.userspace import UDP_IDLE_TIMEOUT, UserspaceBackend

log = logging.getLogger(__name__)
BIND_FAILURE_REASON = "FailedToBindServicePort"  # Event reason for a port we cannot listen on


@functools.lru_cache(maxsize=1024)
def is_local_address(address: str) -> bool:
    """Loopback, or an address of one of this host's interfaces (an externalIP we can serve).

    Asking the kernel (bind a UDP socket to port 0) avoids parsing interface tables; the answer
    is cached, so a host address added later is seen only after a restart.
    """
    if model.is_loopback(address):
        return True
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class ProxyOptions:
    min_sync_interval: float = 0.05  # seconds a burst of API changes is gathered for
    retry_interval: float = 10.0  # seconds between retries of ports that failed to bind
    udp_idle_timeout: float = UDP_IDLE_TIMEOUT
    is_local: Callable[[str], bool] = is_local_address  # which addresses we may listen on
    limits: Limits | None = None  # None: from this process's RLIMIT_NOFILE at start


@dataclass
class RunningProxy:
    controller: ProxyController[Syncer]
    backend: UserspaceBackend
    task: asyncio.Task[None]

    @property
    def listening(self) -> list[ListenKey]:
        return sorted(self.controller.syncer.applied)

    @property
    def failing(self) -> dict[ListenKey, BindError]:
        return dict(self.controller.syncer.failing)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.controller.syncer.close()


async def start_proxy(client: RESTClient, options: ProxyOptions | None = None, *,
                      on_bind_failure: BindFailureHandler | None = None,
                      on_refusal: RefusalHandler | None = None) -> RunningProxy:
    """Start the proxy and return after its first full sync (see the module docstring)."""
    options = options or ProxyOptions()
    backend = UserspaceBackend(udp_idle_timeout=options.udp_idle_timeout)
    syncer = Syncer(backend, is_local=options.is_local,
                    limits=options.limits or Limits.for_open_files())
    controller = ProxyController(client, syncer, min_interval=options.min_sync_interval,
                                 retry_interval=options.retry_interval,
                                 on_bind_failure=on_bind_failure, on_refusal=on_refusal)
    running = RunningProxy(controller, backend, asyncio.create_task(controller.run()))
    synced = asyncio.create_task(controller.synced.wait())
    await asyncio.wait({synced, running.task}, return_when=asyncio.FIRST_COMPLETED)
    if not synced.done():
        synced.cancel()
        await running.close()
        running.task.result()  # raises what stopped the controller
    return running


async def run_proxy(client: RESTClient, options: ProxyOptions | None = None, *,
                    on_bind_failure: BindFailureHandler | None = None,
                    on_refusal: RefusalHandler | None = None,
                    announce: Callable[[RunningProxy], None] | None = None) -> None:
    """Run the service proxy until cancelled; `announce(running)` after the first sync."""
    running = await start_proxy(client, options, on_bind_failure=on_bind_failure,
                                on_refusal=on_refusal)
    if announce is not None:
        announce(running)
    try:
        await running.task
    finally:
        await running.close()


def bind_failure_reporter(client: RESTClient,
                          echo: Callable[[str], Any] = print) -> BindFailureHandler:
    """A callback that prints a bind failure and records it as an Event on its Service."""
    recorder = Recorder(client, "tinykube-proxy")

    async def report(error: BindError, service: Mapping[str, Any] | None) -> None:
        meta = (service or {}).get("metadata") or {}
        name = f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"
        echo(f"tinykube proxy: service {name}: {error}")
        if service is not None:
            await recorder.event(service, "Warning", BIND_FAILURE_REASON, str(error))

    return report


def refusal_reporter(client: RESTClient,
                     echo: Callable[[str], Any] = print) -> RefusalHandler:
    """A callback that prints addresses left out by the limits and records a Warning Event."""
    recorder = Recorder(client, "tinykube-proxy")

    async def report(refusal: Refusal, service: Mapping[str, Any] | None) -> None:
        echo(f"tinykube proxy: service {refusal.service}: {refusal.message}")
        if service is not None:
            await recorder.event(service, "Warning", refusal.reason, refusal.message)

    return report
