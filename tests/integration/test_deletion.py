"""Deletion as kubectl sees it, with both real kubectls against a real `tinykube up`.

- A virtual pod runs nothing, so deleting it takes no grace period: `kubectl delete pod`, a
  `rollout restart` and `kubectl drain` finish well inside the 30 s default grace period (the
  bounds below are bounds, not timings).
- `kubectl delete --cascade=foreground` returns only once the dependents are gone; meanwhile
  the owner is visible with a deletionTimestamp and the `foregroundDeletion` finalizer, and no
  new dependents appear. `--cascade=orphan` leaves the dependents without the owner's reference.

Waiting is on real signals (kubectl's own waiting, `kubectl get -w` streams, or re-reading
the API with a deadline); there are no sleeps.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Kubectl

pytestmark = pytest.mark.kubectl

Obj = dict[str, Any]
BOUND = 5.0  # seconds; the default grace period is 30


def virtual_pod(name: str, **labels: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": labels},
                       "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}})


def statefulset(name: str, replicas: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"serviceName": name, "replicas": replicas,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})


def timed(kubectl: Kubectl, *args: str) -> float:
    started = time.monotonic()
    kubectl(*args, timeout=60)
    return time.monotonic() - started


def test_virtual_pod_deletion_takes_no_grace_period(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=virtual_pod("p"))
    kubectl("wait", "--for=condition=Ready", "pod/p", "--timeout=30s")
    assert timed(kubectl, "delete", "pod", "p", "--timeout=60s") < BOUND
    assert kubectl.run("get", "pod", "p", check=False).returncode == 1


def test_statefulset_rollout_restart_takes_no_grace_periods(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=statefulset("web", 3))
    kubectl("rollout", "status", "sts/web", "--timeout=60s")
    kubectl("rollout", "restart", "sts/web")
    # Three pods replaced one after the other: 90 s when each waited out its grace period.
    assert timed(kubectl, "rollout", "status", "sts/web", "--timeout=60s") < 3 * BOUND


def test_drain_takes_no_grace_period(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=virtual_pod("p"))
    kubectl("wait", "--for=condition=Ready", "pod/p", "--timeout=30s")
    node = kubectl("get", "pod", "p", "-o", "jsonpath={.spec.nodeName}")
    assert timed(kubectl, "drain", node, "--force", "--timeout=60s") < BOUND
    assert kubectl.run("get", "pod", "p", check=False).returncode == 1


def deployment(name: str, replicas: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})


def pod_names(kubectl: Kubectl, selector: str) -> set[str]:
    listed = json.loads(kubectl("get", "pods", "-l", selector, "-o", "json"))
    return {p["metadata"]["name"] for p in listed["items"]}


class Watch:
    """A `kubectl get -w` whose output lines are collected by a thread as they come."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        self.proc = kubectl.popen("get", "-w", *args)
        self.lines: list[str] = []
        self._new = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()

    def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 30) -> None:
        with self._new:
            if not self._new.wait_for(lambda: done(self.lines), timeout):
                raise AssertionError(f"watch never showed it; saw {self.lines}")

    def stop(self) -> list[str]:
        self.proc.kill()
        self.proc.wait()
        return list(self.lines)


def gone(kubectl: Kubectl) -> bool:
    listed = json.loads(kubectl("get", "replicasets,pods", "-l", "app=web", "-o", "json"))
    return listed["items"] == []


@pytest.mark.parametrize("cascade", ["foreground", "background"])
def test_deployment_deletion_makes_no_new_pods(kubectl: Kubectl, cascade: str) -> None:
    """Foreground: kubectl returns only once the ReplicaSet and pods are gone, and meanwhile
    the Deployment is visible with the foregroundDeletion finalizer. Either way, no pod is
    created while the Deployment and its ReplicaSet go."""
    kubectl("apply", "-f", "-", input=deployment("web", 3))
    kubectl("rollout", "status", "deploy/web", "--timeout=60s")
    before = pod_names(kubectl, "app=web")
    assert len(before) == 3
    # Every pod ever seen, and every state of the Deployment, from watches started first.
    pods = Watch(kubectl, "pods", "-l", "app=web", "-o", "jsonpath={.metadata.name}{\"\\n\"}")
    deploy = Watch(kubectl, "deploy", "web", "-o", "jsonpath={.metadata.deletionTimestamp} "
                   "{.metadata.finalizers}{\"\\n\"}")
    try:
        pods.wait_for(lambda lines: set(lines) >= before)
        deploy.wait_for(lambda lines: len(lines) >= 1)
        result = kubectl.run("delete", "deploy", "web", f"--cascade={cascade}",
                             "--timeout=60s", timeout=90)
        assert 'deployment.apps "web" deleted' in result.stdout
        assert kubectl.run("get", "deploy", "web", check=False).returncode == 1
        if cascade == "foreground":
            assert gone(kubectl)  # kubectl returned only once the dependents had gone
        else:
            deadline = time.monotonic() + 30
            while not gone(kubectl):
                assert time.monotonic() < deadline, "the dependents were never collected"
    finally:
        seen, states = set(pods.stop()), deploy.stop()
    assert seen == before  # no new pod appeared while the Deployment was being deleted
    if cascade == "foreground":
        deleting = [line.split(" ", 1) for line in states if line.split(" ", 1)[0]]
        assert deleting, f"the Deployment was never visible while being deleted: {states}"
        assert all(json.loads(finalizers) == ["foregroundDeletion"]
                   for _, finalizers in deleting)


def test_orphan_deletion_keeps_dependents_without_the_reference(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=deployment("web", 2))
    kubectl("rollout", "status", "deploy/web", "--timeout=60s")
    kubectl("delete", "deploy", "web", "--cascade=orphan", "--timeout=60s")
    [rs] = json.loads(kubectl("get", "replicasets", "-l", "app=web", "-o", "json"))["items"]
    assert "ownerReferences" not in rs["metadata"]
    assert "finalizers" not in rs["metadata"]
    assert len(pod_names(kubectl, "app=web")) == 2


def test_namespace_deletion_takes_no_grace_period(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "gone")
    kubectl("apply", "-n", "gone", "-f", "-", input=deployment("web", 3))
    kubectl("apply", "-n", "gone", "-f", "-", input=virtual_pod("p"))
    kubectl("rollout", "status", "-n", "gone", "deploy/web", "--timeout=60s")
    kubectl("wait", "-n", "gone", "--for=condition=Ready", "pod/p", "--timeout=30s")
    assert timed(kubectl, "delete", "namespace", "gone", "--timeout=60s") < 2 * BOUND
    assert kubectl.run("get", "namespace", "gone", check=False).returncode == 1


def test_foreground_deletion_of_a_service_takes_its_slices(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=virtual_pod("p", app="p"))
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "p"}, "ports": [{"port": 80}]}}))
    selector = "kubernetes.io/service-name=s"
    deadline = time.monotonic() + 30
    while '"addresses"' not in kubectl("get", "endpointslices", "-l", selector, "-o", "json"):
        assert time.monotonic() < deadline, "the Service never got its endpoint"
    before = {s["metadata"]["name"] for s in json.loads(
        kubectl("get", "endpointslices", "-l", selector, "-o", "json"))["items"]}
    slices = Watch(kubectl, "endpointslices", "-l", selector, "-o",
                   "jsonpath={.metadata.name}{\"\\n\"}")
    try:
        slices.wait_for(lambda lines: set(lines) >= before)
        kubectl("delete", "service", "s", "--cascade=foreground", "--timeout=60s", timeout=90)
        assert kubectl.run("get", "service", "s", check=False).returncode == 1
        assert json.loads(kubectl("get", "endpointslices", "-l", selector, "-o", "json")
                          )["items"] == []
    finally:
        seen = set(slices.stop())
    assert seen == before  # no slice was made for the Service while it was being deleted
