"""A node's side of the pod network in the `netns` mode: a network namespace per pod.

What the bridge CNI plugin does for a kubelet: `attach` makes the pod's namespace with its
`eth0` on the node's bridge and the pod's address (`network.netns.attach_pod`), before the
first container starts; `detach` removes it once the pod is gone. The process runtime then runs
every container of the pod inside that namespace (`sandbox --netns`), so a container listening
on 0.0.0.0:8080 does not collide with another pod's, and peers see the pod's own address.

`open_connection` is for the kubelet's own connections to pods (httpGet and tcpSocket
probes): its sockets are made in the node's namespace, where pod addresses are routed, as a
kubelet on a real node connects from the node; a probe runs every period for every pod, so the
node's sockets come from one thread that stays in its namespace (`netns.SocketsIn`, made on
first use). `open_in_pod` makes them in a pod's own namespace instead, where port-forward
connects to localhost as containerd does (one short-lived thread per connection). The
namespace calls are blocking and short (a few ms at most); they run on worker threads.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

from tinykube.network import netns
from tinykube.network.plan import NodeNetwork, PodNetwork, pod_network


class PodNetworking:
    """Attaches and detaches the pods of one node."""

    def __init__(self, node: NodeNetwork, prefix: str) -> None:
        self.node = node
        self.prefix = prefix
        self._pods: dict[str, PodNetwork] = {}  # uid -> its network
        self._node_sockets: netns.SocketsIn | None = None  # made on the first probe

    def __repr__(self) -> str:
        return f"PodNetworking({self.node.name}, {self.node.pod_cidr}, pods={len(self._pods)})"

    @property
    def gateway(self) -> str:
        return self.node.gateway

    async def attach(self, uid: str, address: str) -> str:
        """Make the pod's namespace with `address`; its path, for the sandbox. A namespace an
        earlier run of this node left with that address (`netns.pod_intact`: its containers may
        run on, adopted) is kept, as a CNI's ADD for a sandbox that still exists."""
        pod = pod_network(self.node, self.prefix, uid, address)
        if not await asyncio.to_thread(netns.pod_intact, pod):
            await asyncio.to_thread(netns.attach_pod, self.node, pod)
        self._pods[uid] = pod
        return pod.netns_path

    def attached(self, uid: str) -> bool:
        return uid in self._pods

    async def detach(self, uid: str) -> None:
        pod = self._pods.pop(uid, None)
        if pod is not None:
            await asyncio.to_thread(netns.detach_pod, self.node, pod)

    def netns_of(self, uid: str) -> str | None:
        """The name of the pod's namespace, if it has one."""
        pod = self._pods.get(uid)
        return pod.netns if pod is not None else None

    async def open_connection(self, host: str, port: int, **kwargs: Any,
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """asyncio.open_connection from the node's namespace."""
        if self._node_sockets is None:
            self._node_sockets = netns.SocketsIn(self.node.netns_path)
        return await _open_in(self._node_sockets, host, port, **kwargs)

    async def open_in_pod(self, uid: str, host: str, port: int,
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """asyncio.open_connection from the pod's own namespace."""
        pod = self._pods.get(uid)
        if pod is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "the pod has no network namespace")
        path = pod.netns_path
        return await _open_in(lambda family, kind: netns.socket_in(path, family, kind), host,
                              port)

    def close(self) -> None:
        if self._node_sockets is not None:
            self._node_sockets.close()


async def _open_in(make_socket: Callable[[int, int], socket.socket], host: str, port: int,
                   **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = await asyncio.to_thread(make_socket, family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    if kwargs.get("ssl") is not None:
        kwargs.setdefault("server_hostname", host)
    return await asyncio.open_connection(sock=sock, **kwargs)
