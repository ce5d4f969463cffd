"""api.schema: unknown-field paths and JSON type errors as kube-apiserver's decoder reports them."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tinykube.api import resources, schema

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / "scripts" / "gen_schema.py"


def pod(**spec: Any) -> dict[str, Any]:
    container = {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [container], **spec},
    }


def service(**port: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, **port}]},
    }


def deployment(**strategy: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": strategy},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
        },
    }


def with_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with `value` set at a dotted path (`spec.containers.0.foo`)."""
    result = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


STATEFULSET = {
    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
    "spec": {
        "serviceName": "nginx", "replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1.11"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
    },
}


# --- unknown fields ------------------------------------------------------------------------

UNKNOWN_CASES = [
    pytest.param(pod(), [], id="valid-pod"),
    pytest.param(with_path(pod(), "foo", 1), ["foo"], id="top-level"),
    pytest.param(with_path(pod(), "spec.foo", 1), ["spec.foo"], id="spec"),
    pytest.param(with_path(pod(), "metadata.nam", "x"), ["metadata.nam"], id="metadata"),
    pytest.param(with_path(pod(), "spec.containers.0.imagePullPolicyy", "Always"),
                 ["spec.containers[0].imagePullPolicyy"], id="list-element"),
    pytest.param(with_path(pod(), "spec.containers.0.ports.0.port", 80),
                 ["spec.containers[0].ports[0].port"], id="list-in-list"),
    pytest.param(with_path(deployment(), "spec.template.spec.containers.0.limits", {}),
                 ["spec.template.spec.containers[0].limits"], id="deployment-template"),
    pytest.param(with_path(STATEFULSET, "spec.volumeClaimTemplates.0.spec.size", "1Gi"),
                 ["spec.volumeClaimTemplates[0].spec.size"], id="statefulset-claim-template"),
    pytest.param(with_path(service(), "spec.ports.0.targetPortt", 80),
                 ["spec.ports[0].targetPortt"], id="service-port"),
    pytest.param(with_path(with_path(pod(), "spec.zzz", 1), "metadata.aaa", 1),
                 ["metadata.aaa", "spec.zzz"], id="document-order"),
    pytest.param(with_path(pod(), "spec.foo", {"bar": {"baz": 1}}), ["spec.foo"],
                 id="unknown-not-descended"),
    pytest.param(with_path(pod(), "Spec", {}), ["Spec"], id="case-sensitive"),
    pytest.param(with_path(pod(), "spec.containers", "web"), [], id="wrong-type-not-descended"),
    pytest.param(with_path(pod(), "spec.securityContext", None), [], id="null"),
    pytest.param(with_path(pod(), "metadata.labels", {"any/key": "v", "foo": "bar"}), [],
                 id="label-keys-are-free"),
    pytest.param(with_path(pod(), "status", {
        "phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0, "image": "x",
                               "imageID": "", "state": {"running": {"startedAt": None}}}],
    }), [], id="status-accepted"),
    pytest.param(with_path(pod(), "status.containerStatuses",
                           [{"name": "web", "state": {"runing": {}}}]),
                 ["status.containerStatuses[0].state.runing"], id="status-unknown"),
    pytest.param(with_path(pod(), "metadata.managedFields", [
        {"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"x": {}}}}]),
        [], id="free-form-fieldsV1"),
    pytest.param(with_path(deployment(maxSurge="25%", maxUnavailable=1), "spec.paused", True),
                 [], id="deployment-valid"),
    pytest.param(STATEFULSET, [], id="statefulset-valid"),
]


@pytest.mark.parametrize(("obj", "expected"), UNKNOWN_CASES)
def test_unknown_fields(obj: dict[str, Any], expected: list[str]) -> None:
    api_version, kind = obj["apiVersion"], obj["kind"]
    assert schema.unknown_fields(api_version, kind, obj) == expected


OTHER_KINDS = [
    pytest.param("apps/v1", "ControllerRevision",
                 {"revision": 3, "data": {"spec": {"anything": [1, {"goes": True}]}}, "x": 1},
                 ["x"], id="controllerrevision-data-free-form"),
    pytest.param("v1", "Node",
                 {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                             "capacity": {"cpu": "4"}, "addresses": [{"typ": "x"}]}},
                 ["status.addresses[0].typ"], id="node-capital-Port"),
    pytest.param("discovery.k8s.io/v1", "EndpointSlice",
                 {"addressType": "IPv4", "ports": [{"port": 80, "protocol": "TCP"}],
                  "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"readyy": True}}]},
                 ["endpoints[0].conditions.readyy"], id="endpointslice"),
    pytest.param("v1", "Endpoints",
                 {"subsets": [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod"}}],
                               "ports": [{"port": 80, "nmae": "x"}]}]},
                 ["subsets[0].ports[0].nmae"], id="endpoints"),
    pytest.param("coordination.k8s.io/v1", "Lease",
                 {"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                           "renewTime": "2024-01-01T00:00:00.000000Z", "owner": "b"}},
                 ["spec.owner"], id="lease"),
    pytest.param("v1", "Event",
                 {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
                  "source": {"component": "kubelet", "hostt": "n"}},
                 ["source.hostt"], id="core-event"),
    pytest.param("v1", "Secret", {"type": "Opaque", "data": {"k": "dg=="},
                                  "stringData": {"a": "b"}, "immutable": True}, [], id="secret"),
    pytest.param("v1", "ConfigMap", {"data": {"a": "b"}, "binaryData": {"b": "AA=="},
                                     "dat": {}}, ["dat"], id="configmap"),
    pytest.param("v1", "PersistentVolumeClaim",
                 {"spec": {"resources": {"requests": {"storage": "1Gi"}}, "storageClass": "x"}},
                 ["spec.storageClass"], id="pvc"),
    pytest.param("node.k8s.io/v1", "RuntimeClass",
                 {"handler": "runc", "overhead": {"podFixed": {"cpu": "10m"}}, "spec": {}},
                 ["spec"], id="runtimeclass"),
    pytest.param("autoscaling/v1", "Scale",
                 {"spec": {"replicas": 3}, "status": {"replicas": 1, "selector": "a=b"}}, [],
                 id="scale"),
    pytest.param("v1", "DeleteOptions",
                 {"propagationPolicy": "Background", "gracePeriodSeconds": 0,
                  "preconditions": {"uid": "u", "resourceVersion": "1", "x": 1},
                  "metadata": {}},
                 ["preconditions.x", "metadata"], id="deleteoptions-has-no-metadata"),
    pytest.param("v1", "Namespace", {"spec": {"finalizers": ["kubernetes"]}}, [], id="namespace"),
    pytest.param("v1", "ServiceAccount", {"secrets": [{"name": "s"}], "automount": True},
                 ["automount"], id="serviceaccount"),
]


@pytest.mark.parametrize(("api_version", "kind", "obj", "expected"), OTHER_KINDS)
def test_unknown_fields_other_kinds(
    api_version: str, kind: str, obj: dict[str, Any], expected: list[str]
) -> None:
    body = {"apiVersion": api_version, "kind": kind, **obj}
    assert schema.unknown_fields(api_version, kind, body) == expected


# --- type errors ---------------------------------------------------------------------------

def _err(struct_field: str, value: str, go_type: str) -> str:
    return f"json: cannot unmarshal {value} into Go struct field {struct_field} of type {go_type}"


TYPE_CASES = [
    pytest.param(pod(), [], id="valid-pod"),
    pytest.param(service(port="80"),
                 [_err("ServicePort.spec.ports.port", "string", "int32")], id="service-port"),
    pytest.param(with_path(pod(), "spec.containers.0.ports.0.containerPort", "80"),
                 [_err("ContainerPort.spec.containers.ports.containerPort", "string", "int32")],
                 id="no-list-indices"),
    pytest.param(with_path(pod(), "metadata.labels.tier", 1),
                 [_err("ObjectMeta.metadata.labels", "number", "string")],
                 id="label-value-must-be-string"),
    pytest.param(with_path(pod(), "metadata.labels", ["a"]),
                 [_err("ObjectMeta.metadata.labels", "array", "map[string]string")],
                 id="labels-not-a-map"),
    pytest.param(with_path(pod(), "spec", "x"), [_err("Pod.spec", "string", "v1.PodSpec")],
                 id="struct-from-string"),
    pytest.param(with_path(pod(), "spec.containers", {}),
                 [_err("PodSpec.spec.containers", "object", "[]v1.Container")],
                 id="list-from-object"),
    pytest.param(with_path(pod(), "spec.containers", ["web"]),
                 [_err("PodSpec.spec.containers", "string", "v1.Container")],
                 id="list-element-from-string"),
    pytest.param(with_path(pod(), "spec.hostNetwork", "true"),
                 [_err("PodSpec.spec.hostNetwork", "string", "bool")], id="bool-from-string"),
    pytest.param(with_path(pod(), "spec.priority", True),
                 [_err("PodSpec.spec.priority", "bool", "int32")], id="int-from-bool"),
    pytest.param(with_path(pod(), "spec.priority", 1.5),
                 [_err("PodSpec.spec.priority", "number 1.5", "int32")], id="int-from-float"),
    pytest.param(with_path(pod(), "spec.priority", 2**31),
                 [_err("PodSpec.spec.priority", "number 2147483648", "int32")],
                 id="int32-overflow"),
    pytest.param(with_path(pod(), "spec.terminationGracePeriodSeconds", 2**40), [],
                 id="int64-fits"),
    pytest.param(with_path(pod(), "spec.terminationGracePeriodSeconds", "30"),
                 [_err("PodSpec.spec.terminationGracePeriodSeconds", "string", "int64")],
                 id="int64-from-string"),
    pytest.param(with_path(pod(), "spec.nodeName", 7),
                 [_err("PodSpec.spec.nodeName", "number", "string")], id="string-from-number"),
    pytest.param(with_path(pod(), "spec.containers.0.args", ["a", 1]),
                 [_err("Container.spec.containers.args", "number", "string")],
                 id="string-list-element"),
    pytest.param(with_path(with_path(pod(), "spec.priority", "1"), "spec.nodeName", 1),
                 [_err("PodSpec.spec.priority", "string", "int32"),
                  _err("PodSpec.spec.nodeName", "number", "string")], id="document-order"),
    pytest.param(with_path(pod(), "spec.nodeName", None), [], id="null-accepted"),
    pytest.param(with_path(pod(), "spec.foo", "unknown fields are not type errors"), [],
                 id="unknown-ignored"),
    pytest.param(service(targetPort=8080), [], id="intstr-int"),
    pytest.param(service(targetPort="http"), [], id="intstr-string"),
    pytest.param(service(targetPort=True),
                 [_err("ServicePort.spec.ports.targetPort", "bool", "int32")], id="intstr-bool"),
    pytest.param(service(targetPort={"a": 1}),
                 [_err("ServicePort.spec.ports.targetPort", "object", "int32")],
                 id="intstr-object"),
    pytest.param(deployment(maxSurge="25%", maxUnavailable=0), [], id="intstr-deployment"),
    pytest.param(with_path(pod(), "spec.containers.0.readinessProbe",
                           {"httpGet": {"port": "http"}, "tcpSocket": {"port": 80}}),
                 [], id="intstr-probe-ports"),
]


@pytest.mark.parametrize(("obj", "expected"), TYPE_CASES)
def test_type_errors(obj: dict[str, Any], expected: list[str]) -> None:
    assert schema.type_errors(obj["apiVersion"], obj["kind"], obj) == expected


FORMAT = schema.QUANTITY_FORMAT_ERROR
SUFFIX = schema.QUANTITY_SUFFIX_ERROR


@pytest.mark.parametrize(("quantity", "expected"), [
    pytest.param("500m", [], id="milli"),
    pytest.param("1Gi", [], id="binary"),
    pytest.param("1.5e3", [], id="exponent"),
    pytest.param(" 2 ", [], id="spaces-trimmed"),
    pytest.param(1, [], id="json-int"),
    pytest.param(0.5, [], id="json-float"),
    pytest.param("", [FORMAT], id="empty"),
    pytest.param("abc", [FORMAT], id="not-a-number"),
    pytest.param("1xyz", [FORMAT], id="bad-suffix-char"),
    pytest.param("1.2.3", [FORMAT], id="two-dots"),
    pytest.param("1kk", [SUFFIX], id="unknown-suffix"),
    pytest.param(True, [FORMAT], id="bool"),
    pytest.param(["1"], [FORMAT], id="array"),
])
def test_quantities(quantity: Any, expected: list[str]) -> None:
    obj = with_path(pod(), "spec.containers.0.resources", {"limits": {"cpu": quantity}})
    assert schema.type_errors("v1", "Pod", obj) == expected


@pytest.mark.parametrize(("api_version", "kind", "obj", "expected"), [
    pytest.param("v1", "Secret", {"data": {"k": "aGVsbG8="}}, [], id="secret-base64"),
    pytest.param("v1", "Secret", {"data": {"k": "not base64!"}},
                 ["illegal base64 data at input byte 3"], id="secret-not-base64"),
    pytest.param("v1", "Secret", {"data": {"k": 1}},
                 [_err("Secret.data", "number", "[]uint8")], id="secret-data-number"),
    pytest.param("v1", "Secret", {"data": "x"},
                 [_err("Secret.data", "string", "map[string][]uint8")], id="secret-data-string"),
    pytest.param("v1", "Event", {"count": "2"}, [_err("Event.count", "string", "int32")],
                 id="core-event-struct-name"),
    pytest.param("discovery.k8s.io/v1", "EndpointSlice", {"ports": [{"port": "80"}]},
                 [_err("EndpointPort.ports.port", "string", "int32")], id="endpointslice-port"),
    pytest.param("v1", "DeleteOptions", {"gracePeriodSeconds": "0"},
                 [_err("DeleteOptions.gracePeriodSeconds", "string", "int64")],
                 id="deleteoptions"),
    pytest.param("apps/v1", "ControllerRevision", {"data": [1, "x", None]}, [],
                 id="raw-extension-anything"),
    pytest.param("v1", "Node", {"status": {"capacity": {"cpu": "4", "pods": 110}}}, [],
                 id="node-capacity"),
    pytest.param("v1", "Node", {"status": {"capacity": "4"}},
                 [_err("NodeStatus.status.capacity", "string", "v1.ResourceList")],
                 id="resource-list-from-string"),
])
def test_type_errors_other_kinds(
    api_version: str, kind: str, obj: dict[str, Any], expected: list[str]
) -> None:
    body = {"apiVersion": api_version, "kind": kind, **obj}
    assert schema.type_errors(api_version, kind, body) == expected


# --- kinds ---------------------------------------------------------------------------------

def test_known_kinds_cover_every_served_storage_kind() -> None:
    served = {(r.api_version, r.kind) for r in resources.preferred()}
    converted = {(r.api_version, r.kind) for r in resources.ALL
                 if r.converted and r.group != "apps"}  # apps' legacy versions share v1's
    extra = {("autoscaling/v1", "Scale"), ("v1", "DeleteOptions"),
             ("meta.k8s.io/v1", "DeleteOptions"), ("v1", "Binding"), ("v1", "ComponentStatus"),
             ("authentication.k8s.io/v1", "TokenRequest"),
             ("policy/v1", "Eviction"), *converted,
             # served only with the MutatingAdmissionPolicy gate (apiserver/features.py)
             *((r.api_version, r.kind) for r in resources.MUTATING_POLICIES)}
    assert schema.known_kinds() == served | extra
    assert all(schema.has_kind(*pair) for pair in served)


@pytest.mark.parametrize(("api_version", "kind"), [
    pytest.param("apps/v1beta1", "StatefulSet", id="legacy-version-not-converted"),
    pytest.param("v1", "Job", id="unknown-kind"),
])
def test_unknown_kind_raises(api_version: str, kind: str) -> None:
    assert not schema.has_kind(api_version, kind)
    with pytest.raises(KeyError):
        schema.unknown_fields(api_version, kind, {})
    with pytest.raises(KeyError):
        schema.type_errors(api_version, kind, {})


# --- generated data ------------------------------------------------------------------------

def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schema", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_data_is_up_to_date() -> None:
    pytest.importorskip("kubernetes")
    generator = _load_generator()
    built = generator.build_schema()
    committed = (REPO / "src" / "tinykube" / "api" / "schema_data.json").read_text()
    assert committed == generator.render(built), (
        "schema_data.json is stale: run scripts/gen_schema.py"
    )
    descriptions = (REPO / "src" / "tinykube" / "api" / "schema_descriptions.json").read_text()
    assert descriptions == generator.render_descriptions(generator.build_descriptions(built)), (
        "schema_descriptions.json is stale: run scripts/gen_schema.py"
    )


NULLS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "null field is removed": (
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
         "spec": {"selector": None, "ports": [{"port": 80, "targetPort": None}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
         "spec": {"ports": [{"port": 80}]}}),
    "null struct in a list becomes {}": (
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
         "spec": {"ports": [None, {"port": 80}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
         "spec": {"ports": [{}, {"port": 80}]}}),
    "null map value and list string become empty strings": (
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "c", "labels": {"a": None}, "finalizers": [None, "x"]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "c", "labels": {"a": ""}, "finalizers": ["", "x"]}}),
    "free-form data is left alone": (
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
         "data": {"spec": None}, "revision": 1},
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
         "data": {"spec": None}, "revision": 1}),
}


@pytest.mark.parametrize("case", NULLS, ids=list(NULLS))
def test_nulls_become_what_go_decodes_them_to(case: str) -> None:
    obj, expected = NULLS[case]
    obj = copy.deepcopy(obj)
    assert schema.type_errors(obj["apiVersion"], obj["kind"], obj) == []
    assert obj == expected
