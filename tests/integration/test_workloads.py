"""Deployments, namespaces and garbage collection, end to end with the real kubectl."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Kubectl

pytestmark = [pytest.mark.kubectl, pytest.mark.cluster_args("--nodes", "n1,n2")]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d1}
spec:
  replicas: 5
  selector: {matchLabels: {app: d1}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}
  template:
    metadata: {labels: {app: d1}}
    spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, image: "busybox:1.36"}]}
"""


def ready_pods(kctl: Kubectl, selector: str) -> int:
    pods = json.loads(kctl("get", "pods", "-l", selector, "-o", "json"))["items"]
    return sum(1 for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in p.get("status", {}).get("conditions", [])))


def test_deployment_rolls_without_dropping_below_max_unavailable(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=DEPLOYMENT)
    assert "successfully rolled out" in kctl("rollout", "status", "deploy/d1", "--timeout=60s")
    kctl("set", "image", "deploy/d1", "c=busybox:1.37")
    lowest = 5
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # observe the rollout from outside, as a user would
        lowest = min(lowest, ready_pods(kctl, "app=d1"))
        status = json.loads(kctl("get", "deploy", "d1", "-o", "json"))["status"]
        if status.get("updatedReplicas") == 5 and status.get("availableReplicas") == 5 \
                and status.get("replicas") == 5:
            break
    assert lowest >= 4
    assert "successfully rolled out" in kctl("rollout", "status", "deploy/d1", "--timeout=60s")
    pods = json.loads(kctl("get", "pods", "-l", "app=d1", "-o", "json"))["items"]
    running = [p["spec"]["containers"][0]["image"] for p in pods
               if not p["metadata"].get("deletionTimestamp")]  # old pods may still terminate
    assert running == ["busybox:1.37"] * 5
    history = kctl("rollout", "history", "deploy/d1")
    assert "1 " in history and "2 " in history
    kctl("rollout", "undo", "deploy/d1")
    kctl("rollout", "status", "deploy/d1", "--timeout=60s")
    assert kctl("get", "deploy", "d1", "-o",
                "jsonpath={.spec.template.spec.containers[0].image}") == "busybox:1.36"


def test_deleting_a_deployment_collects_its_pods(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=DEPLOYMENT.replace("replicas: 5", "replicas: 2"))
    kctl("rollout", "status", "deploy/d1", "--timeout=60s")
    kctl("delete", "deploy", "d1")
    kctl("wait", "--for=delete", "pods", "-l", "app=d1", "--timeout=60s")
    assert kctl("get", "rs", "-o", "name") == ""


def test_namespace_deletion_removes_its_objects(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")
    kctl("apply", "-n", "team", "-f", "-", input=DEPLOYMENT.replace("replicas: 5", "replicas: 1"))
    kctl("apply", "-n", "team", "-f", "-",
         input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n")
    kctl("rollout", "status", "-n", "team", "deploy/d1", "--timeout=60s")
    kctl("delete", "namespace", "team", "--timeout=60s")
    missing = kctl.run("get", "namespace", "team", check=False)
    assert 'namespaces "team" not found' in missing.stderr
    assert kctl("get", "pods", "-n", "team", "-o", "name") == ""
