"""NodePorts on the host's loopback in `--network netns`: a relay into one node's namespace.

In the netns mode the nftables data plane lives in the node namespaces, so `127.0.0.1:<nodePort>`
on the host (where host mode's userspace proxy listens) reaches nothing. This relay is that
userspace proxy with other listeners and another way out: for every NodePort (and
LoadBalancer) Service port it listens on `127.0.0.1:<nodePort>` in the host's namespace (TCP and
UDP), and each connection (each UDP flow) goes out from a socket made inside the relay node's
namespace (`make_socket`, `network.netns.SocketsIn`) to that node's own address and the node
port, where the node's nftables NodePort rule takes over, as for any client of the node.

The node-port semantics are therefore kube-proxy's for traffic that the node itself sends:
the connection is masqueraded and may reach an endpoint on any node, also under
`externalTrafficPolicy: Local` (kube-proxy sends a node's own traffic to a Local node port to
every endpoint, as `curl localhost:<nodePort>` on a node does). A Service without endpoints is
refused by the node (TCP reset); the relay passes the reset on.

The bookkeeping is the userspace proxy's `Syncer`: the desired table (`relay_table`, pure) is
rebuilt from the Services informer cache on every sync of the proxy controller, diffed against
what listens, and bounded by `limits.Limits` (per Service, and a budget under RLIMIT_NOFILE),
with bind failures and refusals reported as Events by the controller's callbacks. A Service
deleted or changed to ClusterIP stops its listeners at the next sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tinykube.proxy import model
from tinykube.proxy.limits import Limits
from tinykube.proxy.syncer import Syncer
from tinykube.proxy.tcp import BoundSocketFactory, SocketFactory
from tinykube.proxy.userspace import UserspaceBackend

Obj = Mapping[str, Any]
LISTEN_ADDRESS = "127.0.0.1"
OWNER = "the host's NodePort relay"


def relay_table(services: Iterable[Obj], node_address: str,
                listen: str = LISTEN_ADDRESS) -> model.Table:
    """`(listen, nodePort, protocol)` -> a rule whose one endpoint is `node_address:nodePort`."""
    table = model.Table()
    for service in sorted(services, key=model.service_key):
        spec = service.get("spec") or {}
        if not model.is_proxied(service) or spec.get("type") not in model.NODE_PORT_TYPES:
            continue
        for port in spec.get("ports") or ():
            protocol, node_port = port.get("protocol") or "TCP", port.get("nodePort")
            if protocol not in model.PROTOCOLS or not isinstance(node_port, int) \
                    or not node_port:
                continue
            key = (listen, node_port, protocol)
            rule = model.ServicePortRule(model.service_key(service), port.get("name") or "",
                                         protocol, ((node_address, node_port),))
            if key in table.rules:
                table.conflicts.append((key, rule.service))
            else:
                table.rules[key] = rule
    return table


class NodePortRelay(Syncer):
    """The `Syncer` of the relay: its table is `relay_table`, its backend makes upstream
    sockets with `make_socket` (in the node's namespace) and, given `listen_socket`, its
    listeners with it (rootless: in the host's namespace, `network.hostsockets`)."""

    def __init__(self, node_address: str, make_socket: SocketFactory, *,
                 limits: Limits | None = None, listen: str = LISTEN_ADDRESS,
                 listen_socket: BoundSocketFactory | None = None) -> None:
        super().__init__(UserspaceBackend(make_socket=make_socket,
                                          listen_socket=listen_socket),
                         limits=limits or Limits.for_open_files(owner=OWNER))
        self.node_address, self.listen = node_address, listen

    def __repr__(self) -> str:
        return f"NodePortRelay(to {self.node_address}, listening={len(self.applied)})"

    def table(self, services: Iterable[Obj], slices: Iterable[Obj]) -> model.Table:
        return relay_table(services, self.node_address, self.listen)
