"""Every field of a valid object, damaged in turn, gets a Status, never an internal error.

For each sample object (one per kind the seed and kubectl users write) and every path in it,
the test sends the object with that one value replaced by JSON null, by a value of another JSON
type, and (for lists) with a null item, to the real API server as a create and as an update of
the stored sample, both server-side dry runs. Go
decodes null into the zero value and refuses a wrong type with 400; whatever the outcome, the
answer must be a Kubernetes Status or the object (2xx, 400, 404, 409, 422), never a 500, and
the store must not change.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.apiserver.harness import running_api

Obj = dict[str, Any]
Path_ = tuple[str | int, ...]

POD_SPEC: Obj = {
    "containers": [{
        "name": "web", "image": "nginx", "command": ["nginx"], "args": ["-g", "daemon off;"],
        "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
        "env": [{"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "resources": {"limits": {"cpu": "100m"}, "requests": {"memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": 80}},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
    }],
    "volumes": [{"name": "www", "emptyDir": {}}],
    "nodeSelector": {"disk": "ssd"},
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "terminationGracePeriodSeconds": 5,
}
TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}
SELECTOR: Obj = {"matchLabels": {"app": "web"}}

# (collection path, sample object)
SAMPLES: dict[str, tuple[str, Obj]] = {
    "service": ("/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc", "labels": {"app": "web"}},
        "spec": {"ports": [{"port": 80, "name": "web", "targetPort": "http"},
                           {"port": 443, "name": "tls", "protocol": "TCP"}],
                 "selector": {"app": "web"}, "externalIPs": ["127.0.0.200"],
                 "sessionAffinity": "ClientIP"}}),
    "headless-service": ("/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}], "selector": {"app": "web"}}}),
    "pod": ("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", "labels": {"a": "b"}},
        "spec": {**POD_SPEC, "nodeName": "nowhere"}}),
    "statefulset": ("/apis/apps/v1/namespaces/default/statefulsets", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"serviceName": "nginx", "replicas": 2, "selector": SELECTOR,
                 "template": TEMPLATE, "updateStrategy": {
                     "type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                 "volumeClaimTemplates": [{
                     "metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "1Gi"}}}}]}}),
    "legacy-statefulset": ("/apis/apps/v1beta1/namespaces/default/statefulsets", {
        "apiVersion": "apps/v1beta1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"serviceName": "nginx", "replicas": 1, "template": TEMPLATE}}),
    "deployment": ("/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep"},
        "spec": {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE, "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}}}),
    "configmap": ("/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
        "data": {"a": "b"}, "binaryData": {"bin": "AAE="}}),
    "endpointslice": ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "es", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.244.0.5"], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": "p", "namespace": "default"}}],
        "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}),
    "lease": ("/apis/coordination.k8s.io/v1/namespaces/default/leases", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 10,
                 "renewTime": "2026-11-27T12:00:00.000000Z"}}),
}


def paths(value: Any, prefix: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) below the root, parents before children."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*prefix, key), child
        yield from paths(child, (*prefix, key))


def other_type(value: Any) -> Any:
    """A value of another JSON type than `value`."""
    if isinstance(value, dict):
        return ["not", "an", "object"]
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, str):
        return {"not": "a string"}
    return "not a number"


def damaged(obj: Obj) -> Iterator[tuple[str, Obj]]:
    for path, value in paths(obj):
        if path in (("apiVersion",), ("kind",)):
            continue
        for label, replacement in (("null", None), ("type", other_type(value))):
            copy_ = copy.deepcopy(obj)
            parent = copy_
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = replacement
            yield f"{'.'.join(map(str, path))}={label}", copy_
        if isinstance(value, list):
            copy_ = copy.deepcopy(obj)
            parent = copy_
            for key in path:
                parent = parent[key]
            parent.append(None)
            yield f"{'.'.join(map(str, path))}[+null]", copy_


@pytest.mark.parametrize("sample", SAMPLES, ids=list(SAMPLES))
async def test_damaged_fields_get_a_status_never_an_internal_error(
        sample: str, tmp_path: Path) -> None:
    collection, obj = SAMPLES[sample]
    async with running_api(tmp_path, bootstrapped=True) as (session, store):
        async with session.post(collection, data=orjson.dumps(obj),
                                headers={"Content-Type": "application/json"}) as reply:
            assert reply.status == 201, await reply.text()  # the sample itself is valid
        rv = store.resource_version
        failures = []
        item = f"{collection}/{obj['metadata']['name']}"
        for what, body in damaged(obj):
            for method, url in (("POST", collection), ("PUT", item)):
                async with session.request(method, url + "?dryRun=All", data=orjson.dumps(body),
                                           headers={"Content-Type": "application/json"}) as reply:
                    answer = orjson.loads(await reply.read())
                if reply.status >= 500 or not isinstance(answer, dict) or "kind" not in answer:
                    failures.append((method, what, reply.status, answer))
        assert failures == []
        assert store.resource_version == rv  # dry runs wrote nothing
