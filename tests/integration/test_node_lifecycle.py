"""The node lifecycle controller against a real `tinykube up` and kubectl.

A cluster with node `lc-n1` and a short `--node-monitor-grace-period`; a second node,
`lc-n2`, runs in a process of its own (`start_node_agent`) and is stopped, as a kubelet going
away. Its Lease goes stale: the node turns Unknown (`NodeStatusUnknown`, upstream's
message), is tainted unreachable (NoSchedule and NoExecute), its pod goes not Ready, the
taint eviction deletes it after its 2 s `tolerationSeconds` (`TaintManagerEviction`), and
the Deployment's replacement lands on `lc-n1`. Started again, the agent renews its Lease
and posts Ready: the taints go.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    KUBECTLS,
    Cluster,
    ComponentAudit,
    Kubectl,
    NodeAgentProcess,
    start_cluster,
    start_node_agent,
    until,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

GRACE = 15  # seconds: above the agents' 10 s lease renewal period, or live nodes flap
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: virtual
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute,
         tolerationSeconds: 2}
      containers: [{name: c, image: nginx}]
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    audit = ComponentAudit(tmp_path)  # the node controller works within its role
    running = start_cluster(tmp_path / "data", "--nodes", "lc-n1",
                            "--node-monitor-grace-period", f"{GRACE}s", *audit.args())
    yield running
    running.stop()
    assert audit.new_denials() == []


@pytest.fixture
def node2(cluster: Cluster, tmp_path: Path) -> Iterator[NodeAgentProcess]:
    agent = start_node_agent(cluster, "lc-n2", tmp_path / "n2")
    yield agent
    agent.stop()


def get(kctl: Kubectl, *what: str) -> Any:
    result = kctl.run("get", *what, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def condition(obj: Any, type_: str) -> dict[str, Any]:
    return next((c for c in (obj or {}).get("status", {}).get("conditions", [])
                 if c["type"] == type_), {})


def web_pods(kctl: Kubectl) -> list[Any]:
    return list((get(kctl, "pods", "-l", "app=web") or {}).get("items", []))


def test_stopped_node_is_tainted_and_its_pods_move(cluster: Cluster, node2: NodeAgentProcess,
                                                   tmp_path: Path) -> None:
    kctl = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path)
    until(lambda: condition(get(kctl, "node", "lc-n2"), "Ready").get("status") == "True",
          what="lc-n2 Ready")
    kctl("cordon", "lc-n1")  # the pod must start on lc-n2
    kctl("apply", "-f", "-", input=DEPLOYMENT)
    first = until(lambda: [p for p in web_pods(kctl) if condition(p, "Ready").get(
        "status") == "True"], what="the web pod Ready")[0]
    assert first["spec"]["nodeName"] == "lc-n2"
    kctl("uncordon", "lc-n1")

    node2.stop()
    node = until(lambda: (n := get(kctl, "node", "lc-n2")) and
                 condition(n, "Ready").get("status") == "Unknown" and n,
                 timeout=GRACE + 20, what="lc-n2 Unknown")
    ready = condition(node, "Ready")
    assert (ready["reason"], ready["message"]) == ("NodeStatusUnknown",
                                                   "Kubelet stopped posting node status.")
    assert condition(node, "MemoryPressure")["status"] == "Unknown"
    node = until(lambda: (n := get(kctl, "node", "lc-n2")) and
                 len(n["spec"].get("taints", [])) == 2 and n, what="the unreachable taints")
    taints = {(t["key"], t["effect"]) for t in node["spec"]["taints"]}
    assert taints == {("node.kubernetes.io/unreachable", "NoSchedule"),
                      ("node.kubernetes.io/unreachable", "NoExecute")}
    assert all(t.get("timeAdded") for t in node["spec"]["taints"])

    name = first["metadata"]["name"]
    until(lambda: (p := get(kctl, "pod", name)) is None or
          p["metadata"].get("deletionTimestamp"), what="the pod evicted")
    events = get(kctl, "events", "--field-selector", f"involvedObject.name={name}")
    reasons = {(e["reason"], e["message"]) for e in events["items"]}
    assert ("TaintManagerEviction", f"Marking for deletion Pod default/{name}") in reasons
    assert ("NodeNotReady", "Node is not ready") in reasons
    replacement = until(lambda: [p for p in web_pods(kctl) if p["metadata"]["name"] != name
                                 and condition(p, "Ready").get("status") == "True"],
                        what="the replacement Ready")[0]
    assert replacement["spec"]["nodeName"] == "lc-n1"

    again = start_node_agent(cluster, "lc-n2", tmp_path / "n2")
    try:
        until(lambda: (n := get(kctl, "node", "lc-n2")) and
              condition(n, "Ready").get("status") == "True" and
              not n["spec"].get("taints"), what="lc-n2 Ready and untainted again")
    finally:
        again.stop()
