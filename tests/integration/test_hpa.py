"""The HorizontalPodAutoscaler against a real `tinykube up`, its metrics from cgroups.

One cluster serves the module (`--metric-resolution 1s`, `--horizontal-pod-autoscaler-sync-
period 1s`). Deployment `burn` runs two process pods requesting 100m of cpu; the first to
claim a file in a shared hostPath keeps half a core busy for at most two minutes, the other
sleeps. `kubectl autoscale --cpu-percent=50 --min=1 --max=3` (each kubectl once) makes an
HPA that scales it to 3 (`SuccessfulRescale`, upstream's message). Deployment `virt` runs a
virtual pod, which never has metrics: its HPA reports ScalingActive False with
`FailedGetResourceMetric` and the Warning event. `kubectl get hpa` shows both with both
kubectls. Cgroups need root.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, ComponentAudit, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="container cgroups need root")]

# The pod that creates /shared/burn first spins half a core for at most two minutes.
BURN = ("import os, time\ntry:\n    os.close(os.open('/shared/burn', os.O_CREAT | os.O_EXCL))\n"
        "except FileExistsError:\n    pass\nelse:\n    end = time.time() + 120\n"
        "    while time.time() < end:\n        t = time.time() + 0.01\n"
        "        while time.time() < t: pass\n        time.sleep(0.01)\ntime.sleep(600)")
NO_METRICS = ("the HPA was unable to compute the replica count: failed to get cpu utilization: "
              "unable to get metrics for resource cpu: no metrics returned from resource "
              "metrics API")


def manifests(shared: Path) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: burn}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: burn}}}}
  template:
    metadata: {{labels: {{app: burn}}}}
    spec:
      runtimeClassName: process
      terminationGracePeriodSeconds: 1
      volumes: [{{name: shared, hostPath: {{path: {shared}, type: DirectoryOrCreate}}}}]
      containers:
      - name: spin
        image: python
        command: [python3, -c, {json.dumps(BURN)}]
        resources: {{requests: {{cpu: 100m}}}}
        volumeMounts: [{{name: shared, mountPath: /shared}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: virt}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: virt}}}}
  template:
    metadata: {{labels: {{app: virt}}}}
    spec:
      runtimeClassName: virtual
      containers: [{{name: c, image: nginx, resources: {{requests: {{cpu: 100m}}}}}}]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    audit = ComponentAudit(tmp_path_factory.mktemp("hpa-audit"))  # within its role
    running = start_cluster(tmp_path_factory.mktemp("hpa") / "data", "--metric-resolution",
                            "1s", "--horizontal-pod-autoscaler-sync-period", "1s", *audit.args())
    yield running
    running.stop()
    assert audit.new_denials() == []


@pytest.fixture(scope="module")
def kubectls(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> list[Kubectl]:
    return [Kubectl(binary, cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))
            for _, binary in KUBECTLS]


@pytest.fixture(scope="module")
def autoscaled(kubectls: list[Kubectl], tmp_path_factory: pytest.TempPathFactory) -> None:
    kctl = kubectls[0]
    kctl("apply", "-f", "-", input=manifests(tmp_path_factory.mktemp("shared")))
    kctl("rollout", "status", "deploy/burn", "deploy/virt", "--timeout=60s")
    kubectls[0]("autoscale", "deploy", "burn", "--cpu-percent=50", "--min=1", "--max=3")
    kubectls[-1]("autoscale", "deploy", "virt", "--cpu-percent=50", "--min=1", "--max=3")


def get(kctl: Kubectl, *what: str) -> Any:
    return json.loads(kctl("get", *what, "-o", "json"))


def condition(hpa: Any, type_: str) -> dict[str, Any]:
    return next((c for c in hpa.get("status", {}).get("conditions", [])
                 if c["type"] == type_), {})


def events(kctl: Kubectl, name: str) -> set[tuple[str, str, str]]:
    listed = get(kctl, "events", "--field-selector",
                 f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}")
    return {(e["type"], e["reason"], e["message"]) for e in listed["items"]}


def test_busy_pod_scales_the_deployment_up(kubectls: list[Kubectl], autoscaled: None) -> None:
    kctl = kubectls[0]
    until(lambda: get(kctl, "deploy", "burn")["spec"]["replicas"] == 3, timeout=60,
          what="burn scaled to 3")
    assert ("Normal", "SuccessfulRescale", "New size: 3; reason: cpu resource utilization "
            "(percentage of request) above target") in events(kctl, "burn")
    hpa = until(lambda: (h := get(kctl, "hpa", "burn")).get("status", {}).get(
        "lastScaleTime") and h, what="the HPA's status after the rescale")
    assert hpa["status"]["desiredReplicas"] == 3
    # after the rescale: SucceededRescale, then (the new pods idle) ScaleDownStabilized
    assert condition(hpa, "AbleToScale")["status"] == "True"
    assert condition(hpa, "ScalingActive")["reason"] == "ValidMetricFound"
    current = hpa["status"]["currentMetrics"][0]["resource"]
    assert current["name"] == "cpu" and current["current"]["averageUtilization"] > 0


def test_pods_without_metrics_are_not_scaled(kubectls: list[Kubectl], autoscaled: None) -> None:
    kctl = kubectls[0]
    hpa = until(lambda: (h := get(kctl, "hpa", "virt")) and
                condition(h, "ScalingActive").get("status") == "False" and h,
                what="virt's ScalingActive False")
    active = condition(hpa, "ScalingActive")
    assert (active["reason"], active["message"]) == ("FailedGetResourceMetric", NO_METRICS)
    until(lambda: ("Warning", "FailedGetResourceMetric", NO_METRICS.split(": ", 1)[1])
          in events(kctl, "virt"), what="the FailedGetResourceMetric event")
    assert get(kctl, "deploy", "virt")["spec"]["replicas"] == 1


@pytest.mark.parametrize("index", range(len(KUBECTLS)), ids=[n for n, _ in KUBECTLS])
def test_get_hpa(kubectls: list[Kubectl], autoscaled: None, index: int) -> None:
    kctl = kubectls[index]
    until(lambda: get(kctl, "hpa", "burn").get("status", {}).get("currentMetrics"),
          what="burn's current metrics")
    rows = [line.split() for line in kctl("get", "hpa").splitlines()]
    assert rows[0] == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["burn"][1] == "Deployment/burn"
    assert re.fullmatch(r"\d+%/50%", by_name["burn"][3]), by_name["burn"]
    assert by_name["burn"][2] == "cpu:"
    assert by_name["virt"][2:4] == ["cpu:", "<unknown>/50%"]
    assert by_name["virt"][4:7] == ["1", "3", "1"]


def test_describe_and_v1(kubectls: list[Kubectl], autoscaled: None) -> None:
    kctl = kubectls[-1]
    until(lambda: get(kctl, "hpa", "burn").get("status", {}).get("lastScaleTime"),
          timeout=60, what="burn rescaled")
    text = kctl("describe", "hpa", "burn")
    assert re.search(r"resource cpu on pods\s+\(as a percentage of request\):\s+\d+% "
                     r"\(\d+m\) / 50%", text), text
    assert re.search(r"ScalingActive\s+True\s+ValidMetricFound", text), text
    assert "SuccessfulRescale" in text
    v1 = json.loads(kctl("get", "--raw", "/apis/autoscaling/v1/namespaces/default/"
                         "horizontalpodautoscalers/burn"))
    assert isinstance(v1["status"]["currentCPUUtilizationPercentage"], int)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
