"""The nftables renderer: golden rulesets per case, per-node endpoint choice, updates.

Golden files live in tests/testdata/nft/: `<case>.nft` is the full load for node `a` of the
case, `update-<case>.nft` the transaction of an update. Regenerate them (and read the diff!)
with `TINYKUBE_UPDATE_GOLDEN=1 pytest tests/unit/proxy/test_proxy_nftables.py`. As root with
`nft` installed, every golden script is also loaded into a scratch network namespace.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import scratch
from proxyobjects import endpoint, endpoint_slice, port, service

from tinykube.proxy import nftables, ports

GOLDEN = Path(__file__).resolve().parents[2] / "testdata" / "nft"
NODE = nftables.NodeConfig("a", "10.244.0.0/16", "10.96.0.0/12", ("10.96.0.10",))
HTTP = [port(8080, "http")]
Obj = dict[str, Any]


def ep(ip: str, node: str = "a", *, serving: bool | None = None, **conditions: Any) -> Obj:
    item = endpoint(ip, **conditions)
    if serving is not None:
        item["conditions"]["serving"] = serving
    item["nodeName"] = node
    return item


def svc(name: str, ip: str, *ports_: Obj, **spec: Any) -> Obj:
    obj = service(name, ip, *(ports_ or (port(80, "http"),)))
    obj["spec"].update(spec)
    return obj


def two(name: str, proto: str = "TCP") -> Obj:
    return endpoint_slice(name, [ep("10.244.0.2"), ep("10.244.1.2", "b")],
                          [port(8080, "http", proto)])


CASES: dict[str, tuple[list[Obj], list[Obj]]] = {
    "cluster-ip": ([svc("web", "10.96.0.20")], [two("web")]),
    "udp": ([svc("dns", "10.96.0.53", port(53, "dns", "UDP"))],
            [endpoint_slice("dns", [ep("10.244.0.3")], [port(5353, "dns", "UDP")])]),
    "no-endpoints": ([svc("empty", "10.96.0.40")], []),
    "node-port": ([svc("web", "10.96.0.20", port(80, "http", node_port=30080), type="NodePort")],
                  [two("web")]),
    "external-ip": ([svc("web", "10.96.0.20", externalIPs=["192.0.2.7"])], [two("web")]),
    "affinity": ([svc("sticky", "10.96.0.50", sessionAffinity="ClientIP",
                      sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})],
                 [two("sticky")]),
    "internal-local": ([svc("web", "10.96.0.20", internalTrafficPolicy="Local"),
                        svc("far", "10.96.0.21", internalTrafficPolicy="Local")],
                       [two("web"), endpoint_slice("far", [ep("10.244.1.9", "b")], HTTP)]),
    "external-local": ([svc("web", "10.96.0.20", port(80, "http", node_port=30080),
                            type="NodePort", externalTrafficPolicy="Local"),
                        svc("far", "10.96.0.21", port(80, "http", node_port=30081),
                            type="NodePort", externalTrafficPolicy="Local")],
                       [two("web"), endpoint_slice("far", [ep("10.244.1.9", "b")], HTTP)]),
    "terminating": ([svc("web", "10.96.0.20"), svc("old", "10.96.0.21")],
                    [endpoint_slice("web", [ep("10.244.0.2"),
                                            ep("10.244.0.3", ready=False, terminating=True)],
                                    HTTP),
                     endpoint_slice("old", [ep("10.244.0.4", ready=False, terminating=True),
                                            ep("10.244.0.5", ready=False)], HTTP)]),
    "many-endpoints": ([svc("big", "10.96.0.30")],
                       [endpoint_slice("big", [ep(f"10.244.0.{i}") for i in range(2, 19)],
                                       HTTP)]),
    "served-dns-ip-left-alone": ([svc("kube-dns", "10.96.0.10", port(53, "dns", "UDP"))],
                                 [endpoint_slice("kube-dns", [ep("10.244.0.3")],
                                                 [port(53, "dns", "UDP")])]),
    "headless-and-external-name-skipped": (
        [svc("headless", "None"), {"metadata": {"name": "ext", "namespace": "default"},
                                   "spec": {"type": "ExternalName", "externalName": "x.y"}}],
        [two("headless")]),
}


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TINYKUBE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (TINYKUBE_UPDATE_GOLDEN=1 rewrites it)"


def rendered(services: list[Obj], slices: list[Obj],
             node: nftables.NodeConfig = NODE) -> nftables.Ruleset:
    return nftables.render(ports.service_ports(services, slices), node)


@pytest.mark.parametrize("case", list(CASES))
def test_full_load_matches_golden(case: str) -> None:
    services, slices = CASES[case]
    before = copy.deepcopy((services, slices))
    golden(f"{case}.nft", nftables.full_script(rendered(services, slices)))
    assert (services, slices) == before  # the informer cache is never mutated


# --- kube-proxy's choice of endpoints, per node ----------------------------------------------

def chosen(endpoints: list[Obj], node: str = "a", **spec: Any) -> dict[str, list[str]]:
    services = [svc("web", "10.96.0.20", port(80, "http", node_port=30080), type="NodePort",
                    **spec)]
    (one,) = ports.service_ports(services, [endpoint_slice("web", endpoints, HTTP)])
    choice = ports.choose(one, node)
    return {"internal": [e.ip for e in choice.internal],
            "external": [e.ip for e in choice.external], "has": [str(choice.has_endpoints)]}


CHOICES = [
    pytest.param([ep("10.0.0.1"), ep("10.0.0.2", ready=False)], {},
                 {"internal": ["10.0.0.1"], "external": ["10.0.0.1"], "has": ["True"]},
                 id="ready-only"),
    pytest.param([ep("10.0.0.1", ready=False, terminating=True),
                  ep("10.0.0.2", ready=False, serving=False, terminating=True)], {},
                 {"internal": ["10.0.0.1"], "external": ["10.0.0.1"], "has": ["True"]},
                 id="no-ready-falls-back-to-serving-terminating"),
    pytest.param([ep("10.0.0.1"), ep("10.0.0.2", ready=False, terminating=True)], {},
                 {"internal": ["10.0.0.1"], "external": ["10.0.0.1"], "has": ["True"]},
                 id="terminating-unused-while-one-is-ready"),
    pytest.param([ep("10.0.0.1", ready=False)], {},
                 {"internal": [], "external": [], "has": ["False"]}, id="none-usable"),
    pytest.param([ep("10.0.0.1"), ep("10.0.0.2", "b")], {"internalTrafficPolicy": "Local"},
                 {"internal": ["10.0.0.1"], "external": ["10.0.0.1", "10.0.0.2"],
                  "has": ["True"]}, id="internal-local"),
    pytest.param([ep("10.0.0.2", "b")], {"internalTrafficPolicy": "Local"},
                 {"internal": [], "external": ["10.0.0.2"], "has": ["True"]},
                 id="internal-local-none-here-but-external-cluster"),
    pytest.param([ep("10.0.0.1"), ep("10.0.0.2", "b")], {"externalTrafficPolicy": "Local"},
                 {"internal": ["10.0.0.1", "10.0.0.2"], "external": ["10.0.0.1"],
                  "has": ["True"]}, id="external-local"),
    pytest.param([ep("10.0.0.2", "b")], {"externalTrafficPolicy": "Local",
                                         "internalTrafficPolicy": "Local"},
                 {"internal": [], "external": [], "has": ["True"]},
                 id="both-local-none-here-drops-endpoints-elsewhere"),
    pytest.param([ep("10.0.0.1", ready=False, terminating=True), ep("10.0.0.2", "b")],
                 {"externalTrafficPolicy": "Local"},
                 {"internal": ["10.0.0.2"], "external": ["10.0.0.1"], "has": ["True"]},
                 id="local-falls-back-to-local-terminating"),
]


@pytest.mark.parametrize(("endpoints", "spec", "expected"), CHOICES)
def test_endpoint_choice(endpoints: list[Obj], spec: dict[str, str],
                         expected: dict[str, list[str]]) -> None:
    assert chosen(endpoints, **spec) == expected


def test_traffic_policy_local_is_ignored_without_external_access() -> None:
    (one,) = ports.service_ports([svc("web", "10.96.0.20", externalTrafficPolicy="Local")],
                                 [two("web")])
    assert not one.external_local


# --- updates ---------------------------------------------------------------------------------

def with_endpoints(ips: list[str], **spec: Any) -> nftables.Ruleset:
    return rendered([svc("web", "10.96.0.20", port(80, "http", "UDP"), **spec)],
                    [endpoint_slice("web", [ep(ip) for ip in ips], [port(8080, "http", "UDP")])])


UPDATES: dict[str, tuple[list[str], list[str], dict[str, str]]] = {
    "endpoint-removed": (["10.244.0.2", "10.244.0.3"], ["10.244.0.2"], {}),
    "first-endpoint": ([], ["10.244.0.2"], {}),
    "last-endpoint-gone": (["10.244.0.2"], [], {}),
    "affinity-endpoint-replaced": (["10.244.0.2", "10.244.0.3"], ["10.244.0.2", "10.244.0.4"],
                                   {"sessionAffinity": "ClientIP"}),
}


def test_an_affinity_timeout_change_makes_new_sets() -> None:
    def sticky(seconds: int) -> nftables.Ruleset:
        return with_endpoints(["10.244.0.2"], sessionAffinity="ClientIP",
                              sessionAffinityConfig={"clientIP": {"timeoutSeconds": seconds}})
    old, new = sticky(60), sticky(120)
    assert not old.sets.keys() & new.sets.keys()
    script = nftables.update_script(old, new)
    assert "timeout 120s" in script and f"delete set ip tinykube {next(iter(old.sets))}" in script


@pytest.mark.parametrize("case", list(UPDATES))
def test_update_touches_elements_and_matches_golden(case: str) -> None:
    before, after, spec = UPDATES[case]
    script = nftables.update_script(with_endpoints(before, **spec),
                                    with_endpoints(after, **spec))
    assert "table" not in script
    golden(f"update-{case}.nft", script)


def test_no_change_is_no_transaction() -> None:
    assert nftables.update_script(with_endpoints(["10.244.0.2"]),
                                  with_endpoints(["10.244.0.2"])) == ""


STALE = [
    pytest.param(["10.244.0.2", "10.244.0.3"], ["10.244.0.2"],
                 [("10.96.0.20", 80, "10.244.0.3")], id="removed-endpoint-flushed"),
    pytest.param([], ["10.244.0.2"], [("10.96.0.20", 80, "")],
                 id="first-endpoint-flushes-the-destination"),
    pytest.param(["10.244.0.2"], ["10.244.0.2", "10.244.0.3"], [], id="added-endpoint-no-flush"),
]


@pytest.mark.parametrize(("before", "after", "expected"), STALE)
def test_stale_udp_flows(before: list[str], after: list[str],
                         expected: list[tuple[str, int, str]]) -> None:
    assert nftables.stale_udp(with_endpoints(before), with_endpoints(after)) == expected


def test_stale_udp_of_a_node_port() -> None:
    def node_port(ips: list[str]) -> nftables.Ruleset:
        return rendered([svc("web", "10.96.0.20", port(80, "http", "UDP", node_port=30053),
                             type="NodePort")],
                        [endpoint_slice("web", [ep(ip) for ip in ips],
                                        [port(8080, "http", "UDP")])])
    assert nftables.stale_udp(node_port(["10.244.0.2", "10.244.0.3"]),
                              node_port(["10.244.0.3"])) == [
        ("", 30053, "10.244.0.2"), ("10.96.0.20", 80, "10.244.0.2")]


# --- the kernel accepts every golden script (root, nft) ---------------------------------------

@pytest.mark.root
def test_the_kernel_takes_every_full_load_and_update(scratch_netns: str) -> None:
    for services, slices in CASES.values():
        scratch.load(scratch_netns, nftables.full_script(rendered(services, slices)))
    for before, after, spec in UPDATES.values():
        old = with_endpoints(before, **spec)
        scratch.load(scratch_netns, nftables.full_script(old))
        scratch.load(scratch_netns, nftables.update_script(old, with_endpoints(after, **spec)))
    sticky = [with_endpoints(["10.244.0.2"], sessionAffinity="ClientIP",
                             sessionAffinityConfig={"clientIP": {"timeoutSeconds": seconds}})
              for seconds in (60, 120)]
    scratch.load(scratch_netns, nftables.full_script(sticky[0]))
    scratch.load(scratch_netns, nftables.update_script(*sticky))
