"""The NetworkPolicy renderer: golden tables per case, what selects and what is allowed, and
pod churn as element updates.

Golden files live in tests/testdata/netpol/: `<case>.nft` is the full load for node `a` of the
case, `update-<case>.nft` an update's transaction. Regenerate them (and read the diff!) with
`TINYKUBE_UPDATE_GOLDEN=1 pytest tests/unit/proxy/test_proxy_netpol.py`. As root with `nft`
installed, every golden script is also loaded into a scratch network namespace.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
import scratch

from tinykube.proxy import netpol, nftables

GOLDEN = Path(__file__).resolve().parents[2] / "testdata" / "netpol"
NODE = nftables.NodeConfig("a", "10.244.0.0/16", "10.96.0.0/12", ("10.96.0.10",))
Obj = dict[str, Any]

NAMESPACES = [{"metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n, **labels}}}
              for n, labels in (("default", {}), ("prod", {"team": "a"}), ("dev", {"team": "b"}),
                                ("kube-system", {}))]
KUBE_DNS = {"metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"}, "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}


def pod(name: str, ip: str, node: str = "a", namespace: str = "default",
        ports: dict[str, int] | None = None, **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": k, "containerPort": v} for k, v in (ports or {}).items()]}]},
            "status": {"phase": "Running", "podIP": ip}}


def policy(name: str, spec: Obj, namespace: str = "default") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


PODS = [
    pod("db", "10.244.0.2", app="db", ports={"pg": 5432}),
    pod("web", "10.244.0.3", app="web"),
    pod("web-b", "10.244.1.3", "b", app="web"),
    pod("api", "10.244.1.4", "b", namespace="prod", app="api", ports={"http": 8080}),
    pod("dev", "10.244.1.5", "b", namespace="dev", app="web"),
    {**pod("host", "100.64.0.1", "a", app="db"), "spec": {"nodeName": "a", "hostNetwork": True}},
    {**pod("done", "10.244.0.9", "a", app="db"),
     "status": {"phase": "Succeeded", "podIP": "10.244.0.9"}},
]
DB = {"matchLabels": {"app": "db"}}
WEB = {"podSelector": {"matchLabels": {"app": "web"}}}
DNS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}

CASES: dict[str, list[Obj]] = {
    "none": [],
    "default-deny-ingress": [policy("deny", {"podSelector": {}})],
    "allow-from-pods": [policy("db", {"podSelector": DB, "ingress": [{"from": [WEB]}]})],
    "allow-from-namespace": [policy("db", {"podSelector": DB, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]})],
    "namespace-and-pod-selector": [policy("db", {"podSelector": DB, "ingress": [
        {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}]}]})],
    "ports-named-and-ranges": [policy("db", {"podSelector": DB, "ingress": [{"ports": [
        {"port": "pg", "protocol": "TCP"}, {"port": "missing", "protocol": "TCP"},
        {"port": 8000, "endPort": 8100, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"},
        {"port": 9000, "protocol": "SCTP"}, {"protocol": "UDP"}]}]})],
    "named-port-unresolved-allows-nothing": [policy("web", {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"ports": [{"port": "pg", "protocol": "TCP"}]}]})],
    "egress-ip-block-except": [policy("out", {"podSelector": {}, "policyTypes": ["Egress"],
                                              "egress": [{"to": [{"ipBlock": {
                                                  "cidr": "10.0.0.0/8",
                                                  "except": ["10.244.1.0/24", "10.9.0.0/16"]}}],
                                                  "ports": [{"port": 8080,
                                                             "protocol": "TCP"}]}]})],
    "egress-deny-all": [policy("deny", {"podSelector": {}, "policyTypes": ["Egress"]})],
    "egress-dns-to-kube-dns": [policy("dns", {"podSelector": {}, "policyTypes": ["Egress"],
                                              "egress": [{"to": [DNS_PEER], "ports": [
                                                  {"port": 53, "protocol": "UDP"},
                                                  {"port": 53, "protocol": "TCP"}]}]})],
    "egress-named-port": [policy("api", {"podSelector": {}, "policyTypes": ["Egress"],
                                         "egress": [{"ports": [{"port": "http",
                                                                "protocol": "TCP"},
                                                               {"port": "dns",
                                                                "protocol": "UDP"}]}]})],
    "two-policies-union": [
        policy("a", {"podSelector": DB, "ingress": [{"from": [WEB]}]}),
        policy("b", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {
            "cidr": "192.0.2.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}]})],
    "allow-all-ingress-and-egress": [policy("open", {"podSelector": {}, "ingress": [{}],
                                                     "egress": [{}]})],
    "other-namespace-policy-selects-nothing-here": [
        policy("deny", {"podSelector": {}}, namespace="prod")],
}


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TINYKUBE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (TINYKUBE_UPDATE_GOLDEN=1 rewrites it)"


def rendered(policies: list[Obj], pods: list[Obj] = PODS,
             node: nftables.NodeConfig = NODE) -> nftables.Ruleset:
    return netpol.render(netpol.policies_of(policies), netpol.pods_of(pods),
                         netpol.namespace_labels(NAMESPACES), node,
                         netpol.dns_peer([KUBE_DNS], "10.96.0.10"))


@pytest.mark.parametrize("case", list(CASES))
def test_full_load_matches_golden(case: str) -> None:
    golden(f"{case}.nft", netpol.full_script(rendered(CASES[case])))


def elements(rules: nftables.Ruleset, where: str) -> dict[str, str]:
    return {key: value for (name, key), value in rules.elements.items() if name == where}


def peer_set(rules: nftables.Ruleset, direction: str) -> list[str]:
    (chain,) = {v.split()[-1] for v in elements(rules, f"{direction}-pods").values()}
    (name,) = {word[1:] for rule in rules.chains[chain] for word in rule.split()
               if word.startswith("@peers-")}
    return sorted(elements(rules, name))


# (case, direction, the local pods isolated, the addresses their rule allows)
SELECTED = [
    ("default-deny-ingress", "ingress", ["10.244.0.2", "10.244.0.3"], None),
    ("allow-from-pods", "ingress", ["10.244.0.2"], ["10.244.0.3", "10.244.1.3"]),
    ("allow-from-namespace", "ingress", ["10.244.0.2"], ["10.244.1.4"]),
    ("namespace-and-pod-selector", "ingress", ["10.244.0.2"],
     ["10.244.0.3", "10.244.1.3", "10.244.1.5"]),
    ("egress-ip-block-except", "egress", ["10.244.0.2", "10.244.0.3"], None),
    ("egress-dns-to-kube-dns", "egress", ["10.244.0.2", "10.244.0.3"], ["10.96.0.10"]),
]


@pytest.mark.parametrize(("case", "direction", "isolated", "allowed"),
                         [s for s in SELECTED], ids=[s[0] for s in SELECTED])
def test_selected_pods_and_their_peers(case: str, direction: str, isolated: list[str],
                                       allowed: list[str] | None) -> None:
    rules = rendered(CASES[case])
    assert sorted(elements(rules, f"{direction}-pods")) == isolated
    other = "egress" if direction == "ingress" else "ingress"
    assert elements(rules, f"{other}-pods") == {}
    if allowed is not None:
        assert peer_set(rules, direction) == allowed


IP_BLOCK = [("10.0.0.1", True), ("10.9.1.1", False), ("10.244.1.3", False), ("10.244.0.3", True),
            ("10.255.255.255", True), ("11.0.0.1", False)]


@pytest.mark.parametrize(("address", "allowed"), IP_BLOCK, ids=[a for a, _ in IP_BLOCK])
def test_ip_block_except_as_disjoint_prefixes(address: str, allowed: bool) -> None:
    networks = [ipaddress.ip_network(e) for e in
                peer_set(rendered(CASES["egress-ip-block-except"]), "egress")]
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])
    assert any(ipaddress.ip_address(address) in n for n in networks) is allowed


def test_host_network_and_finished_pods_take_no_part() -> None:
    pods = {p.name for p in netpol.pods_of(PODS)}
    assert "host" not in pods and "done" not in pods


def test_egress_named_ports_resolve_per_destination_pod() -> None:
    rules = rendered(CASES["egress-named-port"])
    (name,) = {n for n, _ in rules.elements if n.startswith("eports-")}
    assert sorted(elements(rules, name)) == ["10.244.1.4 . tcp . 8080", "10.96.0.10 . udp . 53"]


def test_ingress_named_port_resolves_against_the_selected_pod() -> None:
    (chain,) = set(elements(rendered(CASES["ports-named-and-ranges"]), "ingress-pods").values())
    rules = rendered(CASES["ports-named-and-ranges"]).chains[chain.split()[-1]]
    assert rules == ("meta l4proto udp return",
                     "meta l4proto tcp th dport { 5432, 8000-8100 } return",
                     "meta l4proto sctp th dport { 9000 } return", "drop")


def test_node_b_isolates_its_own_pods_only() -> None:
    node_b = nftables.NodeConfig("b", "10.244.0.0/16", "10.96.0.0/12")
    rules = rendered(CASES["default-deny-ingress"], node=node_b)
    assert sorted(elements(rules, "ingress-pods")) == ["10.244.1.3"]


# --- updates: pod churn is element changes ---------------------------------------------------

UPDATES: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {
    "new-client-pod": (CASES["allow-from-pods"], PODS,
                       [*PODS, pod("web-2", "10.244.1.7", "b", app="web")]),
    "new-selected-pod": (CASES["allow-from-pods"], PODS,
                         [*PODS, pod("db-2", "10.244.0.7", "a", app="db", ports={"pg": 5432})]),
    "client-relabelled": (CASES["allow-from-pods"], PODS,
                          [PODS[0], pod("web", "10.244.0.3", app="other"), *PODS[2:]]),
}


@pytest.mark.parametrize("case", list(UPDATES))
def test_pod_churn_is_element_updates(case: str) -> None:
    policies, before, after = UPDATES[case]
    script = nftables.update_script(rendered(policies, before), rendered(policies, after))
    assert "chain" not in script and "table" not in script and "set ip" not in script
    assert script
    golden(f"update-{case}.nft", script)


def test_no_change_is_no_transaction() -> None:
    assert nftables.update_script(rendered(CASES["allow-from-pods"]),
                                  rendered(CASES["allow-from-pods"])) == ""


def test_policy_change_replaces_the_chain() -> None:
    after = [policy("db", {"podSelector": DB, "ingress": [{"from": [WEB],
                                                           "ports": [{"port": "pg"}]}]})]
    script = nftables.update_script(rendered(CASES["allow-from-pods"]), rendered(after))
    assert "add chain ip tinykube-netpol ingress-" in script
    assert "delete chain ip tinykube-netpol ingress-" in script
    assert "add element ip tinykube-netpol ingress-pods" in script


# --- the kernel accepts every golden script (root, nft) ---------------------------------------

@pytest.mark.root
def test_the_kernel_takes_every_full_load_and_update(scratch_netns: str) -> None:
    for policies in CASES.values():
        scratch.load(scratch_netns, netpol.full_script(rendered(policies)))
    for policies, before, after in UPDATES.values():
        old = rendered(policies, before)
        scratch.load(scratch_netns, netpol.full_script(old))
        scratch.load(scratch_netns, nftables.update_script(old, rendered(policies, after)))
    old = rendered(CASES["allow-from-pods"])
    scratch.load(scratch_netns, netpol.full_script(old))
    for policies in CASES.values():  # policy changes as updates, one after another
        new = rendered(policies)
        scratch.load(scratch_netns, nftables.update_script(old, new))
        old = new


def test_a_thousand_pods_and_fifty_policies_render() -> None:
    """Every sync renders every node's table; at 1,000 pods and 50 policies each policy still
    selects its own pods (how long it takes is bench/nftload's business, not a test's)."""
    pods = [pod(f"p{i}", f"10.244.{i % 4}.{i // 4 + 2}", "a" if i % 4 == 0 else "b",
                app=f"app{i % 50}") for i in range(1000)]
    policies = [policy(f"p{j}", {"podSelector": {"matchLabels": {"app": f"app{j}"}},
                                 "ingress": [{"from": [{"podSelector": {"matchLabels": {
                                     "app": f"app{(j + 1) % 50}"}}}],
                                     "ports": [{"port": 8080}]}]}) for j in range(50)]
    rules = rendered(policies, pods)
    assert len(elements(rules, "ingress-pods")) == 250
