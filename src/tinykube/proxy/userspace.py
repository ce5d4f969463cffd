"""The userspace forwarding backend: an asyncio listener per (ip, port, protocol).

This is kube-proxy's old `userspace` mode, the one that needs no privilege for ports >= 1024:
the proxy itself listens on every service address (cluster IPs in 127.96.0.0/16 are loopback,
so no interface or route has to be created) and copies bytes to a ready endpoint. TCP is in
`tcp.py` (spliced protocols, reset when there is no endpoint), UDP in `udp.py` (per-client flows
with an idle timeout), endpoint choice in `picker.py`.

A listener keeps its `EndpointPicker` for its whole life: `update()` only swaps the picker's
endpoints, so new connections see the change and established ones are untouched. `remove()`
stops listening; TCP connections already forwarded finish on their own, UDP flows are closed.
`close()` closes everything, resets every open connection, cancels connect tasks and waits (a
bounded time) until every socket has been released.

Upstream sockets are made by `make_socket` when the backend has one (the NodePort relay of
`--network netns` makes them in a node's network namespace, see `noderelay`).

Bind errors of any kind (EACCES for a privileged port, EADDRINUSE, EADDRNOTAVAIL) come back as
`BindError`, never as a silently missing listener.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time

from tinykube.proxy.backend import BindError
from tinykube.proxy.model import ListenKey, ServicePortRule
from tinykube.proxy.picker import Clock, EndpointPicker
from tinykube.proxy.tcp import BoundSocketFactory, Registry, SocketFactory, TCPListener, reset
from tinykube.proxy.udp import UDPListener

log = logging.getLogger(__name__)
Listener = TCPListener | UDPListener
UDP_IDLE_TIMEOUT = 30.0  # seconds, conntrack's default for unreplied UDP
CLOSE_TIMEOUT = 2.0  # seconds close() waits for aborted sockets to be released


class UserspaceBackend:
    """Implements `tinykube.proxy.backend.Backend` with real sockets."""

    def __init__(self, *, clock: Clock = time.monotonic,
                 udp_idle_timeout: float = UDP_IDLE_TIMEOUT,
                 make_socket: SocketFactory | None = None,
                 listen_socket: BoundSocketFactory | None = None) -> None:
        self.clock = clock
        self.make_socket = make_socket  # for upstream sockets; None: socket.socket
        self.listen_socket = listen_socket  # for listeners; None: the loop's own
        self.udp_idle_timeout = udp_idle_timeout
        self.listeners: dict[ListenKey, Listener] = {}
        self.registry = Registry()

    def __repr__(self) -> str:
        return f"UserspaceBackend(listeners={len(self.listeners)}, {self.registry!r})"

    @property
    def open_sockets(self) -> int:
        """Proxied TCP sockets (both halves) and UDP flow sockets currently open."""
        flows = sum(len(lst.flows) for lst in self.listeners.values()
                    if isinstance(lst, UDPListener))
        return len(self.registry.halves) + flows

    async def add(self, key: ListenKey, rule: ServicePortRule) -> None:
        if key in self.listeners:
            await self.update(key, rule)
            return
        picker = EndpointPicker(rule.endpoints, rule.affinity_timeout, clock=self.clock)
        listener: Listener
        if key[2] == "UDP":
            listener = UDPListener(key, picker, self.udp_idle_timeout, self.make_socket,
                                   self.listen_socket)
        else:
            listener = TCPListener(key, picker, self.registry, self.make_socket,
                                   self.listen_socket)
        try:
            await listener.start()
        except OSError as error:
            listener.close()
            raise BindError(key, error.errno or errno.EINVAL) from error
        self.listeners[key] = listener
        log.debug("listening on %s:%d/%s for %s", *key, rule.service)

    async def update(self, key: ListenKey, rule: ServicePortRule) -> None:
        self.listeners[key].picker.update(rule.endpoints, rule.affinity_timeout)

    async def remove(self, key: ListenKey) -> None:
        listener = self.listeners.pop(key, None)
        if listener is not None:
            listener.close()

    async def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        for task in list(self.registry.tasks):
            task.cancel()
        await asyncio.gather(*self.registry.tasks, return_exceptions=True)
        for half in list(self.registry.halves):
            if half.transport is not None and not half.lost:
                reset(half.transport)
        try:
            await asyncio.wait_for(self.registry.idle.wait(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("%r: some connections did not close in %.0fs", self, CLOSE_TIMEOUT)
