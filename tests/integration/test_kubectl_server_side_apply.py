"""Server-side apply with managed fields, as both kubectls meet it (one cluster per module).

- The issue's example: a key the applier stops applying is removed (`{"key2":"new"}`); a map
  applied empty and then with a key again keeps that key (lightkube's `test_apply`).
- A field set by another manager conflicts: kubectl prints kube's 409 text and its own advice;
  `--force-conflicts` takes the field and the other manager keeps the rest.
- `kubectl create` records an Update manager with the defaulted fields; `--show-managed-fields`
  prints them, and plain `-o yaml` hides them (kubectl strips them client-side).
- Client-side apply, then server-side apply by `kubectl` of a changed value: no conflict (the
  last-applied configuration held the field), and the annotation follows the new configuration.
- A second applier sharing a value co-owns it; `kubectl scale` records the scale subresource.

Each test works in a namespace of its own, so the kubectl variants share the cluster.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster, Kubectl, start_cluster

pytestmark = [pytest.mark.kubectl]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("ssa") / "data")
    yield running
    running.stop()


@pytest.fixture
def ns(kubectl: Kubectl) -> str:
    name = "ssa-" + secrets.token_hex(3)
    kubectl("create", "namespace", name)
    return name


def configmap(ns: str, **data: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "namespace": ns}, "data": data})


def deployment(ns: str, replicas: int, name: str = "web") -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})


def get(kubectl: Kubectl, ns: str, what: str) -> dict[str, Any]:
    return json.loads(kubectl("get", what, "-n", ns, "-o", "json", "--show-managed-fields"))


def managers(obj: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


def test_a_key_the_applier_drops_is_removed(kubectl: Kubectl, ns: str) -> None:
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-",
                                           input=configmap(ns, key1="value1"))
    kubectl("apply", "--server-side", "-f", "-", input=configmap(ns, key2="new"))
    obj = get(kubectl, ns, "cm/c")
    assert obj["data"] == {"key2": "new"}
    assert managers(obj) == {("kubectl", "Apply", ""): {"f:data": {"f:key2": {}}}}


def test_a_map_applied_empty_then_with_a_key(kubectl: Kubectl, ns: str) -> None:
    for data in ({"key1": "value1", "key2": "value2"}, {}, {"key1": "new value"}):
        kubectl("apply", "--server-side", "-f", "-", input=configmap(ns, **data))
    obj = get(kubectl, ns, "cm/c")
    assert obj["data"] == {"key1": "new value"}
    assert managers(obj) == {("kubectl", "Apply", ""): {"f:data": {"f:key1": {}}}}


def test_conflict_then_force(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "deployment", "web", "-n", ns, "--image=busybox", "--replicas=2")
    created = managers(get(kubectl, ns, "deploy/web"))[("kubectl-create", "Update", "")]
    assert "f:progressDeadlineSeconds" in created["f:spec"]  # defaults count as written
    refused = kubectl.run("apply", "--server-side", "-f", "-", input=deployment(ns, 5),
                          check=False)
    assert refused.returncode == 1
    assert ('error: Apply failed with 1 conflict: conflict with "kubectl-create" using '
            'apps/v1: .spec.replicas') in refused.stderr
    assert "--force-conflicts" in refused.stderr
    assert get(kubectl, ns, "deploy/web")["spec"]["replicas"] == 2
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=deployment(ns, 5))
    obj = get(kubectl, ns, "deploy/web")
    assert obj["spec"]["replicas"] == 5
    owned = managers(obj)
    assert "f:replicas" in owned[("kubectl", "Apply", "")]["f:spec"]
    assert "f:replicas" not in owned[("kubectl-create", "Update", "")]["f:spec"]
    assert "f:progressDeadlineSeconds" in owned[("kubectl-create", "Update", "")]["f:spec"]
    assert "managedFields" not in kubectl("get", "deploy/web", "-n", ns, "-o", "yaml")


def test_client_side_then_server_side_apply(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=deployment(ns, 3, "csa"))
    kubectl("apply", "--server-side", "-f", "-", input=deployment(ns, 4, "csa"))
    obj = get(kubectl, ns, "deploy/csa")
    assert obj["spec"]["replicas"] == 4
    last = json.loads(obj["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 4
    assert any(manager == "kubectl" and op == "Apply" for manager, op, _ in managers(obj))


def test_shared_value_and_scale_subresource(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=configmap(ns, shared="1", own="a"))
    kubectl("apply", "--server-side", "--field-manager=other", "-f", "-",
            input=configmap(ns, shared="1"))
    owned = managers(get(kubectl, ns, "cm/c"))
    assert owned[("other", "Apply", "")] == {"f:data": {"f:shared": {}}}
    assert owned[("kubectl", "Apply", "")] == {"f:data": {"f:own": {}, "f:shared": {}}}
    kubectl("create", "deployment", "s", "-n", ns, "--image=busybox")
    kubectl("scale", "deployment/s", "-n", ns, "--replicas=3")
    scaled = [m for m in managers(get(kubectl, ns, "deploy/s")) if m[2] == "scale"]
    assert scaled and scaled[0][1] == "Update"
