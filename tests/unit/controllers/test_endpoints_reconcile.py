"""Table tests of the pure Endpoints and mirroring reconcilers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from epobjects import as_existing, endpoints, pod, service

from tinykube.client.controller import Plan
from tinykube.controllers import endpoints as ep_controller
from tinykube.controllers import endpointslice_mirroring as mirroring


def build(svc: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    plan = ep_controller.reconcile(svc, pods, None)
    assert len(plan.create) == 1 and not plan.update and not plan.delete
    return plan.create[0]


def ips(subset: dict[str, Any], field: str) -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


@pytest.mark.parametrize(("publish", "ready", "not_ready"), [
    pytest.param(False, ["10.244.0.1"], ["10.244.0.2"], id="default"),
    pytest.param(True, ["10.244.0.1", "10.244.0.2", "10.244.0.3"], [], id="publish-not-ready"),
])
def test_ready_and_not_ready_addresses(publish: bool, ready: list[str],
                                       not_ready: list[str]) -> None:
    pods = [pod("a", "10.244.0.1"), pod("b", "10.244.0.2", ready=False),
            pod("c", "10.244.0.3", terminating=True), pod("d", None),
            pod("e", "10.244.0.5", phase="Failed")]
    (subset,) = build(service(publish_not_ready=publish), pods)["subsets"]
    assert ips(subset, "addresses") == ready
    assert ips(subset, "notReadyAddresses") == not_ready
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_address_fields_and_headless_label() -> None:
    svc = service("nginx", headless=True, selector={"app": "web"})
    obj = build(svc, [pod("web-0", hostname="web-0", subdomain="nginx")])
    assert obj["metadata"] == {"name": "nginx", "namespace": "default",
                               "labels": {"service.kubernetes.io/headless": ""}}
    assert obj["subsets"][0]["addresses"] == [{
        "ip": "10.244.0.1", "hostname": "web-0", "nodeName": "node1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0",
                      "uid": "uid-web-0"}}]


def test_subsets_grouped_by_resolved_ports() -> None:
    svc = service(ports=[{"name": "web", "port": 80, "targetPort": "http"}])
    pods = [pod("a", "10.244.0.1", container_ports=[{"name": "http", "containerPort": 8080}]),
            pod("b", "10.244.0.2", container_ports=[{"name": "http", "containerPort": 9090}]),
            pod("c", "10.244.0.3", container_ports=[{"name": "http", "containerPort": 8080}]),
            pod("d", "10.244.0.4")]
    subsets = build(svc, pods)["subsets"]
    assert [(s["ports"][0]["port"], ips(s, "addresses")) for s in subsets] == [
        (8080, ["10.244.0.1", "10.244.0.3"]), (9090, ["10.244.0.2"])]


def test_headless_without_ports_lists_bare_addresses() -> None:
    obj = build(service(headless=True, ports=[]), [pod("a")])
    assert obj["subsets"] == [{"addresses": [obj["subsets"][0]["addresses"][0]]}]


@pytest.mark.parametrize(("ready", "not_ready", "kept"), [
    pytest.param(1001, 0, (1000, 0), id="ready-over"),
    pytest.param(900, 200, (900, 100), id="not-ready-cut-first"),
    pytest.param(1000, 0, (1000, 0), id="at-capacity"),
])
def test_over_capacity_truncation(ready: int, not_ready: int, kept: tuple[int, int]) -> None:
    pods = [pod(f"r{i:04}", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(ready)]
    pods += [pod(f"n{i:04}", f"10.2.{i // 250}.{i % 250 + 1}", ready=False)
             for i in range(not_ready)]
    obj = build(service(), pods)
    (subset,) = obj["subsets"]
    assert (len(subset.get("addresses", [])), len(subset.get("notReadyAddresses", []))) == kept
    truncated = ready + not_ready > 1000
    assert (obj["metadata"].get("annotations") or {}).get(
        "endpoints.kubernetes.io/over-capacity") == ("truncated" if truncated else None)


def test_truncation_is_proportional_across_subsets() -> None:
    subsets = [{"addresses": [{"ip": f"a{i}"} for i in range(900)]},
               {"addresses": [{"ip": f"b{i}"} for i in range(300)]}]
    assert ep_controller.truncate(subsets)
    assert [len(s["addresses"]) for s in subsets] == [750, 250]


def test_unchanged_endpoints_give_empty_plan_and_changes_update() -> None:
    svc, pods = service(), [pod("a")]
    existing = as_existing(build(svc, pods), "web")
    assert ep_controller.reconcile(svc, pods, existing) == Plan()
    plan = ep_controller.reconcile(svc, [pod("a", ready=False)], existing)
    assert len(plan.update) == 1 and plan.update[0]["metadata"]["resourceVersion"] == "5"


def test_selectorless_service_endpoints_are_left_alone() -> None:
    assert ep_controller.reconcile(service(selector={}), [pod("a")], None) == Plan()


def test_endpoints_reconcile_never_mutates_inputs() -> None:
    svc, pods = service(headless=True), [pod("a"), pod("b", "10.244.0.2", ready=False)]
    existing = as_existing(build(svc, pods[:1]), "web")
    snapshot = copy.deepcopy((svc, pods, existing))
    plan = ep_controller.reconcile(svc, pods, existing)
    plan.update[0]["metadata"]["labels"]["x"] = "y"
    assert (svc, pods, existing) == snapshot


# --- mirroring ----------------------------------------------------------------------------------

HAND_WRITTEN = endpoints("ext", subsets=[{
    "addresses": [{"ip": "192.168.1.10", "hostname": "db-0"}, {"ip": "not-an-ip"}],
    "notReadyAddresses": [{"ip": "192.168.1.11"}],
    "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}],
}], labels={"team": "db"})


def test_mirrors_hand_written_endpoints() -> None:
    plan = mirroring.reconcile(HAND_WRITTEN, service("ext", selector={}), [])
    (created,) = plan.create
    assert created["metadata"]["labels"] == {
        "team": "db", "kubernetes.io/service-name": "ext",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert created["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert created["ports"] == [{"name": "sql", "port": 5432, "protocol": "TCP"}]
    assert created["endpoints"] == [
        {"addresses": ["192.168.1.10"], "conditions": {"ready": True}, "hostname": "db-0"},
        {"addresses": ["192.168.1.11"], "conditions": {"ready": False}}]
    existing = [as_existing(created, "ext-abc")]
    assert mirroring.reconcile(HAND_WRITTEN, service("ext", selector={}), existing) == Plan()


@pytest.mark.parametrize(("endpoints_obj", "svc"), [
    pytest.param(HAND_WRITTEN, service("ext"), id="service-has-selector"),
    pytest.param(HAND_WRITTEN, None, id="no-service"),
    pytest.param(None, service("ext", selector={}), id="no-endpoints"),
    pytest.param(endpoints("ext", HAND_WRITTEN["subsets"],
                           labels={"endpointslice.kubernetes.io/skip-mirror": "true"}),
                 service("ext", selector={}), id="skip-mirror"),
])
def test_mirrored_slices_removed_when_not_mirrored(endpoints_obj: dict[str, Any] | None,
                                                   svc: dict[str, Any] | None) -> None:
    created = mirroring.reconcile(HAND_WRITTEN, service("ext", selector={}), []).create[0]
    existing = [as_existing(created, "ext-abc")]
    assert mirroring.reconcile(endpoints_obj, svc, existing) == Plan(delete=["ext-abc"])
