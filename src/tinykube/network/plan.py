"""The pod network of `--network netns`, as data: names and addresses, no I/O.

Every node is a network namespace (a "host") and every pod another one, as on a real cluster
with the bridge CNI plugin:

    underlay ns  <prefix>-ul     bridge ul0; one veth per node (n<i> -- the node's eth0)
    node ns      <prefix>-n<i>   eth0 100.64.0.<i+1>/16 on the underlay; bridge cni0 with the
                                 node's pod gateway 10.244.<i>.1/24; a route to every other
                                 node's pod /24 via that node's underlay address; the cluster
                                 DNS address (10.96.0.10) and the API relay's (100.64.255.254)
                                 on lo; the service range routed to cni0 from the gateway
                                 address, so the node itself reaches cluster IPs (its nftables
                                 DNAT happens on output, after the route lookup)
    pod ns       <prefix>-p<uid> eth0 10.244.<i>.<n>/24, default route via the gateway; its
                                 peer veth<uid> is a port of cni0 with hairpin on

`prefix` is `tk` and six hex digits of the data directory's hash, so several clusters (tests)
coexist and a cluster finds what an earlier run of itself left behind (a SIGKILLed `up`) and
removes it at the next start. Namespace names are kept short and interface names within the
kernel's 15 characters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress

UNDERLAY_CIDR = "100.64.0.0/16"  # node addresses (RFC 6598 shared space), only inside namespaces
# On every node's lo: where the `kubernetes` Service's endpoint points in this mode; a relay
# there forwards to the API server on the host's loopback, which no namespace can reach. The
# last address of the underlay range, which node addresses never reach (the API refuses a
# link-local endpoint address, so 169.254.x.y cannot be used).
API_RELAY_ADDRESS = "100.64.255.254"
NETNS_DIR = "/run/netns"


def cluster_prefix(data_dir: str) -> str:
    """`tk` + 6 hex digits naming this data directory's namespaces."""
    return "tk" + hashlib.sha256(data_dir.encode()).hexdigest()[:6]


@dataclasses.dataclass(frozen=True)
class NodeNetwork:
    name: str  # the Node's name
    netns: str  # its namespace's name (under /run/netns)
    underlay_if: str  # the node's veth end left in the underlay namespace
    address: str  # the node's underlay (InternalIP) address
    pod_cidr: str  # the node's pod range, e.g. 10.244.1.0/24
    gateway: str  # the bridge's address in that range (.1): the pods' default route
    routes: tuple[tuple[str, str], ...]  # (other node's pod range, its address)
    dns_address: str  # the kube-dns Service IP, on this node's lo
    service_cidr: str = ""  # routed to cni0, so that the node reaches cluster IPs

    @property
    def netns_path(self) -> str:
        return f"{NETNS_DIR}/{self.netns}"

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.pod_cidr).prefixlen


@dataclasses.dataclass(frozen=True)
class PodNetwork:
    netns: str  # the pod's namespace
    host_if: str  # its veth end on the node's bridge
    address: str
    prefixlen: int
    gateway: str

    @property
    def netns_path(self) -> str:
        return f"{NETNS_DIR}/{self.netns}"


@dataclasses.dataclass(frozen=True)
class ClusterNetwork:
    prefix: str
    underlay_netns: str
    nodes: tuple[NodeNetwork, ...]

    def node(self, name: str) -> NodeNetwork:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in this cluster's network")

    def owns(self, netns: str) -> bool:
        """True for every namespace name this cluster makes (pods' included)."""
        return netns.startswith(self.prefix + "-")


def cluster_network(prefix: str, nodes: list[str], pod_cidrs: list[str],
                    dns_address: str, service_cidr: str = "") -> ClusterNetwork:
    """The plan for `nodes`, node i getting `pod_cidrs[i]` and underlay address .i+1."""
    underlay = ipaddress.ip_network(UNDERLAY_CIDR)
    addresses = [str(underlay.network_address + i + 1) for i in range(len(nodes))]
    gateways = [str(ipaddress.ip_network(c).network_address + 1) for c in pod_cidrs]
    planned = []
    for i, (name, cidr) in enumerate(zip(nodes, pod_cidrs, strict=True)):
        routes = tuple((other, addresses[j]) for j, other in enumerate(pod_cidrs) if j != i)
        planned.append(NodeNetwork(name=name, netns=f"{prefix}-n{i}", underlay_if=f"n{i}",
                                   address=addresses[i], pod_cidr=cidr, gateway=gateways[i],
                                   routes=routes, dns_address=dns_address,
                                   service_cidr=service_cidr))
    return ClusterNetwork(prefix, f"{prefix}-ul", tuple(planned))


def joined_network(prefix: str, node: str, pod_cidr: str, address: str, underlay_netns: str,
                   dns_address: str, service_cidr: str = "") -> ClusterNetwork:
    """The plan of one node joining another cluster's underlay (`tinykube node --network
    netns`): its own namespace `<prefix>-n0` with `address` on the underlay, whose veth end
    there is `j<prefix digits>` (unique per joining data directory). Its routes to the other
    nodes' pods come from the Nodes (`routes_to_nodes`), not from the plan."""
    gateway = str(ipaddress.ip_network(pod_cidr).network_address + 1)
    joined = NodeNetwork(name=node, netns=f"{prefix}-n0", underlay_if=f"j{prefix[2:]}",
                         address=address, pod_cidr=pod_cidr, gateway=gateway, routes=(),
                         dns_address=dns_address, service_cidr=service_cidr)
    return ClusterNetwork(prefix, underlay_netns, (joined,))


def routes_to_nodes(nodes: list[tuple[str, str, str]], own: str) -> dict[str, str]:
    """Pod range -> next hop for every other node with a pod range and an underlay address:
    `nodes` are (name, podCIDR, InternalIP), as the Nodes say (flannel's host-gw routes)."""
    underlay = ipaddress.ip_network(UNDERLAY_CIDR)
    routes = {}
    for name, cidr, address in nodes:
        if name == own or not cidr or not address:
            continue
        try:
            if ipaddress.ip_address(address) not in underlay:
                continue
            routes[str(ipaddress.ip_network(cidr, strict=False))] = address
        except ValueError:
            continue
    return routes


def pod_network(node: NodeNetwork, prefix: str, uid: str, address: str) -> PodNetwork:
    """A pod's namespace and veth names (from its uid) and its address on `node`."""
    short = uid.replace("-", "")[:10]
    return PodNetwork(netns=f"{prefix}-p{short}", host_if=f"veth{short}", address=address,
                      prefixlen=node.prefixlen, gateway=node.gateway)
