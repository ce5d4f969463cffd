"""ResourceQuota and LimitRange as kubectl users meet them, against one `tinykube up` per module.

- `kubectl create quota q --hard=pods=2`: the controller fills `status`, the third pod is
  refused with kube's message, `status.used` falls again after a delete, and `get quota` /
  `describe quota` print as upstream.
- A Deployment over its quota: the ReplicaSet records kube's `FailedCreate` event.
- A LimitRange's defaults appear in the pod created, with the `kubernetes.io/limit-ranger`
  annotation; `describe limitrange` prints its table.

Each test works in a namespace of its own, so both kubectls share the cluster.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl]

LIMIT_RANGE = """
apiVersion: v1
kind: LimitRange
metadata: {name: lr}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m}
    max: {cpu: "1"}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("quota") / "data")
    yield running
    running.stop()


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"q-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    return name


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def quota_used(kubectl: Kubectl, namespace: str, want: dict[str, str]) -> dict[str, str]:
    def check() -> dict[str, str] | None:
        status = get_json(kubectl, "quota", "q", "-n", namespace).get("status") or {}
        return status if status.get("used") == want else None
    return until(check, what=f"quota used {want}")


def test_pods_quota_refuses_the_third_pod(kubectl: Kubectl, namespace: str) -> None:
    assert kubectl("create", "quota", "q", "-n", namespace, "--hard=pods=2,services=5") \
        .strip() == "resourcequota/q created"
    status = quota_used(kubectl, namespace, {"pods": "0", "services": "0"})
    assert status["hard"] == {"pods": "2", "services": "5"}
    for name in ("a", "b"):
        kubectl("run", name, "-n", namespace, "--image=nginx")
    result = kubectl.run("run", "c", "-n", namespace, "--image=nginx", check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods "c" is forbidden: exceeded quota: q, '
        "requested: pods=1, used: pods=2, limited: pods=2")
    table = kubectl("get", "quota", "-n", namespace).splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert re.split(r"\s{2,}", table[1].rstrip())[2:] == ["pods: 2/2, services: 0/5"]
    described = kubectl("describe", "quota", "q", "-n", namespace)
    assert re.search(r"^Resource\s+Used\s+Hard$", described, re.M), described
    assert re.search(r"^pods\s+2\s+2$", described, re.M), described
    kubectl("delete", "pod", "a", "-n", namespace, "--grace-period=0", "--force")
    quota_used(kubectl, namespace, {"pods": "1", "services": "0"})
    kubectl("run", "c", "-n", namespace, "--image=nginx")


def test_deployment_over_quota_records_failed_create(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "quota", "q", "-n", namespace, "--hard=pods=1")
    quota_used(kubectl, namespace, {"pods": "0"})
    kubectl("create", "deployment", "web", "-n", namespace, "--image=nginx", "--replicas=3")

    def failed() -> str | None:
        events = get_json(kubectl, "events", "-n", namespace,
                          "--field-selector", "reason=FailedCreate")["items"]
        return events[0]["message"] if events else None

    message = until(failed, what="a FailedCreate event")
    assert re.fullmatch(r'Error creating: pods "web-[a-z0-9]+-[a-z0-9]+" is forbidden: '
                        r"exceeded quota: q, requested: pods=1, used: pods=1, "
                        r"limited: pods=1", message), message
    quota_used(kubectl, namespace, {"pods": "1"})


def test_limit_range_defaults_appear_in_the_pod(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=LIMIT_RANGE)
    kubectl("run", "web", "-n", namespace, "--image=nginx")
    pod = get_json(kubectl, "pod", "web", "-n", namespace)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container web; "
        "cpu, memory limit for container web")
    result = kubectl.run("run", "big", "-n", namespace, "--image=nginx",
                         "--overrides", json.dumps({"spec": {"containers": [{
                             "name": "big", "image": "nginx",
                             "resources": {"limits": {"cpu": "2"}}}]}}), check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods "big" is forbidden: maximum cpu usage per '
        "Container is 1, but limit is 2")
    described = kubectl("describe", "limitrange", "lr", "-n", namespace)
    assert re.search(r"^Type\s+Resource\s+Min\s+Max\s+Default Request\s+Default Limit\s+"
                     r"Max Limit/Request Ratio$", described, re.M), described
    assert re.search(r"^Container\s+cpu\s+-\s+1\s+100m\s+500m\s+-$", described, re.M), described
