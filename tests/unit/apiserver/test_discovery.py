"""Discovery documents: shapes kubectl relies on (kubectl-compat.md §2) and content negotiation."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.api import resources
from tinykube.apiserver import discovery

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


def aggregated_resource(group: str, version: str, plural: str) -> dict[str, Any]:
    doc = discovery.aggregated(core=group == "")
    for item in doc["items"]:
        if item["metadata"]["name"] != group:
            continue
        for entry in item["versions"]:
            if entry["version"] != version:
                continue
            for resource in entry["resources"]:
                if resource["resource"] == plural:
                    return dict(resource)
    raise AssertionError(f"{group}/{version} {plural} not in aggregated discovery")


def legacy_entry(group: str, version: str, name: str) -> dict[str, Any]:
    doc = discovery.api_resource_list(group, version)
    assert doc is not None
    matches = [entry for entry in doc["resources"] if entry["name"] == name]
    assert len(matches) == 1, name
    return dict(matches[0])


# --- negotiation ------------------------------------------------------------------------------

ACCEPT = [
    ("kubectl-1.32", f"{V2},{V2BETA1},application/json", "v2"),
    ("kubectl-1.28-v2beta1-only", f"{V2BETA1},application/json", "v2beta1"),
    ("legacy-gv-fetch", "application/json, */*", None),
    ("plain-json", "application/json", None),
    ("empty", "", None),
    ("wildcard", "*/*", None),
    ("spaces-around-params",
     "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList", "v2"),
    ("json-before-aggregated", f"application/json,{V2}", None),
    ("pretty-json-is-legacy", f"application/json;pretty=true,{V2}", None),
    ("protobuf-skipped", "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;"
                         f"as=APIGroupDiscoveryList,{V2BETA1}", "v2beta1"),
    ("unknown-version-skipped", f"{V2.replace('v=v2', 'v=v3')},{V2BETA1}", "v2beta1"),
    ("wrong-group-skipped", f"{V2.replace('apidiscovery', 'other')},application/json", None),
    ("missing-as-skipped", "application/json;g=apidiscovery.k8s.io;v=v2,application/json", None),
    ("q-values-reorder", f"application/json;q=0.5,{V2BETA1};q=0.9", "v2beta1"),
    ("q-zero-refused", f"{V2};q=0,application/json", None),
    ("only-unservable", "application/yaml", None),
]


@pytest.mark.parametrize(("accept", "expected"), [a[1:] for a in ACCEPT],
                         ids=[a[0] for a in ACCEPT])
def test_negotiate(accept: str, expected: str | None) -> None:
    assert discovery.negotiate(accept) == expected


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
def test_content_type_is_the_exact_string_kubectl_parses(version: str) -> None:
    assert discovery.AGGREGATED_CONTENT_TYPE[version] == {"v2": V2, "v2beta1": V2BETA1}[version]


# --- aggregated -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
@pytest.mark.parametrize("core", [True, False], ids=["api", "apis"])
def test_aggregated_envelope(core: bool, version: str) -> None:
    doc = discovery.aggregated(core, version)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    assert doc["metadata"] == {}
    names = [item["metadata"]["name"] for item in doc["items"]]
    assert ("" in names) == core and all(names) != core


def test_aggregated_group_and_version_order() -> None:
    order = [(item["metadata"]["name"], [v["version"] for v in item["versions"]])
             for item in discovery.aggregated(core=False)["items"]]
    # kube-apiserver's group priorities, as its aggregated discovery lists them
    assert order == [
        ("apiregistration.k8s.io", ["v1"]),
        ("apps", ["v1", "v1beta2", "v1beta1"]),
        ("events.k8s.io", ["v1"]),
        ("authentication.k8s.io", ["v1"]),
        ("authorization.k8s.io", ["v1"]),
        ("autoscaling", ["v2", "v1"]),
        ("batch", ["v1"]),
        ("certificates.k8s.io", ["v1"]),
        ("networking.k8s.io", ["v1"]),
        ("policy", ["v1"]),
        ("rbac.authorization.k8s.io", ["v1"]),
        ("storage.k8s.io", ["v1"]),
        ("admissionregistration.k8s.io", ["v1"]),
        ("apiextensions.k8s.io", ["v1"]),
        ("scheduling.k8s.io", ["v1"]),
        ("coordination.k8s.io", ["v1"]),
        ("node.k8s.io", ["v1"]),
        ("discovery.k8s.io", ["v1"]),
        ("flowcontrol.apiserver.k8s.io", ["v1"]),
        ("metrics.k8s.io", ["v1beta1"]),  # an APIService's priority (100): last
    ]
    core = discovery.aggregated(core=True)["items"]
    assert [(i["metadata"]["name"], [v["version"] for v in i["versions"]]) for i in core] == [
        ("", ["v1"])]


@pytest.mark.parametrize("core", [True, False], ids=["api", "apis"])
def test_every_version_current_and_resources_alphabetical(core: bool) -> None:
    for item in discovery.aggregated(core)["items"]:
        for entry in item["versions"]:
            assert entry["freshness"] == "Current"
            plurals = [r["resource"] for r in entry["resources"]]
            assert plurals == sorted(plurals)
            assert plurals, (item["metadata"]["name"], entry["version"])


def test_aggregated_lists_every_registry_resource_once() -> None:
    listed = sorted(
        (item["metadata"]["name"], entry["version"], resource["resource"])
        for core in (True, False)
        for item in discovery.aggregated(core)["items"]
        for entry in item["versions"]
        for resource in entry["resources"]
    )
    assert listed == sorted((r.group, r.version, r.plural) for r in resources.ALL)


# (id, group, version, plural, kind, scope, shortNames, categories)
NAMES = [
    ("configmaps", "", "v1", "configmaps", "ConfigMap", "Namespaced", ["cm"], None),
    ("endpoints", "", "v1", "endpoints", "Endpoints", "Namespaced", ["ep"], None),
    ("events", "", "v1", "events", "Event", "Namespaced", ["ev"], None),
    ("namespaces", "", "v1", "namespaces", "Namespace", "Cluster", ["ns"], None),
    ("nodes", "", "v1", "nodes", "Node", "Cluster", ["no"], None),
    ("pvc", "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "Namespaced", ["pvc"],
     None),
    ("pods", "", "v1", "pods", "Pod", "Namespaced", ["po"], ["all"]),
    ("secrets", "", "v1", "secrets", "Secret", "Namespaced", None, None),
    ("serviceaccounts", "", "v1", "serviceaccounts", "ServiceAccount", "Namespaced", ["sa"], None),
    ("services", "", "v1", "services", "Service", "Namespaced", ["svc"], ["all"]),
    ("controllerrevisions", "apps", "v1", "controllerrevisions", "ControllerRevision",
     "Namespaced", None, None),
    ("deployments", "apps", "v1", "deployments", "Deployment", "Namespaced", ["deploy"], ["all"]),
    ("replicasets", "apps", "v1", "replicasets", "ReplicaSet", "Namespaced", ["rs"], ["all"]),
    ("statefulsets", "apps", "v1", "statefulsets", "StatefulSet", "Namespaced", ["sts"], ["all"]),
    ("statefulsets-v1beta2", "apps", "v1beta2", "statefulsets", "StatefulSet", "Namespaced",
     ["sts"], ["all"]),
    ("statefulsets-v1beta1", "apps", "v1beta1", "statefulsets", "StatefulSet", "Namespaced",
     ["sts"], ["all"]),
    ("deployments-v1beta1", "apps", "v1beta1", "deployments", "Deployment", "Namespaced",
     ["deploy"], ["all"]),
    ("leases", "coordination.k8s.io", "v1", "leases", "Lease", "Namespaced", None, None),
    ("endpointslices", "discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", "Namespaced",
     None, None),
    ("runtimeclasses", "node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", "Cluster", None,
     None),
    ("storageclasses", "storage.k8s.io", "v1", "storageclasses", "StorageClass", "Cluster",
     ["sc"], None),
]


@pytest.mark.parametrize(
    ("group", "version", "plural", "kind", "scope", "short_names", "categories"),
    [n[1:] for n in NAMES], ids=[n[0] for n in NAMES])
def test_aggregated_names(group: str, version: str, plural: str, kind: str, scope: str,
                          short_names: list[str] | None, categories: list[str] | None) -> None:
    entry = aggregated_resource(group, version, plural)
    assert entry["responseKind"] == {"group": group, "version": version, "kind": kind}
    assert entry["scope"] == scope
    assert entry["singularResource"] == kind.lower()
    assert entry.get("shortNames") == short_names
    assert entry.get("categories") == categories


VERBS = [
    ("pods", "", "pods", ALL_VERBS),
    ("services", "", "services", ALL_VERBS),
    ("namespaces-no-deletecollection", "", "namespaces",
     ["create", "delete", "get", "list", "patch", "update", "watch"]),
    ("statefulsets", "apps", "statefulsets", ALL_VERBS),
]


@pytest.mark.parametrize(("group", "plural", "verbs"), [v[1:] for v in VERBS],
                         ids=[v[0] for v in VERBS])
def test_verbs(group: str, plural: str, verbs: list[str]) -> None:
    assert aggregated_resource(group, "v1", plural)["verbs"] == verbs
    assert legacy_entry(group, "v1", plural)["verbs"] == verbs


# (id, group, version, plural, [(subresource, responseKind, verbs)]) in alphabetical order
SUBRESOURCES = [
    ("statefulsets", "apps", "v1", "statefulsets", [
        ("scale", ("autoscaling", "v1", "Scale"), STATUS_VERBS),
        ("status", ("apps", "v1", "StatefulSet"), STATUS_VERBS),
    ]),
    ("statefulsets-v1beta1", "apps", "v1beta1", "statefulsets", [
        ("scale", ("autoscaling", "v1", "Scale"), STATUS_VERBS),
        ("status", ("apps", "v1beta1", "StatefulSet"), STATUS_VERBS),
    ]),
    ("deployments", "apps", "v1", "deployments", [
        ("scale", ("autoscaling", "v1", "Scale"), STATUS_VERBS),
        ("status", ("apps", "v1", "Deployment"), STATUS_VERBS),
    ]),
    ("replicasets", "apps", "v1", "replicasets", [
        ("scale", ("autoscaling", "v1", "Scale"), STATUS_VERBS),
        ("status", ("apps", "v1", "ReplicaSet"), STATUS_VERBS),
    ]),
    ("pods", "", "v1", "pods", [
        ("attach", ("", "v1", "PodAttachOptions"), ["create", "get"]),
        ("binding", ("", "v1", "Binding"), ["create"]),
        ("eviction", ("policy", "v1", "Eviction"), ["create"]),
        ("exec", ("", "v1", "PodExecOptions"), ["create", "get"]),
        ("log", ("", "v1", "Pod"), ["get"]),
        ("portforward", ("", "v1", "PodPortForwardOptions"), ["create", "get"]),
        ("status", ("", "v1", "Pod"), STATUS_VERBS),
    ]),
    ("namespaces", "", "v1", "namespaces", [
        ("finalize", ("", "v1", "Namespace"), ["update"]),
        ("status", ("", "v1", "Namespace"), STATUS_VERBS),
    ]),
]


@pytest.mark.parametrize(("group", "version", "plural", "expected"),
                         [s[1:] for s in SUBRESOURCES], ids=[s[0] for s in SUBRESOURCES])
def test_aggregated_subresources(group: str, version: str, plural: str,
                                 expected: list[tuple[str, tuple[str, str, str], list[str]]]
                                 ) -> None:
    subresources = aggregated_resource(group, version, plural)["subresources"]
    assert subresources == [
        {"subresource": name, "responseKind": dict(zip(("group", "version", "kind"), gvk,
                                                       strict=True)),
         "verbs": verbs}
        for name, gvk, verbs in expected
    ]


def test_resources_without_subresources_omit_the_key() -> None:
    assert "subresources" not in aggregated_resource("", "v1", "configmaps")


# --- legacy -----------------------------------------------------------------------------------


def test_api_versions() -> None:
    assert discovery.api_versions("10.0.0.1:6443") == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": "10.0.0.1:6443"}],
    }


def gv(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _group(name: str, *versions: str) -> dict[str, Any]:
    return {"name": name, "versions": [gv(name, v) for v in versions],
            "preferredVersion": gv(name, versions[0])}


def test_api_group_list_golden() -> None:
    assert discovery.api_group_list() == {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            _group("apiregistration.k8s.io", "v1"),
            _group("apps", "v1", "v1beta2", "v1beta1"),
            _group("events.k8s.io", "v1"),
            _group("authentication.k8s.io", "v1"),
            _group("authorization.k8s.io", "v1"),
            _group("autoscaling", "v2", "v1"),
            _group("batch", "v1"),
            _group("certificates.k8s.io", "v1"),
            _group("networking.k8s.io", "v1"),
            _group("policy", "v1"),
            _group("rbac.authorization.k8s.io", "v1"),
            _group("storage.k8s.io", "v1"),
            _group("admissionregistration.k8s.io", "v1"),
            _group("apiextensions.k8s.io", "v1"),
            _group("scheduling.k8s.io", "v1"),
            _group("coordination.k8s.io", "v1"),
            _group("node.k8s.io", "v1"),
            _group("discovery.k8s.io", "v1"),
            _group("flowcontrol.apiserver.k8s.io", "v1"),
            _group("metrics.k8s.io", "v1beta1"),
        ],
    }


GROUPS = [
    ("apps", "apps", "v1"),
    ("discovery", "discovery.k8s.io", "v1"),
    ("core-is-not-a-named-group", "", None),
    ("autoscaling-prefers-v2", "autoscaling", "v2"),
    ("unknown", "resource.k8s.io", None),  # DRA: beta in 1.32, off by default
]


@pytest.mark.parametrize(("group", "preferred"), [g[1:] for g in GROUPS],
                         ids=[g[0] for g in GROUPS])
def test_api_group(group: str, preferred: str | None) -> None:
    doc = discovery.api_group(group)
    if preferred is None:
        assert doc is None
        return
    assert doc is not None
    assert doc["kind"] == "APIGroup" and doc["name"] == group
    assert doc["preferredVersion"] == gv(group, preferred)
    assert doc["versions"][0] == doc["preferredVersion"]


def test_apps_v1_resource_list_names_in_order() -> None:
    doc = discovery.api_resource_list("apps", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "apps/v1"
    assert [entry["name"] for entry in doc["resources"]] == [
        "controllerrevisions", "daemonsets", "daemonsets/status",
        "deployments", "deployments/scale", "deployments/status",
        "replicasets", "replicasets/scale", "replicasets/status",
        "statefulsets", "statefulsets/scale", "statefulsets/status",
    ]


LEGACY_ENTRIES = [
    ("statefulsets", "apps", "v1", "statefulsets",
     {"name": "statefulsets", "singularName": "statefulset", "namespaced": True,
      "kind": "StatefulSet", "verbs": ALL_VERBS, "shortNames": ["sts"], "categories": ["all"]}),
    ("statefulsets/scale", "apps", "v1", "statefulsets/scale",
     {"name": "statefulsets/scale", "singularName": "", "namespaced": True,
      "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": STATUS_VERBS}),
    ("statefulsets/status", "apps", "v1", "statefulsets/status",
     {"name": "statefulsets/status", "singularName": "", "namespaced": True,
      "kind": "StatefulSet", "verbs": STATUS_VERBS}),
    ("pods/log", "", "v1", "pods/log",
     {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
      "verbs": ["get"]}),
    ("nodes", "", "v1", "nodes",
     {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
      "verbs": ALL_VERBS, "shortNames": ["no"]}),
    ("secrets", "", "v1", "secrets",
     {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
      "verbs": ALL_VERBS}),
    # metrics-server's APIResourceList: get and list, no singular names
    ("metrics-nodes", "metrics.k8s.io", "v1beta1", "nodes",
     {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
      "verbs": ["get", "list"]}),
    ("metrics-pods", "metrics.k8s.io", "v1beta1", "pods",
     {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
      "verbs": ["get", "list"]}),
]


@pytest.mark.parametrize(("group", "version", "name", "expected"),
                         [e[1:] for e in LEGACY_ENTRIES], ids=[e[0] for e in LEGACY_ENTRIES])
def test_legacy_resource_entry(group: str, version: str, name: str,
                               expected: dict[str, Any]) -> None:
    assert legacy_entry(group, version, name) == expected


UNSERVED = [("core-v2", "", "v2"), ("apps-v2", "apps", "v2"),
            ("policy-v1beta1", "policy", "v1beta1"),
            ("servicecidrs-beta", "networking.k8s.io", "v1beta1"),
            ("unknown-group", "example.com", "v1")]


@pytest.mark.parametrize(("group", "version"), [u[1:] for u in UNSERVED],
                         ids=[u[0] for u in UNSERVED])
def test_unserved_group_version(group: str, version: str) -> None:
    assert discovery.api_resource_list(group, version) is None


@pytest.mark.parametrize("resource", resources.ALL,
                         ids=[f"{r.group_version}/{r.plural}" for r in resources.ALL])
def test_legacy_and_aggregated_agree(resource: resources.Resource) -> None:
    aggregated = aggregated_resource(resource.group, resource.version, resource.plural)
    legacy = legacy_entry(resource.group, resource.version, resource.plural)
    assert legacy["kind"] == aggregated["responseKind"]["kind"]
    assert legacy["namespaced"] == (aggregated["scope"] == "Namespaced")
    assert legacy["verbs"] == aggregated["verbs"]
    assert legacy.get("shortNames") == aggregated.get("shortNames")
    assert legacy.get("categories") == aggregated.get("categories")
    subresources = [f"{resource.plural}/{s['subresource']}"
                    for s in aggregated.get("subresources", [])]
    assert all(legacy_entry(resource.group, resource.version, name) for name in subresources)


def test_documents_are_built_once() -> None:
    assert discovery.aggregated(True) is discovery.aggregated(True)
    assert discovery.api_resource_list("", "v1") is discovery.api_resource_list("", "v1")
