"""Table tests of the pure EndpointSlice reconcile (dns-spec.md §4 rules, upstream behaviour)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from epobjects import as_existing, pod, service

from tinykube.client.controller import Plan
from tinykube.controllers import endpointslice


def apply(plan: Plan, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The slices that exist after `plan` runs against `existing` (names slice-0, slice-1...)."""
    by_name = {s["metadata"]["name"]: s for s in existing}
    for name in plan.delete:
        del by_name[name]
    for body in plan.update:
        by_name[body["metadata"]["name"]] = body
    for i, body in enumerate(plan.create):
        name = f"new-{len(by_name)}-{i}"
        by_name[name] = as_existing(body, name)
    return list(by_name.values())


def only_slice(plan: Plan) -> dict[str, Any]:
    assert not plan.update and not plan.delete
    assert len(plan.create) == 1
    return plan.create[0]


def test_single_pod_slice_is_complete() -> None:
    svc = service(labels={"team": "a"})
    plan = endpointslice.reconcile(svc, [pod("web-0")], [])
    assert only_slice(plan) == {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "generateName": "web-", "namespace": "default",
            "labels": {"team": "a", "kubernetes.io/service-name": "web",
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                 "uid": "uid-svc-web", "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{
            "addresses": ["10.244.0.1"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node1",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0",
                          "uid": "uid-web-0"},
        }],
    }


@pytest.mark.parametrize(("pod_kwargs", "publish", "conditions"), [
    pytest.param({}, False, (True, True, False), id="ready"),
    pytest.param({"ready": False}, False, (False, False, False), id="not-ready"),
    pytest.param({"ready": False}, True, (True, False, False), id="not-ready-published"),
    pytest.param({"terminating": True}, False, (False, True, True), id="terminating-serving"),
    pytest.param({"terminating": True, "ready": False}, False, (False, False, True),
                 id="terminating-not-serving"),
    pytest.param({"terminating": True}, True, (True, True, True), id="terminating-published"),
])
def test_endpoint_conditions(pod_kwargs: dict[str, Any], publish: bool,
                             conditions: tuple[bool, bool, bool]) -> None:
    svc = service(publish_not_ready=publish)
    endpoint = only_slice(endpointslice.reconcile(svc, [pod("p", **pod_kwargs)], []))[
        "endpoints"][0]
    ready, serving, terminating = conditions
    assert endpoint["conditions"] == {"ready": ready, "serving": serving,
                                      "terminating": terminating}


@pytest.mark.parametrize(("pod_kwargs", "hostname"), [
    pytest.param({"hostname": "web-0", "subdomain": "web"}, "web-0", id="subdomain-is-service"),
    pytest.param({"hostname": "web-0", "subdomain": "other"}, None, id="other-subdomain"),
    pytest.param({"hostname": "web-0"}, None, id="no-subdomain"),
    pytest.param({"subdomain": "web"}, None, id="no-hostname"),
])
def test_hostname_rule(pod_kwargs: dict[str, Any], hostname: str | None) -> None:
    plan = endpointslice.reconcile(service(headless=True), [pod("web-0", **pod_kwargs)], [])
    assert only_slice(plan)["endpoints"][0].get("hostname") == hostname


@pytest.mark.parametrize(("pod_kwargs", "published"), [
    pytest.param({"ip": None}, False, id="no-ip"),
    pytest.param({"phase": "Succeeded"}, False, id="succeeded"),
    pytest.param({"phase": "Failed"}, False, id="failed"),
    pytest.param({"phase": "Pending", "ready": False}, True, id="pending-with-ip"),
])
def test_which_pods_are_published(pod_kwargs: dict[str, Any], published: bool) -> None:
    created = only_slice(endpointslice.reconcile(service(), [pod("p", **pod_kwargs)], []))
    assert bool(created["endpoints"]) is published


def test_named_target_port_resolves_per_pod() -> None:
    svc = service(ports=[{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    pods = [
        pod("a", "10.244.0.1", container_ports=[{"name": "http", "containerPort": 8080}]),
        pod("b", "10.244.0.2", container_ports=[{"name": "http", "containerPort": 9090}]),
        pod("c", "10.244.0.3", container_ports=[{"name": "http", "containerPort": 8080}]),
        pod("d", "10.244.0.4", container_ports=[{"name": "metrics", "containerPort": 7070}]),
        pod("e", "10.244.0.5", container_ports=[
            {"name": "http", "containerPort": 5353, "protocol": "UDP"}]),
    ]
    plan = endpointslice.reconcile(svc, pods, [])
    layout = sorted(
        ([p["port"] for p in s["ports"]], [e["targetRef"]["name"] for e in s["endpoints"]])
        for s in plan.create)
    # d and e have no TCP port named "http": they are listed without that port.
    assert layout == [([], ["d", "e"]), ([8080], ["a", "c"]), ([9090], ["b"])]


def test_250_pods_make_three_slices() -> None:
    pods = [pod(f"p{i:03}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(250)]
    plan = endpointslice.reconcile(service(), pods, [])
    assert [len(s["endpoints"]) for s in plan.create] == [100, 100, 50]
    assert not endpointslice.reconcile(service(), pods, apply(plan, []))


def test_max_per_slice_is_honoured() -> None:
    pods = [pod(f"p{i}", f"10.244.0.{i + 1}") for i in range(5)]
    plan = endpointslice.reconcile(service(), pods, [], max_per_slice=2)
    assert [len(s["endpoints"]) for s in plan.create] == [2, 2, 1]


SCENARIOS = [
    pytest.param([pod("a")], [pod("a")], Plan(), id="unchanged"),
    pytest.param([pod("a"), pod("b", "10.244.0.2")], [pod("a")], "update", id="pod-removed"),
    pytest.param([pod("a")], [pod("a", ready=False)], "update", id="pod-not-ready"),
    pytest.param([pod("a")], [pod("a"), pod("b", "10.244.0.2")], "update", id="pod-added"),
    pytest.param([pod("a")], [pod("a", "10.244.9.9")], "update", id="pod-ip-changed"),
]


@pytest.mark.parametrize(("before", "after", "expected"), SCENARIOS)
def test_changes_update_in_place(before: list[dict[str, Any]], after: list[dict[str, Any]],
                                 expected: Plan | str) -> None:
    svc = service()
    existing = apply(endpointslice.reconcile(svc, before, []), [])
    plan = endpointslice.reconcile(svc, after, existing)
    if expected == "update":
        assert not plan.create and not plan.delete
        assert [s["metadata"]["name"] for s in plan.update] == [existing[0]["metadata"]["name"]]
        assert plan.update[0]["metadata"]["resourceVersion"] == "5"
        assert not endpointslice.reconcile(svc, after, apply(plan, existing))
    else:
        assert plan == expected


def test_new_endpoints_fill_existing_slice_before_creating() -> None:
    svc = service()
    pods = [pod(f"p{i:03}", f"10.244.1.{i + 1}") for i in range(150)]
    existing = apply(endpointslice.reconcile(svc, pods, []), [])
    pods.append(pod("zzz", "10.244.2.1"))
    plan = endpointslice.reconcile(svc, pods, existing)
    assert not plan.create and not plan.delete
    assert len(plan.update) == 1 and len(plan.update[0]["endpoints"]) == 51


def test_externalname_deletes_managed_slices() -> None:
    existing = apply(endpointslice.reconcile(service(), [pod("a")], []), [])
    plan = endpointslice.reconcile(service(type_="ExternalName"), [pod("a")], existing)
    assert plan == Plan(delete=[existing[0]["metadata"]["name"]])


def test_selectorless_service_is_left_alone() -> None:
    assert endpointslice.reconcile(service(selector={}), [pod("a")], []) == Plan()


def test_no_pods_keep_one_placeholder() -> None:
    placeholder = only_slice(endpointslice.reconcile(service(), [], []))
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    existing = apply(Plan(create=[placeholder]), [])
    assert endpointslice.reconcile(service(), [], existing) == Plan()
    with_pod = endpointslice.reconcile(service(), [pod("a")], existing)
    assert len(with_pod.create) == 1 and with_pod.delete == [existing[0]["metadata"]["name"]]


def test_last_pod_gone_leaves_placeholder() -> None:
    existing = apply(endpointslice.reconcile(service(), [pod("a")], []), [])
    plan = endpointslice.reconcile(service(), [], existing)
    assert plan.delete == [existing[0]["metadata"]["name"]]
    assert [s["endpoints"] for s in plan.create] == [[]]


def test_headless_service_gets_slices_with_label() -> None:
    created = only_slice(endpointslice.reconcile(service(headless=True), [pod("a")], []))
    assert created["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert created["endpoints"]


def test_service_label_change_updates_slice() -> None:
    existing = apply(endpointslice.reconcile(service(), [pod("a")], []), [])
    plan = endpointslice.reconcile(service(labels={"tier": "x"}), [pod("a")], existing)
    assert len(plan.update) == 1 and plan.update[0]["metadata"]["labels"]["tier"] == "x"


def test_ipv6_pods_without_families_give_ipv6_slice() -> None:
    svc = service()
    del svc["spec"]["ipFamilies"]
    created = only_slice(endpointslice.reconcile(svc, [pod("a", "fd00::1")], []))
    assert created["addressType"] == "IPv6"
    assert created["endpoints"][0]["addresses"] == ["fd00::1"]


def test_duplicate_endpoint_in_two_slices_is_removed_once() -> None:
    svc = service()
    first = apply(endpointslice.reconcile(svc, [pod("a")], []), [])
    duplicate = as_existing(first[0], "dup")
    plan = endpointslice.reconcile(svc, [pod("a")], [*first, duplicate])
    assert len(plan.delete) == 1 and not plan.create and not plan.update
    assert plan.delete[0] in ("dup", first[0]["metadata"]["name"])


def test_emptied_slice_is_reused_for_new_endpoints() -> None:
    svc = service()
    existing = apply(endpointslice.reconcile(svc, [pod("a")], []), [])
    plan = endpointslice.reconcile(svc, [pod("b", "10.244.0.2")], existing)
    assert not plan.create and not plan.delete
    assert [e["targetRef"]["name"] for e in plan.update[0]["endpoints"]] == ["b"]


def test_reconcile_never_mutates_its_inputs() -> None:
    svc = service(headless=True, labels={"x": "y"})
    pods = [pod(f"p{i}", f"10.244.0.{i + 1}", ready=i % 2 == 0, hostname=f"p{i}",
                subdomain="web") for i in range(120)]
    existing = apply(endpointslice.reconcile(service(), pods[:110], []), [])
    snapshot = copy.deepcopy((svc, pods, existing))
    plan = endpointslice.reconcile(svc, pods, existing)
    assert plan.update  # the update path copies the cached slices' metadata
    for body in plan.update:
        body["metadata"]["labels"]["mutated"] = "yes"
        body["endpoints"].clear()
    assert (svc, pods, existing) == snapshot
