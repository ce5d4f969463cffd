"""OpenAPI v3 documents: what kubectl's fieldValidation probe looks for (kubectl-compat.md §3)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from tinykube.api import resources
from tinykube.api.resources import Resource
from tinykube.apiserver import openapi, openapi_schemas

CREATABLE = [r for r in resources.ALL if "create" in r.verbs]  # metrics.k8s.io is read-only
RESOURCE_IDS = [f"{r.group_version}/{r.plural}" for r in CREATABLE]


def document(key: str) -> dict[str, Any]:
    raw = openapi.group_version(key)
    assert raw is not None, key
    doc: dict[str, Any] = orjson.loads(raw)
    return doc


def index_key(resource: Resource) -> str:
    return f"apis/{resource.group_version}" if resource.group else f"api/{resource.version}"


def gvk(resource: Resource) -> dict[str, str]:
    return {"group": resource.group, "version": resource.version, "kind": resource.kind}


def parameter_names(operation: dict[str, Any]) -> list[str]:
    return [p["name"] for p in operation["parameters"]]


def test_index_lists_every_group_version_alphabetically() -> None:
    assert list(openapi.index()["paths"]) == [
        "api/v1", "apis/admissionregistration.k8s.io/v1", "apis/apiextensions.k8s.io/v1",
        "apis/apiregistration.k8s.io/v1",
        "apis/apps/v1", "apis/apps/v1beta1", "apis/apps/v1beta2",
        "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1",
        "apis/autoscaling/v1", "apis/autoscaling/v2", "apis/batch/v1",
        "apis/certificates.k8s.io/v1", "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1", "apis/events.k8s.io/v1",
        "apis/flowcontrol.apiserver.k8s.io/v1", "apis/metrics.k8s.io/v1beta1",
        "apis/networking.k8s.io/v1",
        "apis/node.k8s.io/v1", "apis/policy/v1", "apis/rbac.authorization.k8s.io/v1",
        "apis/scheduling.k8s.io/v1", "apis/storage.k8s.io/v1",
    ]


@pytest.mark.parametrize("key", list(openapi.index()["paths"]))
def test_index_url_carries_sha512_of_the_document(key: str) -> None:
    raw = openapi.group_version(key)
    assert raw is not None
    expected = hashlib.sha512(raw).hexdigest().upper()
    assert openapi.index()["paths"][key] == {
        "serverRelativeURL": f"/openapi/v3/{key}?hash={expected}"}


def test_legacy_apps_v1beta1_statefulset_is_indexed() -> None:
    assert "apis/apps/v1beta1" in openapi.index()["paths"]
    item = document("apis/apps/v1beta1")["paths"][
        "/apis/apps/v1beta1/namespaces/{namespace}/statefulsets/{name}"]
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "apps", "version": "v1beta1", "kind": "StatefulSet"}


PATCHABLE = [r for r in resources.ALL if "patch" in r.verbs]


@pytest.mark.parametrize("resource", PATCHABLE, ids=[index_key(r) + "/" + r.plural
                                                      for r in PATCHABLE])
def test_kubectl_finds_a_patch_op_with_gvk_and_field_validation(resource: Resource) -> None:
    """The probe of kubectl's query-param verifier: any path item's patch op with our GVK."""
    matches = [item["patch"] for item in document(index_key(resource))["paths"].values()
               if item.get("patch", {}).get("x-kubernetes-group-version-kind") == gvk(resource)]
    assert len(matches) == 1
    assert "fieldValidation" in parameter_names(matches[0])


@pytest.mark.parametrize("resource", CREATABLE, ids=RESOURCE_IDS)
def test_collection_post_has_gvk_and_field_validation(resource: Resource) -> None:
    doc = document(index_key(resource))
    prefix = f"/apis/{resource.group}" if resource.group else "/api"
    namespace = "/namespaces/{namespace}" if resource.namespaced else ""
    collection = doc["paths"][f"{prefix}/{resource.version}{namespace}/{resource.plural}"]
    post = collection["post"]
    assert post["x-kubernetes-group-version-kind"] == gvk(resource)
    assert post["x-kubernetes-action"] == "post"
    assert "fieldValidation" in parameter_names(post)


# (id, index key, item path, item methods, collection methods, patch operationId)
PATHS = [
    ("services", "api/v1", "/api/v1/namespaces/{namespace}/services/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"],
     "patchCoreV1NamespacedService"),
    ("namespaces-cluster-scoped", "api/v1", "/api/v1/namespaces/{name}",
     ["get", "put", "patch", "delete"], ["get", "post"], "patchCoreV1Namespace"),
    ("nodes-cluster-scoped", "api/v1", "/api/v1/nodes/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"], "patchCoreV1Node"),
    ("statefulsets", "apis/apps/v1", "/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"],
     "patchAppsV1NamespacedStatefulSet"),
    ("statefulsets-v1beta2", "apis/apps/v1beta2",
     "/apis/apps/v1beta2/namespaces/{namespace}/statefulsets/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"],
     "patchAppsV1beta2NamespacedStatefulSet"),
    ("endpointslices", "apis/discovery.k8s.io/v1",
     "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"],
     "patchDiscoveryV1NamespacedEndpointSlice"),
    ("runtimeclasses", "apis/node.k8s.io/v1", "/apis/node.k8s.io/v1/runtimeclasses/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"], "patchNodeV1RuntimeClass"),
    ("storageclasses", "apis/storage.k8s.io/v1", "/apis/storage.k8s.io/v1/storageclasses/{name}",
     ["get", "put", "patch", "delete"], ["get", "post", "delete"], "patchStorageV1StorageClass"),
]


@pytest.mark.parametrize(("key", "item_path", "item_methods", "collection_methods", "patch_id"),
                         [p[1:] for p in PATHS], ids=[p[0] for p in PATHS])
def test_path_items(key: str, item_path: str, item_methods: list[str],
                    collection_methods: list[str], patch_id: str) -> None:
    paths = document(key)["paths"]
    item = paths[item_path]
    collection = paths[item_path.removesuffix("/{name}")]
    assert [m for m in item if m != "parameters"] == item_methods
    assert [m for m in collection if m != "parameters"] == collection_methods
    assert item["patch"]["operationId"] == patch_id
    path_params = [p["name"] for p in item["parameters"] if p["in"] == "path"]
    assert path_params == (["name", "namespace"] if "{namespace}" in item_path else ["name"])


def test_document_shape() -> None:
    """§3.2: no requestBody, so kubectl computes the SMP from its own types, silently; paths are
    sorted as in the real server's JSON."""
    for key in openapi.index()["paths"]:
        doc = document(key)
        assert doc["openapi"] == "3.0.0"
        assert list(doc["paths"]) == sorted(doc["paths"])
        for item in doc["paths"].values():
            for method, operation in item.items():
                if method != "parameters":
                    assert "requestBody" not in operation, (key, method)


UNKNOWN = [("empty", ""), ("group-only", "apis/apps"), ("unknown-version", "apis/apps/v2"),
           ("unknown-group", "apis/resource.k8s.io/v1beta1"), ("core-under-apis", "apis/v1")]


@pytest.mark.parametrize("path", [u[1] for u in UNKNOWN], ids=[u[0] for u in UNKNOWN])
def test_unknown_group_version(path: str) -> None:
    assert openapi.group_version(path) is None


def test_documents_are_cached_bytes() -> None:
    assert openapi.group_version("api/v1") is openapi.group_version("api/v1")
    assert openapi.index() is openapi.index()


# --- schemas (kubectl explain) ----------------------------------------------------------------

def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []  # not a "$ref" property
        return own + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


@pytest.mark.parametrize("key", list(openapi.index()["paths"]))
def test_every_kind_has_one_schema_and_every_ref_resolves(key: str) -> None:
    doc = document(key)
    schemas = doc["components"]["schemas"]
    tagged = [(gvk["group"], gvk["version"], gvk["kind"]) for schema in schemas.values()
              for gvk in schema.get("x-kubernetes-group-version-kind", [])]
    served = [(r.group, r.version, r.kind) for r in resources.ALL
              if (r.stored or r.provider) and index_key(r) == key]
    assert sorted(tagged) == sorted(served)
    prefix = "#/components/schemas/"
    assert {ref.removeprefix(prefix) for ref in _refs(doc)} <= set(schemas)


def _property(key: str, schema: str, *path: str) -> dict[str, Any]:
    schemas = document(key)["components"]["schemas"]
    node = schemas[schema]
    for i, field in enumerate(path):
        node = node["properties"][field]
        if i < len(path) - 1:
            node = node.get("items", node)
            node = schemas[node["allOf"][0]["$ref"].rpartition("/")[2]]
    return node


@pytest.mark.parametrize(("key", "schema", "path", "expected"), [
    pytest.param("api/v1", "io.k8s.api.v1.ServiceSpec", ("clusterIP",),
                 {"type": "string"}, id="string-with-description"),
    pytest.param("api/v1", "io.k8s.api.v1.ServiceSpec", ("ports",),
                 {"type": "array", "x-kubernetes-patch-strategy": "merge",
                  "x-kubernetes-patch-merge-key": "port"}, id="merge-key"),
    pytest.param("api/v1", "io.k8s.api.v1.PodSpec", ("containers",),
                 {"x-kubernetes-patch-strategy": "merge",
                  "x-kubernetes-patch-merge-key": "name"}, id="containers"),
    pytest.param("api/v1", "io.k8s.api.v1.PodSpec", ("volumes",),
                 {"x-kubernetes-patch-strategy": "merge,retainKeys"}, id="retain-keys"),
    pytest.param("apps/v1", "io.k8s.api.v1.StatefulSetStatus", ("conditions",),
                 {"x-kubernetes-patch-merge-key": "type"}, id="conditions"),
    pytest.param("api/v1", "io.k8s.api.v1.ServicePort", ("targetPort",),
                 {"allOf": [{"$ref": "#/components/schemas/"
                             "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]},
                 id="int-or-string"),
    pytest.param("api/v1", "io.k8s.api.v1.ObjectMeta", ("labels",),
                 {"type": "object", "additionalProperties": {"type": "string"}}, id="map"),
])
def test_schema_properties(key: str, schema: str, path: tuple[str, ...],
                           expected: dict[str, Any]) -> None:
    doc_key = key if key.startswith("api/") else f"apis/{key}"
    prop = _property(doc_key, schema, *path)
    assert {k: prop.get(k) for k in expected} == expected
    assert prop.get("description")


def test_legacy_versions_explain_with_apps_v1_types() -> None:
    schemas = document("apis/apps/v1beta1")["components"]["schemas"]
    assert schemas["io.k8s.api.v1.StatefulSet"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1beta1", "kind": "StatefulSet"}]


def test_metrics_kinds_explain_as_metrics_server_publishes_them() -> None:
    """NodeMetrics and PodMetrics (k8s.io/metrics types): get and list only, usage as
    Quantities, the pod's containers as ContainerMetrics."""
    doc = document("apis/metrics.k8s.io/v1beta1")
    assert {path: sorted(k for k in item if k != "parameters")
            for path, item in doc["paths"].items()} == {
        "/apis/metrics.k8s.io/v1beta1/nodes": ["get"],
        "/apis/metrics.k8s.io/v1beta1/nodes/{name}": ["get"],
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods": ["get"],
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}": ["get"]}
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.v1beta1.PodMetrics"]
    assert sorted(pod["properties"]) == ["apiVersion", "containers", "kind", "metadata",
                                         "timestamp", "window"]
    assert pod["description"] == "PodMetrics sets resource usage metrics of a pod."
    container = schemas["io.k8s.api.v1beta1.ContainerMetrics"]
    assert container["properties"]["usage"]["additionalProperties"] == {
        "allOf": [{"$ref": "#/components/schemas/" + openapi_schemas.QUANTITY}]}
