"""Patches: JSON merge patch, JSON patch, strategic merge patch and (simplified) apply.

The strategic cases are the wire bodies of kubectl-compat.md §6.1 applied to live objects that
carry what a real server adds (status, defaults, uid, resourceVersion), which must survive, plus
one table row per directive and per merge-key rule of §6.3.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinykube.api import errors, patch

Obj = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REJECTED = "the server rejected our request due to an error in our request"


def live_service() -> Obj:
    """The seed Service as kube-apiserver stores it: defaults and status filled in."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "nginx", "namespace": "default", "uid": "5f3c2a1e-0000-4000-8000-000000000001",
            "resourceVersion": "41", "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": "nginx"},
            "annotations": {LAST_APPLIED: '{"apiVersion":"v1","kind":"Service"}\n'},
        },
        "spec": {
            "clusterIP": "None", "clusterIPs": ["None"], "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": 80}],
            "selector": {"app": "nginx"}, "sessionAffinity": "None", "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


def live_statefulset() -> Obj:
    """The seed StatefulSet (apps/v1) with the server's defaults and a status."""
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "generation": 1,
                     "uid": "5f3c2a1e-0000-4000-8000-000000000002", "resourceVersion": "42",
                     "annotations": {LAST_APPLIED: "{}\n"}},
        "spec": {
            "replicas": 1, "serviceName": "nginx", "podManagementPolicy": "OrderedReady",
            "revisionHistoryLimit": 10, "selector": {"matchLabels": {"app": "nginx"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.11", "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 80, "name": "web", "protocol": "TCP"}],
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}],
                    }],
                    "dnsPolicy": "ClusterFirst", "nodeSelector": {"node": "kube-node3"},
                    "restartPolicy": "Always", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30,
                    "volumes": [{"name": "www", "hostPath": {"path": "/mydir", "type": ""}}],
                },
            },
        },
        "status": {"availableReplicas": 1, "currentReplicas": 1, "observedGeneration": 1,
                   "readyReplicas": 1, "replicas": 1, "updatedReplicas": 1,
                   "currentRevision": "web-6d4cf56db6", "updateRevision": "web-6d4cf56db6"},
    }


def smp(kind: str, original: Obj, body: Obj) -> Obj:
    """Send `body` the way kubectl does: JSON bytes with the SMP content type."""
    return patch.apply_patch(kind, original, orjson.dumps(body),
                             "application/strategic-merge-patch+json")


def pod_spec(sts: Obj) -> Obj:
    spec: Obj = sts["spec"]["template"]["spec"]
    return spec


# --- the wire examples of kubectl-compat.md §6.1 ----------------------------------------------

def test_service_apply_patch_adds_port_in_order_and_drops_labels() -> None:
    body = {"metadata": {"annotations": {LAST_APPLIED: "new\n"}, "labels": None},
            "spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                     "ports": [{"name": "tls", "port": 443}]}}
    expected = live_service()
    del expected["metadata"]["labels"]
    expected["metadata"]["annotations"][LAST_APPLIED] = "new\n"
    expected["spec"]["ports"].insert(0, {"name": "tls", "port": 443})

    assert smp("Service", live_service(), body) == expected


def test_statefulset_apply_patch_adds_sidecar_and_swaps_port() -> None:
    body = {"metadata": {"annotations": {LAST_APPLIED: "v3\n"}}, "spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
        "containers": [
            {"image": "busybox", "name": "sidecar"},
            {"$setElementOrder/ports": [{"containerPort": 8080}], "name": "nginx",
             "ports": [{"containerPort": 8080, "name": "alt"},
                       {"$patch": "delete", "containerPort": 80}]},
        ]}}}}
    expected = live_statefulset()
    expected["metadata"]["annotations"][LAST_APPLIED] = "v3\n"
    nginx = pod_spec(expected)["containers"][0]
    nginx["ports"] = [{"containerPort": 8080, "name": "alt"}]
    pod_spec(expected)["containers"] = [{"image": "busybox", "name": "sidecar"}, nginx]

    assert smp("StatefulSet", live_statefulset(), body) == expected


@pytest.mark.parametrize(("kind", "body", "change"), [
    pytest.param(
        "StatefulSet",
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                                        "containers": [{"image": "nginx:0.9", "name": "nginx"}]}}}},
        lambda o: pod_spec(o)["containers"][0].update(image="nginx:0.9"),
        id="set-image"),
    pytest.param(
        "StatefulSet",
        {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-01-02T03:04:05Z"}}}}},
        lambda o: o["spec"]["template"]["metadata"].update(
            annotations={"kubectl.kubernetes.io/restartedAt": "2025-01-02T03:04:05Z"}),
        id="rollout-restart"),
    pytest.param(
        "StatefulSet",
        {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "old"}},
                               "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}},
        lambda o: o["spec"].update(template={"metadata": {"labels": {"app": "old"}},
                                             "spec": {"containers": [{"name": "nginx",
                                                                      "image": "nginx:1"}]}}),
        id="rollout-undo-replaces-template"),
    pytest.param(
        "Service", {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        lambda o: o["spec"]["ports"][0].update(targetPort=8080),
        id="service-port-merged-by-port"),
])
def test_kubectl_patches_keep_server_fields(kind: str, body: Obj,
                                            change: Callable[[Obj], None]) -> None:
    live = live_service() if kind == "Service" else live_statefulset()
    expected = copy.deepcopy(live)
    change(expected)
    assert smp(kind, live, body) == expected


# --- strategic merge patch: one row per directive and merge rule ------------------------------

def pod(spec: Obj | None = None, **meta: Any) -> Obj:
    obj: Obj = {"metadata": {"name": "p", **meta}}
    if spec is not None:
        obj["spec"] = spec
    return obj


def containers(*items: Obj) -> Obj:
    return {"containers": list(items)}


SMP_CASES = [
    pytest.param("Pod", pod(labels={"a": "1", "b": "2"}),
                 {"metadata": {"labels": {"a": None, "c": "3"}}},
                 pod(labels={"b": "2", "c": "3"}), id="null-deletes-key"),
    pytest.param("Pod", pod(labels={"a": "1"}), {"metadata": {"annotations": None}},
                 pod(labels={"a": "1"}), id="null-for-missing-key-is-noop"),
    pytest.param("Pod", pod(labels={"a": "1", "b": "2"}),
                 {"metadata": {"labels": {"$patch": "replace", "c": "3"}}},
                 pod(labels={"c": "3"}), id="map-patch-replace"),
    pytest.param("Pod", pod(labels={"a": "1"}), {"metadata": {"labels": {"$patch": "delete"}}},
                 pod(labels={}), id="map-patch-delete-empties-it"),
    pytest.param("Pod", pod(containers({"name": "a", "image": "x"}, {"name": "b"})),
                 {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "y"}]}},
                 pod(containers({"name": "c", "image": "y"})), id="list-patch-replace"),
    pytest.param("Pod", pod(containers({"name": "a"}, {"name": "b"}, {"name": "c"})),
                 {"spec": {"containers": [{"$patch": "delete", "name": "b"}]}},
                 pod(containers({"name": "a"}, {"name": "c"})), id="list-item-patch-delete"),
    pytest.param("Pod", pod(containers({"name": "a"}, {"name": "b"}, {"name": "c"})),
                 {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}},
                 pod(containers({"name": "b"}, {"name": "c"}, {"name": "a"})),
                 id="set-element-order-server-only-before-its-successor"),
    pytest.param("Pod", pod(containers({"name": "a"}, {"name": "b"})),
                 {"spec": {"containers": [{"name": "c"}]}},
                 pod(containers({"name": "c"}, {"name": "a"}, {"name": "b"})),
                 id="new-item-without-order-goes-first-like-upstream"),
    pytest.param("Pod", pod(containers({"name": "a", "env": [
                     {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]})),
                 {"spec": {"containers": [{"name": "a", "env": [
                     {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}},
                 pod(containers({"name": "a", "env": [
                     {"name": "A", "value": "1"}, {"name": "B", "value": "20"},
                     {"name": "C", "value": "3"}]})),
                 id="env-merged-by-name"),
    pytest.param("Pod", pod(containers({"name": "a", "volumeMounts": [
                     {"name": "v", "mountPath": "/a", "readOnly": True}]})),
                 {"spec": {"containers": [{"name": "a", "volumeMounts": [
                     {"name": "w", "mountPath": "/a"}]}]}},
                 pod(containers({"name": "a", "volumeMounts": [
                     {"name": "w", "mountPath": "/a", "readOnly": True}]})),
                 id="volume-mounts-merged-by-mount-path"),
    pytest.param("Pod", pod({"tolerations": [{"key": "a", "operator": "Exists"},
                                              {"key": "b", "operator": "Exists"}]}),
                 {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}},
                 pod({"tolerations": [{"key": "c", "operator": "Exists"}]}),
                 id="tolerations-replaced"),
    pytest.param("Pod", pod(containers({"name": "a", "args": ["x", "y"]})),
                 {"spec": {"containers": [{"name": "a", "args": ["z"]}]}},
                 pod(containers({"name": "a", "args": ["z"]})), id="args-replaced"),
    pytest.param("Pod", pod(finalizers=["a", "b"]), {"metadata": {"finalizers": ["b", "c"]}},
                 pod(finalizers=["a", "b", "c"]), id="finalizers-union"),
    pytest.param("Pod", pod(finalizers=["a", "b", "c"]),
                 {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}},
                 pod(finalizers=["a", "c"]), id="delete-from-primitive-list"),
    pytest.param("Pod", pod(labels={"a": "1"}),
                 {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
                 pod(labels={"a": "1"}), id="delete-from-missing-list-is-noop"),
    pytest.param("Pod", pod(finalizers=["a", "b"]),
                 {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"],
                               "finalizers": ["c"]}},
                 pod(finalizers=["b", "c", "a"]), id="primitive-list-set-element-order"),
    pytest.param("Pod", pod(ownerReferences=[{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]),
                 {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}},
                 pod(ownerReferences=[{"uid": "1", "name": "a"},
                                      {"uid": "2", "name": "b", "controller": True}]),
                 id="owner-references-merged-by-uid"),
    pytest.param("Pod", pod({"volumes": [{"name": "www", "hostPath": {"path": "/mydir"}}]}),
                 {"spec": {"volumes": [{"$retainKeys": ["emptyDir", "name"], "name": "www",
                                        "emptyDir": {}}]}},
                 pod({"volumes": [{"name": "www", "emptyDir": {}}]}), id="retain-keys-volume"),
    pytest.param("Deployment",
                 {"spec": {"strategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": "25%"}}}},
                 {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
                 {"spec": {"strategy": {"type": "Recreate"}}}, id="retain-keys-strategy"),
    pytest.param("Pod", {"status": {"conditions": [
                     {"type": "Ready", "status": "False"},
                     {"type": "Initialized", "status": "True"}]}},
                 {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                 {"status": {"conditions": [
                     {"type": "Ready", "status": "True"},
                     {"type": "Initialized", "status": "True"}]}},
                 id="pod-conditions-merged-by-type"),
    pytest.param("Deployment",
                 {"spec": {"template": {"spec": containers({"name": "a", "ports": [
                     {"containerPort": 80, "name": "http"}]})}}},
                 {"spec": {"template": {"spec": containers({"name": "a", "ports": [
                     {"containerPort": 80, "protocol": "TCP"}]})}}},
                 {"spec": {"template": {"spec": containers({"name": "a", "ports": [
                     {"containerPort": 80, "name": "http", "protocol": "TCP"}]})}}},
                 id="pod-template-spec-depth-merges"),
    pytest.param("Deployment", {"spec": containers({"name": "a"})},
                 {"spec": containers({"name": "b"})}, {"spec": containers({"name": "b"})},
                 id="containers-at-wrong-depth-replaced"),
    pytest.param("Widget", {"metadata": {"finalizers": ["a"]}, "spec": containers({"name": "a"})},
                 {"metadata": {"finalizers": ["b"]}, "spec": containers({"name": "b"})},
                 {"metadata": {"finalizers": ["b"]}, "spec": containers({"name": "b"})},
                 id="unknown-kind-replaces-lists"),
    pytest.param("Pod", pod(containers({"name": "a"})),
                 {"spec": {"containers": [{"name": "a", "env": [
                     {"name": "X", "value": None}, {"$patch": "delete", "name": "Y"}]}]}},
                 pod(containers({"name": "a", "env": [{"name": "X"}]})),
                 id="new-values-lose-directives-and-nulls"),
    pytest.param("Pod", pod(labels={"a": "1"}), {"metadata": {"labels": ["x"]}},
                 pod(labels=["x"]), id="different-shape-replaces"),
]


@pytest.mark.parametrize(("kind", "original", "body", "expected"), SMP_CASES)
def test_strategic_merge_patch(kind: str, original: Obj, body: Obj, expected: Obj) -> None:
    assert patch.strategic_merge_patch(kind, original, body) == expected


def test_service_ports_53_tcp_and_udp_collide() -> None:
    """ServiceSpec.ports merges by port alone (§6.3): a patch meant for 53/TCP hits 53/UDP."""
    live = live_service()
    live["spec"]["ports"] = [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
    ]
    body = {"spec": {"ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP",
                                "targetPort": 5353}]}}

    ports = smp("Service", live, body)["spec"]["ports"]

    assert ports == [{"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
                     {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]


@pytest.mark.parametrize(("body", "error", "message"), [
    pytest.param({"metadata": {"labels": {"$patch": "merge"}}}, patch.PatchFailed,
                 "unknown patch type: merge in map: map[$patch:merge]", id="map-patch-merge"),
    pytest.param({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}, patch.PatchFailed,
                 "merging lists cannot yet be specified in the patch", id="list-patch-merge"),
    pytest.param({"spec": {"containers": [{"image": "busybox"}]}}, patch.PatchFailed,
                 "map: map[image:busybox] does not contain declared merge key: name",
                 id="missing-merge-key"),
    pytest.param({"spec": {"$setElementOrder/containers": [{"name": "b"}],
                           "containers": [{"name": "a"}]}}, patch.PatchFailed,
                 "the order in patch list:\n[map[name:a]]\n doesn't match $setElementOrder "
                 "list:\n[map[name:b]]", id="order-list-misses-patch-item"),
    pytest.param({"spec": {"volumes": [{"$retainKeys": ["name"], "name": "www",
                                        "emptyDir": {}}]}}, errors.BadRequest,
                 "invalid patch format of retainKeys", id="retain-keys-misses-patch-key"),
    pytest.param({"spec": {"$retainKeys": "name"}}, errors.BadRequest,
                 "invalid patch format of retainKeys", id="retain-keys-not-a-list"),
    pytest.param({"metadata": {"$deleteFromPrimitiveList": ["a"]}}, errors.BadRequest,
                 "invalid patch format of primitive list", id="delete-list-without-field"),
    pytest.param({"metadata": {"$setElementOrder/finalizers": "a"}}, errors.BadRequest,
                 "invalid patch format of setElementOrder list", id="order-not-a-list"),
    pytest.param({"metadata": {"finalizers": [["a"]]}}, patch.PatchRejected, REJECTED,
                 id="list-of-lists"),
])
def test_strategic_merge_patch_errors(body: Obj, error: type[errors.APIError],
                                      message: str) -> None:
    live = pod(containers({"name": "a"}), labels={"a": "1"}, finalizers=["x"])
    with pytest.raises(error) as raised:
        smp("Pod", live, body)
    assert raised.value.message == message


def test_unconverted_smp_error_is_a_500_without_reason() -> None:
    with pytest.raises(patch.PatchFailed) as raised:
        smp("Pod", pod(containers({"name": "a"})), {"spec": {"containers": [{"image": "x"}]}})
    status = raised.value.to_status()
    assert (status["code"], status["reason"]) == (500, "")


# --- JSON merge patch (RFC 7386) ------------------------------------------------------------

@pytest.mark.parametrize(("original", "body", "expected"), [
    pytest.param({"a": 1}, {"b": 2}, {"a": 1, "b": 2}, id="add-key"),
    pytest.param({"a": 1, "b": 2}, {"a": None}, {"b": 2}, id="null-deletes"),
    pytest.param({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}},
                 id="nested-null-deletes"),
    pytest.param({"a": 1}, {"z": None}, {"a": 1}, id="null-for-missing-key"),
    pytest.param({"a": [1, 2]}, {"a": [3]}, {"a": [3]}, id="list-replaced"),
    pytest.param({"a": {"b": 1}}, {"a": "x"}, {"a": "x"}, id="scalar-replaces-map"),
    pytest.param({"a": "x"}, {"a": {"b": 1, "c": None}}, {"a": {"b": 1}},
                 id="map-into-scalar-drops-nulls"),
    pytest.param({"metadata": {"labels": {"app": "nginx", "tier": "web"}}},
                 {"metadata": {"labels": {"tier": None}}},
                 {"metadata": {"labels": {"app": "nginx"}}}, id="kubectl-label-removal"),
    pytest.param({"spec": {"replicas": 1, "serviceName": "nginx"}, "status": {"replicas": 1}},
                 {"spec": {"replicas": 3}},
                 {"spec": {"replicas": 3, "serviceName": "nginx"}, "status": {"replicas": 1}},
                 id="kubectl-scale"),
])
def test_merge_patch(original: Obj, body: Obj, expected: Obj) -> None:
    assert patch.apply_patch("Pod", original, orjson.dumps(body),
                             "application/merge-patch+json") == expected


# --- JSON patch (RFC 6902) ------------------------------------------------------------------

DOC: Obj = {"metadata": {"name": "p", "annotations": {"example.com/key": "v"}},
            "spec": {"items": ["a", "b", "c"], "n": 1}}


def doc_with(change: Callable[[Obj], Any]) -> Obj:
    changed = copy.deepcopy(DOC)
    change(changed)
    return changed


@pytest.mark.parametrize(("ops", "expected"), [
    pytest.param([{"op": "add", "path": "/spec/x", "value": {"y": 1}}],
                 doc_with(lambda d: d["spec"].update(x={"y": 1})), id="add-member"),
    pytest.param([{"op": "add", "path": "/spec/items/1", "value": "z"}],
                 doc_with(lambda d: d["spec"]["items"].insert(1, "z")), id="add-insert"),
    pytest.param([{"op": "add", "path": "/spec/items/-", "value": "z"}],
                 doc_with(lambda d: d["spec"]["items"].append("z")), id="add-append"),
    pytest.param([{"op": "add", "path": "/spec/items/-1", "value": "z"}],
                 doc_with(lambda d: d["spec"]["items"].insert(2, "z")),
                 id="add-negative-index-like-v4"),
    pytest.param([{"op": "add", "path": "/spec/n"}], doc_with(lambda d: d["spec"].update(n=None)),
                 id="add-without-value-is-null"),
    pytest.param([{"op": "remove", "path": "/spec/items/0"}],
                 doc_with(lambda d: d["spec"]["items"].pop(0)), id="remove-item"),
    pytest.param([{"op": "remove", "path": "/metadata/annotations/example.com~1key"}],
                 doc_with(lambda d: d["metadata"].update(annotations={})), id="escaped-slash"),
    pytest.param([{"op": "replace", "path": "/spec/n", "value": 2}],
                 doc_with(lambda d: d["spec"].update(n=2)), id="replace"),
    pytest.param([{"op": "move", "from": "/spec/n", "path": "/spec/m"}],
                 doc_with(lambda d: d["spec"].update(m=d["spec"].pop("n"))), id="move"),
    pytest.param([{"op": "copy", "from": "/spec/items", "path": "/spec/copy"}],
                 doc_with(lambda d: d["spec"].update(copy=["a", "b", "c"])), id="copy"),
    pytest.param([{"op": "test", "path": "/spec/items", "value": ["a", "b", "c"]},
                  {"op": "test", "path": "/spec/missing", "value": None},
                  {"op": "replace", "path": "/spec/n", "value": 5}],
                 doc_with(lambda d: d["spec"].update(n=5)), id="tests-pass"),
    pytest.param([{"op": "replace", "path": "", "value": {"kind": "X"}}], {"kind": "X"},
                 id="replace-root"),
])
def test_json_patch(ops: list[Obj], expected: Obj) -> None:
    assert patch.apply_patch("Pod", DOC, orjson.dumps(ops),
                             "application/json-patch+json") == expected


@pytest.mark.parametrize(("ops", "cause"), [
    pytest.param([{"op": "test", "path": "/spec/n", "value": 2}],
                 "testing value /spec/n failed: test failed", id="test-fails"),
    pytest.param([{"op": "test", "path": "/spec/n", "value": True}],
                 "testing value /spec/n failed: test failed", id="test-true-is-not-1"),
    pytest.param([{"op": "remove", "path": "/spec/nope"}],
                 "error in remove for path: '/spec/nope': Unable to remove nonexistent key: "
                 "nope: missing value", id="remove-missing"),
    pytest.param([{"op": "replace", "path": "/spec/nope", "value": 1}],
                 "replace operation does not apply: doc is missing key: /spec/nope: "
                 "missing value", id="replace-missing"),
    pytest.param([{"op": "add", "path": "/nope/x", "value": 1}],
                 'add operation does not apply: doc is missing path: "/nope/x": missing value',
                 id="add-missing-parent"),
    pytest.param([{"op": "add", "path": "/spec/items/9", "value": 1}],
                 "Unable to access invalid index: 9: invalid index referenced",
                 id="index-out-of-range"),
    pytest.param([{"op": "add", "path": "/spec/items/--1", "value": 1}],
                 "Unable to access invalid index: --1: invalid index referenced",
                 id="malformed-index"),
    pytest.param([{"op": "move", "from": "/nope", "path": "/x"}],
                 "move operation does not apply: doc is missing from path: /nope: missing value",
                 id="move-missing-from"),
    pytest.param([{"op": "frobnicate", "path": "/x"}], "Unexpected kind: frobnicate",
                 id="unknown-op"),
    pytest.param([{"op": "add", "value": 1}], "operation missing path field: missing value",
                 id="missing-path"),
    pytest.param([{"op": "add", "path": "spec", "value": 1}],
                 'JSON pointer must be empty or start with a "/": spec', id="bad-pointer"),
    pytest.param([{"op": "remove", "path": ""}],
                 'remove operation does not apply: doc is missing path: "": missing value',
                 id="remove-root"),
])
def test_json_patch_that_does_not_apply_is_422(ops: list[Obj], cause: str) -> None:
    with pytest.raises(patch.PatchRejected) as raised:
        patch.apply_patch("Pod", DOC, orjson.dumps(ops), "application/json-patch+json")
    assert raised.value.cause == cause
    assert raised.value.to_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": REJECTED, "reason": "Invalid", "code": 422, "details": {}}


# --- bodies and content types ---------------------------------------------------------------

@pytest.mark.parametrize(("content_type", "body", "error", "message"), [
    pytest.param("application/json-patch+json", b'{"op":"add"}', errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal object into Go value of type "
                 "[]handlers.jsonPatchOp", id="json-patch-not-a-list"),
    pytest.param("application/json-patch+json", b'[{"op":"add","path":1}]', errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal number into Go struct field "
                 "jsonPatchOp.path of type string", id="json-patch-path-not-string"),
    pytest.param("application/json-patch+json",
                 orjson.dumps([{"op": "test", "path": ""}] * 10001),
                 errors.RequestEntityTooLarge,
                 "Request entity too large: The allowed maximum operations in a JSON patch is "
                 "10000, got 10001", id="json-patch-too-many-ops"),
    pytest.param("application/merge-patch+json", b"[1]", errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal array into Go value of type "
                 "map[string]interface {}", id="merge-patch-not-an-object"),
    pytest.param("application/strategic-merge-patch+json", b'"x"', errors.BadRequest,
                 "json: cannot unmarshal string into Go value of type map[string]interface {}",
                 id="smp-not-an-object"),
    pytest.param("application/apply-patch+yaml", b"- a\n- b\n", errors.BadRequest,
                 "error decoding YAML: json: cannot unmarshal array into Go value of type "
                 "map[string]interface {}", id="apply-not-an-object"),
    pytest.param("application/json", b"{}", errors.UnsupportedMediaType,
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json, "
                 "application/strategic-merge-patch+json, application/apply-patch+yaml",
                 id="unknown-content-type"),
])
def test_bad_bodies(content_type: str, body: bytes, error: type[errors.APIError],
                    message: str) -> None:
    with pytest.raises(error) as raised:
        patch.apply_patch("Pod", {"metadata": {}}, body, content_type)
    assert raised.value.message == message


@pytest.mark.parametrize("content_type", [
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json"])
def test_unparseable_json_is_400(content_type: str) -> None:
    with pytest.raises(errors.BadRequest):
        patch.apply_patch("Pod", {}, b"{nope", content_type)


def test_content_type_parameters_are_ignored() -> None:
    result = patch.apply_patch("Pod", {"a": 1}, b'{"b":2}',
                               "application/merge-patch+json; charset=utf-8")
    assert result == {"a": 1, "b": 2}


@pytest.mark.parametrize("body", [
    pytest.param(b"apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx\n"
                 b"spec:\n  ports:\n  - port: 8080\n", id="yaml"),
    pytest.param(orjson.dumps({"apiVersion": "v1", "kind": "Service",
                               "metadata": {"name": "nginx"},
                               "spec": {"ports": [{"port": 8080}]}}), id="json"),
])
def test_server_side_apply_merges_applied_config_onto_live(body: bytes) -> None:
    expected = live_service()
    expected["spec"]["ports"].insert(0, {"port": 8080})
    result = patch.apply_patch("Service", live_service(), body, "application/apply-patch+yaml")
    assert result == expected


# --- purity ---------------------------------------------------------------------------------

PURITY_CASES = [
    pytest.param("application/merge-patch+json",
                 {"metadata": {"labels": {"app": None}}, "spec": {"selector": {"x": "y"}}},
                 id="merge"),
    pytest.param("application/json-patch+json",
                 [{"op": "add", "path": "/spec/ports/-", "value": {"port": 1}},
                  {"op": "remove", "path": "/metadata/labels/app"}], id="json"),
    pytest.param("application/strategic-merge-patch+json",
                 {"metadata": {"labels": None},
                  "spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                           "ports": [{"name": "tls", "port": 443},
                                     {"$patch": "delete", "port": 80}]}}, id="strategic"),
    pytest.param("application/apply-patch+yaml",
                 {"spec": {"ports": [{"port": 80, "name": "http"}]}}, id="apply"),
]


@pytest.mark.parametrize(("content_type", "body"), PURITY_CASES)
def test_inputs_are_not_mutated_or_shared(content_type: str, body: Any) -> None:
    original = live_service()
    snapshot = copy.deepcopy(original)

    result = patch.apply_patch("Service", original, orjson.dumps(body), content_type)
    assert original == snapshot
    result["spec"]["ports"].append({"port": 9})
    result["spec"]["selector"]["new"] = "x"
    result["status"]["loadBalancer"]["ingress"] = []
    assert original == snapshot, "the result must not share containers with the input"


@pytest.mark.parametrize("apply", [
    pytest.param(lambda o, p: patch.merge_patch(o, p), id="merge"),
    pytest.param(lambda o, p: patch.strategic_merge_patch("Service", o, p), id="strategic"),
])
def test_patch_dicts_are_not_mutated_or_shared(apply: Callable[[Obj, Obj], Obj]) -> None:
    body = {"metadata": {"annotations": {"a": "b"}},
            "spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                     "ports": [{"name": "tls", "port": 443}], "selector": {"x": {"y": 1}}}}
    snapshot = copy.deepcopy(body)

    result = apply(live_service(), body)
    assert body == snapshot
    result["metadata"]["annotations"]["c"] = "d"
    result["spec"]["selector"]["x"]["y"] = 2
    assert body == snapshot


def test_json_patch_values_are_copied() -> None:
    value = {"port": 1}
    result = patch.json_patch(live_service(), [{"op": "add", "path": "/spec/x", "value": value}])
    result["spec"]["x"]["port"] = 2
    assert value == {"port": 1}


# --- strategic merge patch agrees with JSON merge patch where it has no strategy -------------

_SCALARS = st.one_of(st.booleans(), st.integers(-5, 5), st.text("ab", max_size=2))
_KEYS = st.sampled_from(["a", "b", "c"])
_VALUES = st.recursive(
    _SCALARS | st.lists(_SCALARS, max_size=3),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=3), max_leaves=6)
_PATCH_VALUES = st.recursive(
    _SCALARS | st.none() | st.lists(_SCALARS, max_size=3),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=3), max_leaves=6)


@settings(max_examples=25, deadline=None)
@given(original=st.dictionaries(_KEYS, _VALUES, max_size=3),
       body=st.dictionaries(_KEYS, _PATCH_VALUES, max_size=3))
def test_strategic_equals_merge_patch_without_strategies(original: Obj, body: Obj) -> None:
    assert patch.strategic_merge_patch("Widget", original, body) == \
        patch.merge_patch(original, body)
