"""The nftables data plane for one node, as text: service ports in, an `nft -f` script out.

Pure (no I/O). `render(ports, node)` turns `ports.ServicePort`s into a `Ruleset` for one node;
`full_script(ruleset)` is the transaction that replaces the node's table at once, and
`update_script(old, new)` the one that turns `old` into `new` by element adds and deletes
(plus new or dropped per-service chains, for the few services that need them).

The layout is the trial's flat map (../shared/docs/runtime-network-trial.md, part B), not
kube-proxy's chain per service and per endpoint, whose per-service anonymous verdict maps nft
1.0.6 loads super-linearly (112 s at 10,000 Services against 4 s), with one change: a map per
endpoint count instead of 16 buckets for every port (8 times fewer elements for 2 endpoints,
and an exact share for any count):

    backends-<n>        ip daddr . l4proto . dport . (numgen random mod n) -> endpoint ip . port,
                        for the ports with n endpoints (n = 1..16); one DNAT rule per map serves
                        every plain cluster IP and external IP (a lookup that misses falls
                        through to the next, on a connection's first packet only)
    nodeport-backends-<n>  l4proto . dport . (numgen random mod n) -> endpoint, for every local
                        node address
    service-ips,        verdict maps to per-service chains, for what one map cannot say:
    service-nodeports   ClientIP affinity (kube-proxy's per-endpoint dynamic sets with the
                        timeout, checked first), more than 16 endpoints (an exact
                        `numgen random mod N` map), and `externalTrafficPolicy: Local`
    no-endpoint-*       service port -> `goto reject-chain` (no endpoint at all: TCP reset,
                        ICMP port unreachable for UDP, at once) or `drop` (a Local policy with
                        endpoints only on other nodes), checked before DNAT as kube-proxy does
    cluster-ips         allocated cluster IPs: other ports of them are rejected, the rest of the
                        service range dropped; both after DNAT on output (priority -90), and
                        never the addresses the node serves itself (the cluster DNS)
    hairpin             endpoint . endpoint: a pod reaching itself through its Service is
                        masqueraded (its bridge port has hairpin on)

Masquerade follows kube-proxy: cluster-IP traffic from outside the pod range, all node-port and
external-IP traffic under `externalTrafficPolicy: Cluster`, and under `Local` only the node's own
traffic (pods' traffic to an external destination is sent to the cluster endpoints unmasked, the
"short-circuit"; traffic from elsewhere keeps its source and reaches only this node's endpoints).
Marked packets (0x4000, kube-proxy's bit) are masqueraded in postrouting.

Chains are named after a hash of what they contain, so a chain never changes: an update adds
the new chains, repoints the map elements and flushes and deletes the old ones. nft 1.0.6 cannot
`flush table` once the concatenated DNAT rule exists (it cannot parse it back), hence the full
load as `add table` + `delete table` + definitions in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from tinykube.proxy.ports import Choice, Endpoint, ServicePort, choose

TABLE = "tinykube"
MAX_FLAT = 16  # ports with more endpoints get a chain of their own
FLAT = range(1, MAX_FLAT + 1)
MASQ_MARK = "0x4000"
REJECT = "goto reject-chain"
DROP = "drop"
CHUNK = 1000  # elements per `add element` line in a full load


@dataclass(frozen=True)
class NodeConfig:
    node: str  # the Node's name (local endpoints are those with this nodeName)
    pod_cidr: str  # the cluster's pod range
    service_cidr: str
    served: tuple[str, ...] = ()  # service-range addresses the node answers itself (DNS)
    table: str = TABLE


Key = tuple[str, str]  # (set or map name, element key)


@dataclass
class Ruleset:
    """What one node's table holds besides its fixed skeleton."""

    node: NodeConfig
    elements: dict[Key, str] = field(default_factory=dict)  # value "" for set elements
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> rules
    sets: dict[str, str] = field(default_factory=dict)  # name -> definition
    # UDP destinations -> the endpoint IPs they are DNATed to, for flushing stale conntrack
    # entries: (cluster or external IP, port), or ("", node port)
    udp: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict)


def content_hash(*parts: object) -> str:
    """A short name suffix for what `parts` hold (chains and sets are named after it)."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return base64.b32encode(digest).decode()[:10].lower()


def skeleton(node: NodeConfig) -> list[str]:
    """The fixed part of the table: maps, sets, base chains and their rules."""
    t, pods, services = f"ip {node.table}", node.pod_cidr, node.service_cidr
    lines = [
        f"add table {t}", f"delete table {t}", f"add table {t}",
        *(f"add map {t} backends-{n} {{ typeof ip daddr . meta l4proto . th dport . numgen "
          f"random mod {n} : ip daddr . th dport ; }}" for n in FLAT),
        *(f"add map {t} nodeport-backends-{n} {{ typeof meta l4proto . th dport . numgen "
          f"random mod {n} : ip daddr . th dport ; }}" for n in FLAT),
        f"add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; }}",
        f"add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : "
        "verdict ; }",
        f"add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; }}",
        f"add set {t} cluster-ips {{ type ipv4_addr ; }}",
        f"add set {t} served {{ type ipv4_addr ; }}",
        f"add set {t} masq-external {{ type ipv4_addr . inet_proto . inet_service ; }}",
        f"add set {t} masq-nodeports {{ type inet_proto . inet_service ; }}",
        f"add set {t} hairpin {{ type ipv4_addr . ipv4_addr ; }}",
        f"add chain {t} reject-chain",
        f"add rule {t} reject-chain meta l4proto tcp reject with tcp reset",
        f"add rule {t} reject-chain reject",
        f"add chain {t} nodeports",
        f"add rule {t} nodeports meta l4proto . th dport @masq-nodeports "
        f"meta mark set meta mark or {MASQ_MARK}",
        f"add rule {t} nodeports meta l4proto . th dport vmap @service-nodeports",
        *(f"add rule {t} nodeports meta l4proto {{ tcp, udp }} dnat ip to meta l4proto . "
          f"th dport . numgen random mod {n} map @nodeport-backends-{n}" for n in FLAT),
        f"add chain {t} services",
        f"add rule {t} services ip saddr != {pods} ip daddr @cluster-ips "
        f"meta mark set meta mark or {MASQ_MARK}",
        f"add rule {t} services ip daddr . meta l4proto . th dport @masq-external "
        f"meta mark set meta mark or {MASQ_MARK}",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        *(f"add rule {t} services meta l4proto {{ tcp, udp }} dnat ip to ip daddr . "
          f"meta l4proto . th dport . numgen random mod {n} map @backends-{n}" for n in FLAT),
        f"add rule {t} services fib daddr type local ip daddr != 127.0.0.0/8 jump nodeports",
        f"add chain {t} endpoints-check",
        f"add rule {t} endpoints-check ip daddr . meta l4proto . th dport "
        "vmap @no-endpoint-services",
        f"add chain {t} nodeport-endpoints-check",
        f"add rule {t} nodeport-endpoints-check fib daddr type local ip daddr != 127.0.0.0/8 "
        "meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add chain {t} cluster-ips-check",
        f"add rule {t} cluster-ips-check ip daddr @served return",
        f"add rule {t} cluster-ips-check ip daddr @cluster-ips {REJECT}",
        f"add rule {t} cluster-ips-check ip daddr {services} drop",
    ]
    base = {
        "nat-prerouting": ("nat", "prerouting", "dstnat", ["jump services"]),
        "nat-output": ("nat", "output", "-100", ["jump services"]),
        "nat-postrouting": ("nat", "postrouting", "srcnat", [
            "ct status dnat ip saddr . ip daddr @hairpin masquerade",
            f"meta mark and {MASQ_MARK} == {MASQ_MARK} meta mark set meta mark xor {MASQ_MARK} "
            "masquerade fully-random"]),
        "filter-forward": ("filter", "forward", "-110", [
            "ct state new jump endpoints-check", "ct state new jump cluster-ips-check"]),
        "filter-input": ("filter", "input", "-110", [
            "ct state new jump nodeport-endpoints-check", "ct state new jump endpoints-check"]),
        "filter-output": ("filter", "output", "-110", ["ct state new jump endpoints-check"]),
        "filter-output-post-dnat": ("filter", "output", "-90", [
            "ct state new jump cluster-ips-check"]),
    }
    for name, (kind, hook, priority, rules) in base.items():
        lines.append(f"add chain {t} {name} {{ type {kind} hook {hook} priority {priority} ; "
                     "policy accept ; }")
        lines += [f"add rule {t} {name} {rule}" for rule in rules]
    if node.served:
        lines.append(f"add element {t} served {{ {', '.join(node.served)} }}")
    return lines


# --- one service port on one node -------------------------------------------------------------

class _Builder:
    """Collects one node's elements, chains and sets while the ports are rendered."""

    def __init__(self, node: NodeConfig) -> None:
        self.rules = Ruleset(node)

    def element(self, where: str, key: str, value: str = "") -> None:
        self.rules.elements[(where, key)] = value

    def chain(self, prefix: str, rules: list[str]) -> str:
        name = f"{prefix}-{content_hash(*rules)}"
        self.rules.chains[name] = tuple(rules)
        return name

    def pick(self, port: ServicePort, endpoints: tuple[Endpoint, ...]) -> str:
        """A chain that DNATs to one of `endpoints` (sticky with ClientIP affinity)."""
        proto = port.protocol.lower()
        if port.affinity_timeout is None:
            if len(endpoints) == 1:
                return self.chain("svc", [_dnat(proto, endpoints[0])])
            choices = ", ".join(f"{i} : {e.ip} . {e.port}" for i, e in enumerate(endpoints))
            return self.chain("svc", [f"meta l4proto {proto} dnat ip to numgen random mod "
                                      f"{len(endpoints)} map {{ {choices} }}"])
        rules, targets, timeout = [], [], port.affinity_timeout
        for endpoint in endpoints:
            # the timeout is part of the name: a set's timeout cannot be changed in place
            sticky = "aff-" + content_hash(port.service, port.port_name, proto, endpoint,
                                           timeout)
            self.rules.sets[sticky] = (f"type ipv4_addr ; flags dynamic,timeout ; "
                                       f"timeout {timeout}s ;")
            target = self.chain("ep", [f"update @{sticky} {{ ip saddr }} "
                                       f"{_dnat(proto, endpoint)}"])
            rules.append(f"ip saddr @{sticky} goto {target}")
            targets.append(target)
        if len(targets) == 1:
            rules.append(f"goto {targets[0]}")
        else:
            choices = ", ".join(f"{i} : goto {c}" for i, c in enumerate(targets))
            rules.append(f"numgen random mod {len(targets)} vmap {{ {choices} }}")
        return self.chain("svc", rules)

    def simple(self, port: ServicePort, endpoints: tuple[Endpoint, ...]) -> bool:
        return port.affinity_timeout is None and len(endpoints) <= MAX_FLAT

    def hairpin(self, endpoints: Iterable[Endpoint]) -> None:
        for endpoint in endpoints:
            self.element("hairpin", f"{endpoint.ip} . {endpoint.ip}")

    def udp(self, port: ServicePort, address: str, number: int,
            endpoints: tuple[Endpoint, ...]) -> None:
        if port.protocol == "UDP":
            self.rules.udp[(address, number)] = frozenset(e.ip for e in endpoints)


def _dnat(proto: str, endpoint: Endpoint) -> str:
    return f"meta l4proto {proto} dnat ip to {endpoint.ip}:{endpoint.port}"


def _cluster_ip(b: _Builder, port: ServicePort, ip: str, choice: Choice) -> None:
    proto = port.protocol.lower()
    key = f"{ip} . {proto} . {port.port}"
    b.element("cluster-ips", ip)
    if not choice.internal:
        b.element("no-endpoint-services", key, DROP if choice.has_endpoints else REJECT)
        b.udp(port, ip, port.port, ())
        return
    _to(b, port, "backends", "service-ips", key, choice.internal)
    b.udp(port, ip, port.port, choice.internal)


def _to(b: _Builder, port: ServicePort, flat: str, vmap: str, key: str,
        endpoints: tuple[Endpoint, ...]) -> None:
    """Send `key` to `endpoints`: elements of `flat`-<count>, or a chain from `vmap`."""
    if b.simple(port, endpoints):
        for i, endpoint in enumerate(endpoints):
            b.element(f"{flat}-{len(endpoints)}", f"{key} . {i}",
                      f"{endpoint.ip} . {endpoint.port}")
    else:
        b.element(vmap, key, f"goto {b.pick(port, endpoints)}")
    b.hairpin(endpoints)


def _external_local(b: _Builder, port: ServicePort, choice: Choice) -> str:
    """kube-proxy's external chain for `externalTrafficPolicy: Local`."""
    rules = []
    if choice.cluster:
        cluster = b.pick(port, choice.cluster)
        b.hairpin(choice.cluster)
        rules += [f"ip saddr {b.rules.node.pod_cidr} goto {cluster}",  # short-circuit pods
                  f"fib saddr type local meta mark set meta mark or {MASQ_MARK} goto {cluster}"]
    if choice.local:
        rules.append(f"goto {b.pick(port, choice.local)}")
        b.hairpin(choice.local)
    return b.chain("ext", rules)


def _external(b: _Builder, port: ServicePort, key: str, choice: Choice, *, node_port: bool
              ) -> None:
    """One external destination (an external IP's or the node port's key)."""
    flat, vmap, masq, check = ("nodeport-backends", "service-nodeports", "masq-nodeports",
                               "no-endpoint-nodeports") if node_port else (
        "backends", "service-ips", "masq-external", "no-endpoint-services")
    if choice.has_endpoints:
        if port.external_local:
            b.element(vmap, key, f"goto {_external_local(b, port, choice)}")
        else:
            b.element(masq, key)
            _to(b, port, flat, vmap, key, choice.external)
    if not choice.external:
        b.element(check, key, DROP if choice.has_endpoints else REJECT)


def _port(b: _Builder, port: ServicePort) -> None:
    node = b.rules.node
    choice = choose(port, node.node)
    proto = port.protocol.lower()
    for ip in port.cluster_ips:
        if ip not in node.served:
            _cluster_ip(b, port, ip, choice)
    reach = choice.external if not port.external_local else choice.cluster + choice.local
    for ip in port.external_ips:
        if ip not in node.served:
            _external(b, port, f"{ip} . {proto} . {port.port}", choice, node_port=False)
            b.udp(port, ip, port.port, reach if choice.has_endpoints else ())
    if port.node_port is not None:
        _external(b, port, f"{proto} . {port.node_port}", choice, node_port=True)
        b.udp(port, "", port.node_port, reach if choice.has_endpoints else ())


def render(ports: Iterable[ServicePort], node: NodeConfig) -> Ruleset:
    """The node's ruleset for these service ports (see the module docstring)."""
    builder = _Builder(node)
    for port in ports:
        _port(builder, port)
    return builder.rules


# --- scripts ---------------------------------------------------------------------------------

def _element_lines(table: str, verb: str, items: Iterable[tuple[Key, str]], *,
                   values: bool = True) -> list[str]:
    grouped: dict[str, list[str]] = {}  # in rendering order: Services sorted, endpoints
    for (where, key), value in items:
        grouped.setdefault(where, []).append(f"{key} : {value}" if value and values else key)
    lines = []
    for where, entries in sorted(grouped.items()):
        for start in range(0, len(entries), CHUNK):
            chunk = ",\n\t".join(entries[start:start + CHUNK])
            lines.append(f"{verb} element ip {table} {where} {{\n\t{chunk}\n}}")
    return lines


def _chain_lines(table: str, chains: dict[str, tuple[str, ...]]) -> list[str]:
    """Every chain first, then their rules (a rule may jump to a chain named later)."""
    lines = [f"add chain ip {table} {name}" for name in sorted(chains)]
    for name in sorted(chains):
        lines += [f"add rule ip {table} {name} {rule}" for rule in chains[name]]
    return lines


def _set_lines(table: str, sets: dict[str, str]) -> list[str]:
    return [f"add set ip {table} {name} {{ {sets[name]} }}" for name in sorted(sets)]


def definition_lines(rules: Ruleset) -> list[str]:
    """The sets, chains and elements of `rules`, to follow a table's skeleton."""
    table = rules.node.table
    return [*_set_lines(table, rules.sets), *_chain_lines(table, rules.chains),
            *_element_lines(table, "add", rules.elements.items())]


def full_script(rules: Ruleset) -> str:
    """Replace the node's table with `rules`, in one transaction."""
    return "\n".join([*skeleton(rules.node), *definition_lines(rules)]) + "\n"


def update_script(old: Ruleset, new: Ruleset) -> str:
    """Turn the applied `old` into `new` (same node): element changes, new and old chains.
    Empty when nothing changed."""
    table = new.node.table
    gone = {k: v for k, v in old.elements.items() if new.elements.get(k) != v}
    came = {k: v for k, v in new.elements.items() if old.elements.get(k) != v}
    new_chains = {n: r for n, r in new.chains.items() if n not in old.chains}
    old_chains = sorted(n for n in old.chains if n not in new.chains)
    new_sets = {n: d for n, d in new.sets.items() if old.sets.get(n) != d}
    old_sets = sorted(n for n, d in old.sets.items() if new.sets.get(n) != d)
    lines = [*_set_lines(table, new_sets), *_chain_lines(table, new_chains),
             *_element_lines(table, "delete", gone.items(), values=False),
             *_element_lines(table, "add", came.items())]
    lines += [f"flush chain ip {table} {name}" for name in old_chains]
    lines += [f"delete chain ip {table} {name}" for name in old_chains]
    lines += [f"delete set ip {table} {name}" for name in old_sets]
    return "\n".join(lines) + "\n" if lines else ""


def stale_udp(old: Ruleset, new: Ruleset) -> list[tuple[str, int, str]]:
    """UDP conntrack entries to delete after `old` -> `new`, as (destination IP or "" for a
    node port, port, endpoint IP or "" for every entry of that destination): flows to a removed
    endpoint, and every flow of a destination that had no endpoint and now has some."""
    stale = []
    for (ip, number), before in sorted(old.udp.items()):
        after = new.udp.get((ip, number), frozenset())
        stale += [(ip, number, endpoint) for endpoint in sorted(before - after)]
    for (ip, number), after in sorted(new.udp.items()):
        if after and not old.udp.get((ip, number), frozenset()):
            stale.append((ip, number, ""))
    return stale
