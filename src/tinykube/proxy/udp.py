"""UDP forwarding: one upstream socket per client flow, closed after an idle timeout.

The listener is a datagram endpoint on the service address. The first datagram from a client
address `(ip, port)` picks an endpoint and opens a flow: a non-blocking UDP socket connected to
that endpoint, read with `loop.add_reader` (connecting a UDP socket is synchronous, so the first
datagram is forwarded at once, without a task). Replies from the endpoint are sent back from the
service address to the client. Each datagram in either direction refreshes the flow; a flow idle
for `idle_timeout` seconds (loop time) is closed, as conntrack forgets UDP entries. Endpoint
changes apply to new flows only. With no endpoint the datagram is dropped (a userspace proxy
cannot send the ICMP port-unreachable that kube-proxy's REJECT would). A listener given
`make_socket(family, kind)` makes its flows' sockets with it (the NodePort relay of
`--network netns`: inside a node's network namespace).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from tinykube.proxy.model import Endpoint, ListenKey
from tinykube.proxy.picker import EndpointPicker

log = logging.getLogger(__name__)
Address = tuple[str, int]
MAX_DATAGRAM = 65535
READS_PER_WAKEUP = 64  # datagrams drained per readable event before yielding to the loop


class UDPFlow:
    """One client address talking to one endpoint through its own socket."""

    def __init__(self, listener: UDPListener, client: Address, endpoint: Endpoint) -> None:
        self.listener, self.client, self.endpoint = listener, client, endpoint
        self.loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
        self.sock = (listener.make_socket or socket.socket)(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(endpoint)
        except OSError:
            self.sock.close()
            raise
        self.last_used = self.loop.time()
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.timer = self.loop.call_later(listener.idle_timeout, self._check_idle)

    def __repr__(self) -> str:
        return f"UDPFlow({self.client} -> {self.endpoint})"

    def send(self, data: bytes) -> None:
        self.last_used = self.loop.time()
        try:
            self.sock.send(data)
        except BlockingIOError:
            pass  # the socket buffer is full: drop, as the network would
        except OSError as error:  # e.g. ICMP port unreachable from an earlier datagram
            log.debug("%r: send failed: %s", self, error)

    def _readable(self) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as error:
                log.debug("%r: receive failed: %s", self, error)
                return
            self.last_used = self.loop.time()
            self.listener.reply(data, self.client)

    def _check_idle(self) -> None:
        idle_for = self.loop.time() - self.last_used
        remaining = self.listener.idle_timeout - idle_for
        if remaining > 0:
            self.timer = self.loop.call_later(remaining, self._check_idle)
        else:
            self.close()

    def close(self) -> None:
        self.timer.cancel()
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
        self.listener.flows.pop(self.client, None)


class UDPListener(asyncio.DatagramProtocol):
    """The datagram endpoint on the service address, demultiplexing clients into flows."""

    def __init__(self, key: ListenKey, picker: EndpointPicker, idle_timeout: float,
                 make_socket: Callable[[int, int], socket.socket] | None = None,
                 listen_socket: Callable[[int, int, tuple[str, int]], socket.socket] | None
                 = None) -> None:
        self.key, self.picker, self.idle_timeout = key, picker, idle_timeout
        self.make_socket = make_socket
        self.listen_socket = listen_socket  # (see tcp.BoundSocketFactory)
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Address, UDPFlow] = {}

    def __repr__(self) -> str:
        ip, port, _ = self.key
        return f"UDPListener({ip}:{port}, flows={len(self.flows)}, {self.picker!r})"

    async def start(self) -> None:
        ip, port, _ = self.key
        if self.listen_socket is not None:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sock = self.listen_socket(family, socket.SOCK_DGRAM, (ip, port))
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)
            return
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=(ip, port))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass before 3.12

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        client = (str(addr[0]), int(str(addr[1])))
        flow = self.flows.get(client)
        if flow is None:
            flow = self._open(client)
            if flow is None:
                return
        flow.send(data)

    def _open(self, client: Address) -> UDPFlow | None:
        endpoint = self.picker.pick(client[0])
        if endpoint is None:
            return None
        try:
            flow = UDPFlow(self, client, endpoint)
        except OSError as error:
            log.warning("%r: cannot open a flow to %s:%d: %s", self, *endpoint, error)
            return None
        self.flows[client] = flow
        return flow

    def reply(self, data: bytes, client: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)

    def close(self) -> None:
        """Stop listening and close every flow."""
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
