"""NetworkPolicy as nftables rules for one node: policies, pods and namespaces in, a `Ruleset`.

Pure (no I/O), like `nftables`, whose `Ruleset` and `update_script` it reuses: a full load
replaces the node's `tinykube-netpol` table in one transaction (`full_script`), and later syncs
send only element changes and the few chains that changed. The table stands beside the service
table and never touches it:

    forward (filter, priority 0)   ct state established,related accept
                                   ip saddr . ip daddr @self accept   (a pod reaching itself)
                                   ip saddr vmap @egress-pods     (jump: egress chain of the pod)
                                   ip daddr vmap @ingress-pods    (jump: ingress chain of the pod)
    input   (filter, priority 0)   ct state established,related accept
                                   ip daddr != @served accept     (the pod's node: always)
                                   ip saddr vmap @egress-pods

The forward hook runs after the service table's DNAT (prerouting), so ingress is judged on the
real pod address and port behind a Service, as CNIs do; bridged traffic between pods of one
node passes it too (`bridge-nf-call-iptables=1`). As kube documents, a pod cannot block access
to itself (through its own Service: `self` holds `ip . ip` of every isolated pod), and traffic
between a pod and its own node is always allowed: the node's traffic to its pods (the output
hook) is never filtered, nor a pod's traffic to its node's addresses (input), except to the
addresses the node serves for the cluster (`served`: the cluster DNS on 10.96.0.10, which
answers inside the node namespace but stands for the kube-dns pods): DNS is allowed only when
a policy allows it, as with a real CNI.

Maps and sets are keyed by pod IP, so pod churn is element updates:

    ingress-pods, egress-pods   local pod IP -> `jump` its chain, for each pod of this node that
                                a policy of that direction selects (no element: not isolated)
    peers-<rule>                the sources (ingress) or destinations (egress) one rule allows:
                                the pod IPs its selectors match, cluster-wide, and its ipBlocks
                                minus their `except`s, collapsed into disjoint prefixes (an
                                interval set refuses overlaps)
    eports-<rule>               egress named ports, resolved per destination pod: pod IP .
                                protocol . port of each peer pod that has a container port of
                                that name

A pod's chain (`ingress-<hash>` / `egress-<hash>`, named after its rules, so pods with the same
rules share one and a chain never changes) holds one `return` rule per allowing rule of every
policy that selects it, then `drop`: default deny once selected, the union of the policies'
rules. Ingress named ports are resolved against the pod the chain belongs to and written in it.
A rule without ports allows every protocol; `endPort` is a range; TCP, UDP and SCTP are matched
as `meta l4proto P th dport {...}`. A rule without peers allows any address.

The cluster DNS has no pod in tinykube: it is given as a peer of its own (`dns_peer`, from the
`kube-system/kube-dns` Service: its selector as labels, its ports by name), so the usual
"allow UDP and TCP 53 to `k8s-app: kube-dns` in `kube-system`" rule allows it, and so does an
ipBlock that holds 10.96.0.10 or a rule without peers.

Not modelled: IPv6 (the pod network is IPv4; IPv6 ipBlocks are ignored), host-network pods
(never selected nor peers, as kube leaves them undefined), and named ports towards an ipBlock
(no pod to resolve them against: they match nothing).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tinykube.api import selectors
from tinykube.proxy.nftables import NodeConfig, Ruleset, content_hash, definition_lines

TABLE = "tinykube-netpol"
DNS_NAMESPACE, DNS_SERVICE = "kube-system", "kube-dns"
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_TERMINAL = ("Succeeded", "Failed")

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Pod:
    """What policies need of a pod (or of the cluster DNS, which stands in for its pods)."""

    namespace: str
    name: str
    ip: str
    node: str
    labels: tuple[tuple[str, str], ...] = ()
    ports: tuple[tuple[str, str, int], ...] = ()  # (container port name, protocol, number)

    def port(self, name: str, protocol: str) -> int | None:
        return next((n for p_name, proto, n in self.ports
                     if p_name == name and proto == protocol), None)


def pods_of(objs: Iterable[Obj]) -> list[Pod]:
    """The pods that take part: an IPv4 pod IP, not host-network, not finished."""
    pods = []
    for obj in objs:
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, \
            obj.get("status") or {}
        ip = status.get("podIP")
        if not ip or spec.get("hostNetwork") or status.get("phase") in _TERMINAL:
            continue
        if ipaddress.ip_address(ip).version != 4:
            continue
        ports = tuple(sorted(
            (str(p["name"]), str(p.get("protocol") or "TCP"), int(p["containerPort"]))
            for c in spec.get("containers") or () for p in c.get("ports") or ()
            if p.get("name") and isinstance(p.get("containerPort"), int)))
        pods.append(Pod(meta.get("namespace", ""), meta.get("name", ""), ip,
                        spec.get("nodeName") or "",
                        tuple(sorted((meta.get("labels") or {}).items())), ports))
    return sorted(pods, key=lambda p: (p.namespace, p.name))


def dns_peer(services: Iterable[Obj], address: str) -> Pod | None:
    """The cluster DNS as a peer: `kube-system/kube-dns`'s selector as its labels, its ports by
    name (the target port when numeric), at the address the nodes serve it on."""
    for svc in services:
        meta = svc.get("metadata") or {}
        if (meta.get("namespace"), meta.get("name")) != (DNS_NAMESPACE, DNS_SERVICE):
            continue
        spec = svc.get("spec") or {}
        ports = tuple(sorted(
            (str(p["name"]), str(p.get("protocol") or "TCP"),
             int(p["targetPort"]) if isinstance(p.get("targetPort"), int) else int(p["port"]))
            for p in spec.get("ports") or () if p.get("name")))
        return Pod(DNS_NAMESPACE, "(cluster DNS)", address, "",
                   tuple(sorted((spec.get("selector") or {}).items())), ports)
    return None


def namespace_labels(objs: Iterable[Obj]) -> dict[str, dict[str, str]]:
    return {(o.get("metadata") or {}).get("name", ""): dict((o.get("metadata") or {}).get(
        "labels") or {}) for o in objs}


# --- policies --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    key: str  # stable name of the rule: its sets are named after it
    peers: tuple[Obj, ...] | None  # None: any address
    ports: tuple[Obj, ...]  # (): every port and protocol


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    selector: Obj
    ingress: tuple[Rule, ...] | None  # None: the policy has no Ingress type
    egress: tuple[Rule, ...] | None


def _rules(policy_key: str, direction: str, spec: Obj, peers_field: str
           ) -> tuple[Rule, ...]:
    rules = []
    for i, rule in enumerate(spec.get(direction) or ()):
        rule = rule or {}
        peers = tuple(rule.get(peers_field) or ()) or None
        ports = tuple(rule.get("ports") or ())
        content = json.dumps([policy_key, direction, i, peers, ports], sort_keys=True)
        rules.append(Rule(content_hash(content), peers, ports))
    return tuple(rules)


def policies_of(objs: Iterable[Obj]) -> list[Policy]:
    policies = []
    for obj in objs:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        key = f"{namespace}/{name}"
        types = spec.get("policyTypes") or (
            ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
        policies.append(Policy(
            namespace, name, spec.get("podSelector") or {},
            _rules(key, "ingress", spec, "from") if "Ingress" in types else None,
            _rules(key, "egress", spec, "to") if "Egress" in types else None))
    return sorted(policies, key=lambda p: (p.namespace, p.name))


def _selector(selector: Obj | None) -> selectors.Selector | None:
    """The parsed label selector (None: one that cannot be read, which selects nothing; the
    API validated it)."""
    try:
        return selectors.from_label_selector(selector)
    except (KeyError, ValueError, TypeError):
        return None


def _matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    parsed = _selector(selector)
    return parsed is not None and selectors.match_labels(parsed, labels)


# --- peers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _World:
    pods: tuple[Pod, ...]  # every pod of the cluster, with the DNS peer (destinations only)
    namespaces: Mapping[str, Mapping[str, str]]

    def peer_pods(self, policy: Policy, peer: Obj) -> list[Pod]:
        pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
        if pod_sel is None and ns_sel is None:
            return []
        pods = None if pod_sel is None else _selector(pod_sel)
        if ns_sel is None:
            scope = {policy.namespace}
        else:
            parsed = _selector(ns_sel)
            scope = {name for name, labels in self.namespaces.items()
                     if parsed is not None and selectors.match_labels(parsed, labels)}
            if parsed is not None and not parsed:  # {}: every namespace, listed or not
                scope |= {pod.namespace for pod in self.pods}
        if pod_sel is not None and pods is None:
            return []
        return [pod for pod in self.pods if pod.namespace in scope
                and (pods is None or selectors.match_labels(pods, dict(pod.labels)))]


def _ip_block(block: Obj) -> list[ipaddress.IPv4Network]:
    try:
        network = ipaddress.ip_network(block.get("cidr", ""), strict=False)
    except ValueError:
        return []
    if not isinstance(network, ipaddress.IPv4Network):
        return []
    remaining = [network]
    for text in block.get("except") or ():
        try:
            excluded = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if not isinstance(excluded, ipaddress.IPv4Network):
            continue
        kept: list[ipaddress.IPv4Network] = []
        for net in remaining:
            if excluded.subnet_of(net):
                kept += net.address_exclude(excluded)
            elif not net.subnet_of(excluded):
                kept.append(net)
        remaining = kept
    return remaining


def _peer_elements(world: _World, policy: Policy, rule: Rule) -> tuple[list[str], list[Pod]]:
    """The rule's peer set (collapsed prefixes) and the peer pods (for named ports)."""
    networks: list[ipaddress.IPv4Network] = []
    pods: dict[str, Pod] = {}
    for peer in rule.peers or ():
        if peer.get("ipBlock") is not None:
            networks += _ip_block(peer["ipBlock"])
        for pod in world.peer_pods(policy, peer):
            pods.setdefault(pod.ip, pod)
    networks += [ipaddress.IPv4Network(ip) for ip in pods]
    elements = [str(n.network_address) if n.prefixlen == 32 else str(n)
                for n in ipaddress.collapse_addresses(networks)]
    return elements, [pods[ip] for ip in sorted(pods)]


# --- ports ----------------------------------------------------------------------------------

def _port_matches(ports: Sequence[Obj], resolve: Any) -> list[str] | None:
    """`meta l4proto P [th dport {...}]` expressions for `ports` (None: every port), with named
    ports resolved by `resolve(name, protocol)` (None when the name is unknown). Empty when
    every entry names a port that does not resolve: the rule then allows nothing."""
    if not ports:
        return None
    by_proto: dict[str, list[str]] = {}
    whole: set[str] = set()
    for port in ports:
        proto = str(port.get("protocol") or "TCP")
        if proto not in _PROTOCOLS:
            continue
        number, end = port.get("port"), port.get("endPort")
        if number is None:
            whole.add(proto)
            continue
        if isinstance(number, str):
            number = resolve(number, proto)
            if number is None:
                continue
            end = None
        text = f"{number}-{end}" if isinstance(end, int) and end > number else str(number)
        if text not in by_proto.setdefault(proto, []):
            by_proto[proto].append(text)
    matches = [f"meta l4proto {p.lower()}" for p in _PROTOCOLS if p in whole]
    for proto in _PROTOCOLS:
        if proto in by_proto and proto not in whole:
            matches.append(f"meta l4proto {proto.lower()} th dport "
                           f"{{ {', '.join(by_proto[proto])} }}")
    return matches


def _named_only(ports: Sequence[Obj]) -> list[Obj]:
    return [p for p in ports if isinstance(p.get("port"), str)]


# --- rendering --------------------------------------------------------------------------------

class _Builder:
    def __init__(self, node: NodeConfig, world: _World) -> None:
        self.rules = Ruleset(node)
        self.world = world
        self.peer_pods: dict[str, list[Pod]] = {}  # rule key -> its peer pods

    def peers(self, policy: Policy, rule: Rule) -> tuple[str, list[Pod]]:
        """The name of the rule's peer set (defined and filled here once), its peer pods."""
        name = f"peers-{rule.key}"
        if rule.key not in self.peer_pods:
            elements, self.peer_pods[rule.key] = _peer_elements(self.world, policy, rule)
            self.rules.sets[name] = "type ipv4_addr ; flags interval ;"
            for element in elements:
                self.rules.elements[(name, element)] = ""
        return name, self.peer_pods[rule.key]

    def egress_named(self, rule: Rule, pods: Iterable[Pod]) -> str | None:
        named = _named_only(rule.ports)
        if not named:
            return None
        name = f"eports-{rule.key}"
        if name not in self.rules.sets:
            self.rules.sets[name] = "type ipv4_addr . inet_proto . inet_service ;"
            for pod in pods:
                for port in named:
                    proto = str(port.get("protocol") or "TCP")
                    number = pod.port(str(port["port"]), proto)
                    if number is not None and proto in _PROTOCOLS:
                        self.rules.elements[(name, f"{pod.ip} . {proto.lower()} . {number}")] = ""
        return name

    def ingress_rules(self, policy: Policy, rule: Rule, pod: Pod) -> list[str]:
        source = ""
        if rule.peers is not None:
            source = f"ip saddr @{self.peers(policy, rule)[0]} "
        matches = _port_matches(rule.ports, pod.port)
        if matches is None:
            return [f"{source}return"]
        return [f"{source}{m} return" for m in matches]

    def egress_rules(self, policy: Policy, rule: Rule) -> list[str]:
        target, pods = "", list(self.world.pods)
        if rule.peers is not None:
            name, pods = self.peers(policy, rule)
            target = f"ip daddr @{name} "
        matches = _port_matches(rule.ports, lambda _name, _proto: None)
        if matches is None:
            return [f"{target}return"]
        lines = [f"{target}{m} return" for m in matches]
        named = self.egress_named(rule, pods)
        if named is not None:
            lines.append(f"ip daddr . meta l4proto . th dport @{named} return")
        return lines

    def chain(self, direction: str, rules: list[str]) -> str:
        rules = [*rules, "drop"]
        name = f"{direction}-{content_hash(*rules)}"
        self.rules.chains[name] = tuple(rules)
        return name


def render(policies: Iterable[Policy], pods: Iterable[Pod], namespaces: Mapping[str, Mapping[
           str, str]], node: NodeConfig, dns: Pod | None = None) -> Ruleset:
    """The node's policy table (see the module docstring): `pods` are every pod of the
    cluster, `dns` the cluster DNS peer (`dns_peer`)."""
    pods = list(pods)
    world = _World(tuple(pods) + ((dns,) if dns is not None else ()), namespaces)
    builder = _Builder(dataclasses.replace(node, table=TABLE), world)
    policies = list(policies)
    for pod in pods:
        if pod.node != node.node:
            continue
        labels = dict(pod.labels)
        selecting = [p for p in policies
                     if p.namespace == pod.namespace and _matches(p.selector, labels)]
        if selecting:
            builder.rules.elements[("self", f"{pod.ip} . {pod.ip}")] = ""
        ingress = [p for p in selecting if p.ingress is not None]
        if ingress:
            rules = [line for p in ingress for r in p.ingress or ()
                     for line in builder.ingress_rules(p, r, pod)]
            builder.rules.elements[("ingress-pods", pod.ip)] = \
                f"jump {builder.chain('ingress', rules)}"
        egress = [p for p in selecting if p.egress is not None]
        if egress:
            rules = [line for p in egress for r in p.egress or ()
                     for line in builder.egress_rules(p, r)]
            builder.rules.elements[("egress-pods", pod.ip)] = \
                f"jump {builder.chain('egress', rules)}"
    return builder.rules


def skeleton(node: NodeConfig) -> list[str]:
    """The fixed part of the table (see the module docstring)."""
    t = f"ip {node.table}"
    lines = [
        f"add table {t}", f"delete table {t}", f"add table {t}",
        f"add map {t} ingress-pods {{ type ipv4_addr : verdict ; }}",
        f"add map {t} egress-pods {{ type ipv4_addr : verdict ; }}",
        f"add set {t} self {{ type ipv4_addr . ipv4_addr ; }}",
        f"add set {t} served {{ type ipv4_addr ; }}",
        f"add chain {t} forward {{ type filter hook forward priority 0 ; policy accept ; }}",
        f"add rule {t} forward ct state established,related accept",
        f"add rule {t} forward ip saddr . ip daddr @self accept",
        f"add rule {t} forward ip saddr vmap @egress-pods",
        f"add rule {t} forward ip daddr vmap @ingress-pods",
        f"add chain {t} input {{ type filter hook input priority 0 ; policy accept ; }}",
        f"add rule {t} input ct state established,related accept",
        f"add rule {t} input ip daddr != @served accept",
        f"add rule {t} input ip saddr vmap @egress-pods",
    ]
    if node.served:
        lines.append(f"add element {t} served {{ {', '.join(node.served)} }}")
    return lines


def full_script(rules: Ruleset) -> str:
    """Replace the node's policy table with `rules`, in one transaction."""
    return "\n".join([*skeleton(rules.node), *definition_lines(rules)]) + "\n"
