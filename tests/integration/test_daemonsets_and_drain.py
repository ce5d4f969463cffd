"""DaemonSets, PodDisruptionBudgets, evictions and `kubectl drain` on a real 3-node cluster.

Driven with both kubectls (the `kubectl` fixture) against `tinykube up --nodes a,b,c`; the
eviction bodies are checked on the wire with a bare HTTPS client, and the official `kubernetes`
client runs a DaemonSet, a budget and evictions.
"""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest
from kubernetes import client, config

from tests.conftest import Cluster, Kubectl, until
from tests.integration.api_http import Server

pytestmark = [pytest.mark.kubectl, pytest.mark.cluster_args("--nodes", "a,b,c")]


def daemonset(name: str, *, node_selector: str = "", tolerations: str = "",
              strategy: str = "{type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}") -> str:
    extra = ""
    if node_selector:
        extra += f"\n      nodeSelector: {node_selector}"
    if tolerations:
        extra += f"\n      tolerations: {tolerations}"
    return f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  updateStrategy: {strategy}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1{extra}
      containers: [{{name: c, image: "busybox:1.36"}}]
"""


def pods(kubectl: Kubectl, selector: str) -> list[dict[str, Any]]:
    return list(json.loads(kubectl("get", "pods", "-l", selector, "-o", "json"))["items"])


def live(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def nodes_of(kubectl: Kubectl, selector: str) -> list[str]:
    return sorted(p["spec"].get("nodeName", "") for p in live(pods(kubectl, selector)))


def rolled_out(kubectl: Kubectl, name: str) -> None:
    out = kubectl("rollout", "status", f"ds/{name}", "--timeout=60s", timeout=70)
    assert f'daemon set "{name}" successfully rolled out' in out


def test_one_pod_per_node_honouring_node_selector_and_taints(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=daemonset("every"))
    rolled_out(kubectl, "every")
    assert nodes_of(kubectl, "app=every") == ["a", "b", "c"]
    table = kubectl("get", "ds", "every").splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE",
                                "AVAILABLE", "NODE", "SELECTOR", "AGE"]
    assert table[1].split()[:7] == ["every", "3", "3", "3", "3", "3", "<none>"]
    pinned = pods(kubectl, "app=every")[0]["spec"]["affinity"]["nodeAffinity"]
    assert pinned["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchFields"][0]["key"] == "metadata.name"

    kubectl("label", "node", "a", "b", "role=edge")
    kubectl("apply", "-f", "-", input=daemonset("edge", node_selector="{role: edge}"))
    rolled_out(kubectl, "edge")
    assert nodes_of(kubectl, "app=edge") == ["a", "b"]
    assert kubectl("get", "ds", "edge", "--no-headers").split()[6] == "role=edge"

    kubectl("taint", "node", "c", "dedicated=db:NoSchedule")
    kubectl("apply", "-f", "-", input=daemonset("plain"))
    kubectl("apply", "-f", "-", input=daemonset(
        "tolerant", tolerations="[{key: dedicated, operator: Exists}]"))
    rolled_out(kubectl, "plain")
    rolled_out(kubectl, "tolerant")
    assert nodes_of(kubectl, "app=plain") == ["a", "b"]
    assert nodes_of(kubectl, "app=tolerant") == ["a", "b", "c"]
    assert nodes_of(kubectl, "app=every") == ["a", "b", "c"]  # NoSchedule keeps running pods

    kubectl("taint", "node", "c", "dedicated=db:NoExecute")
    until(lambda: nodes_of(kubectl, "app=every") == ["a", "b"], what="NoExecute to evict")
    status = json.loads(kubectl("get", "ds", "every", "-o", "json"))["status"]
    assert status["desiredNumberScheduled"] == 2

    kubectl("create", "-f", "-", input="apiVersion: v1\nkind: Node\nmetadata:\n  name: d\n")
    until(lambda: nodes_of(kubectl, "app=every") == ["a", "b", "d"],
          what="the node added later to get its pod")


def replay(stream: str) -> tuple[list[int], dict[str, dict[str, Any]], int]:
    """Replay a `kubectl get pods -w --output-watch-events -o json` stream: the nodes without a
    ready, not terminating pod of the DaemonSet after each event (as upstream counts them),
    the pods at the end, and the most live pods at once. A trailing incomplete object is left
    for later."""
    decoder = json.JSONDecoder()
    state: dict[str, dict[str, Any]] = {}
    counts: list[int] = []
    peak, at = 0, 0
    while True:
        while at < len(stream) and stream[at].isspace():
            at += 1
        try:
            event, at = decoder.raw_decode(stream, at)
        except json.JSONDecodeError:
            return counts, state, peak
        pod = event["object"]
        if event["type"] == "DELETED":
            state.pop(pod["metadata"]["name"], None)
        else:
            state[pod["metadata"]["name"]] = pod
        serving = {p["spec"].get("nodeName") for p in live(list(state.values())) if is_ready(p)}
        counts.append(len({"a", "b", "c"} - serving))
        peak = max(peak, len(live(list(state.values()))))


def all_on(state: dict[str, dict[str, Any]], image: str) -> bool:
    running = live(list(state.values()))
    return len(running) == 3 and all(
        is_ready(p) and p["spec"]["containers"][0]["image"] == image for p in running)


ROLLS = [
    # (id, rollingUpdate, most nodes without a ready pod at once)
    ("max-unavailable-1", "{maxUnavailable: 1, maxSurge: 0}", 1),
    ("max-surge-1", "{maxUnavailable: 0, maxSurge: 1}", 0),
]


@pytest.mark.parametrize(("rolling", "most_down"), [r[1:] for r in ROLLS],
                         ids=[r[0] for r in ROLLS])
def test_rolls_across_three_nodes_one_at_a_time(kubectl: Kubectl, rolling: str,
                                                most_down: int) -> None:
    kubectl("apply", "-f", "-", input=daemonset(
        "roll", strategy=f"{{type: RollingUpdate, rollingUpdate: {rolling}}}"))
    rolled_out(kubectl, "roll")
    first = {p["metadata"]["labels"]["controller-revision-hash"] for p in pods(kubectl, "app=roll")}
    watch = kubectl.popen("get", "pods", "-l", "app=roll", "--watch", "--output-watch-events",
                          "-o", "json")
    chunks: list[str] = []
    assert watch.stdout is not None
    out = watch.stdout
    threading.Thread(target=lambda: chunks.extend(iter(out.readline, "")), daemon=True).start()
    try:
        until(lambda: all_on(replay("".join(chunks))[1], "busybox:1.36"),
              what="the watch to list the pods")
        kubectl("set", "image", "ds/roll", "c=busybox:1.37")
        rolled_out(kubectl, "roll")
        until(lambda: all_on(replay("".join(chunks))[1], "busybox:1.37"),
              what="the watch to show the rollout done")
    finally:
        watch.kill()
        watch.communicate(timeout=10)
    counts, _, peak = replay("".join(chunks))
    during = counts[counts.index(0):]  # from the end of the initial listing (one ADDED a pod)
    assert max(during) == most_down and during[-1] == 0  # never more nodes down than allowed
    assert (peak > 3) == (most_down == 0)  # surging: a node had its old and new pod at once
    images = {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "app=roll")}
    assert images == {"busybox:1.37"}
    history = kubectl("rollout", "history", "ds/roll")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    kubectl("rollout", "undo", "ds/roll")
    rolled_out(kubectl, "roll")
    assert {p["spec"]["containers"][0]["image"] for p in live(pods(kubectl, "app=roll"))} == \
        {"busybox:1.36"}
    assert {p["metadata"]["labels"]["controller-revision-hash"]
            for p in live(pods(kubectl, "app=roll"))} == first
    history = kubectl("rollout", "history", "ds/roll")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]

    kubectl("rollout", "restart", "ds/roll")
    rolled_out(kubectl, "roll")
    restarted = {p["metadata"]["labels"]["controller-revision-hash"]
                 for p in live(pods(kubectl, "app=roll"))}
    assert len(restarted) == 1 and restarted != first
    assert len(live(pods(kubectl, "app=roll"))) == 3


def test_on_delete_replaces_only_deleted_pods(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=daemonset("od", strategy="{type: OnDelete}"))
    until(lambda: len([p for p in pods(kubectl, "app=od") if is_ready(p)]) == 3,
          what="three ready pods")
    kubectl("set", "image", "ds/od", "c=busybox:1.37")
    until(lambda: json.loads(kubectl("get", "ds", "od", "-o", "json"))["status"].get(
        "observedGeneration") == 2, what="the new generation observed")
    victim = next(p for p in pods(kubectl, "app=od") if p["spec"]["nodeName"] == "b")
    kubectl("delete", "pod", victim["metadata"]["name"], "--wait=false")

    def images_by_node() -> dict[str, str]:
        return {p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"]
                for p in live(pods(kubectl, "app=od")) if p["spec"].get("nodeName")}
    until(lambda: images_by_node() == {"a": "busybox:1.36", "b": "busybox:1.37",
                                       "c": "busybox:1.36"}, what="only b replaced")


WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {terminationGracePeriodSeconds: 1, containers: [{name: c, image: "busybox:1.36"}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 3
  selector: {matchLabels: {app: web}}
"""


def pdb_status(kubectl: Kubectl) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "pdb", "web", "-o", "json")).get("status", {}))


def start_drain(kubectl: Kubectl, node: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = kubectl.popen("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                         "--timeout=90s")
    lines: list[str] = []

    def pump(stream: Any) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=pump, args=(stream,), daemon=True).start()
    return proc, lines


def test_drain_waits_on_the_budget_then_evicts(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=daemonset("agent"))
    kubectl("apply", "-f", "-", input=WEB)
    kubectl("rollout", "status", "deploy/web", "--timeout=60s")
    until(lambda: pdb_status(kubectl).get("currentHealthy") == 3, what="the PDB status")
    assert kubectl("get", "pdb", "web").splitlines() [0].split() == [
        "NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert kubectl("get", "pdb", "web", "--no-headers").split()[:4] == ["web", "3", "N/A", "0"]
    status = pdb_status(kubectl)
    assert (status["desiredHealthy"], status["expectedPods"], status["disruptionsAllowed"]) == \
        (3, 3, 0)
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    rolled_out(kubectl, "agent")
    victim = next(p for p in pods(kubectl, "app=web") if p["spec"]["nodeName"] == "a")

    drain, output = start_drain(kubectl, "a")
    try:
        until(lambda: any("Cannot evict pod as it would violate the pod's disruption budget."
                          in line for line in output), timeout=30, what="a refused eviction")
        assert drain.poll() is None  # still waiting, and the pod is still there
        assert kubectl("get", "pod", victim["metadata"]["name"], "-o", "name")
        kubectl("patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
        assert drain.wait(timeout=60) == 0, "\n".join(output)
    finally:
        if drain.poll() is None:
            drain.kill()
    until(lambda: "node/a drained" in output, timeout=5, what="drain's last line")
    assert f"pod/{victim['metadata']['name']} evicted" in output
    assert any(line.startswith("Warning: ignoring DaemonSet-managed Pods: default/agent-")
               for line in output)
    web_nodes = nodes_of(kubectl, "app=web")
    assert "a" not in web_nodes and len(web_nodes) == 3  # its replacement runs elsewhere
    assert nodes_of(kubectl, "app=agent") == ["a", "b", "c"]  # daemon pods stay
    assert kubectl("get", "node", "a", "-o", "jsonpath={.spec.unschedulable}") == "true"


def eviction(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"}, **extra}


def test_eviction_subresource_on_the_wire(kubectl: Kubectl, cluster: Cluster) -> None:
    kubectl("apply", "-f", "-", input=WEB)
    kubectl("rollout", "status", "deploy/web", "--timeout=60s")
    until(lambda: pdb_status(kubectl).get("currentHealthy") == 3, what="the PDB status")
    conn = Server(cluster.url, cluster.data_dir).connect()
    name = pods(kubectl, "app=web")[0]["metadata"]["name"]
    path = f"/api/v1/namespaces/default/pods/{name}/eviction"

    refused = conn.request("POST", path, eviction(name))
    assert refused.status == 429
    assert refused.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests",
        "details": {"causes": [{"reason": "DisruptionBudget",
                                "message": "The disruption budget web needs 3 healthy pods "
                                           "and has 3 currently"}]},
        "code": 429}
    missing = conn.request("POST", "/api/v1/namespaces/default/pods/nope/eviction",
                           eviction("nope"))
    assert (missing.status, missing.json()["message"]) == (404, 'pods "nope" not found')
    mismatch = conn.request("POST", path, eviction("other"))
    assert (mismatch.status, mismatch.json()["message"]) == (
        400, "name in URL does not match name in Eviction object")

    kubectl("patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
    until(lambda: pdb_status(kubectl).get("disruptionsAllowed") == 1, what="room for one")
    dry = conn.request("POST", path + "?dryRun=All", eviction(name))
    assert dry.status == 201
    assert not pods(kubectl, "app=web")[0]["metadata"].get("deletionTimestamp")
    done = conn.request("POST", path, eviction(name, deleteOptions={"gracePeriodSeconds": 0}))
    assert (done.status, done.json()) == (201, {"kind": "Status", "apiVersion": "v1",
                                                "metadata": {}, "status": "Success",
                                                "code": 201})
    until(lambda: name not in {p["metadata"]["name"] for p in pods(kubectl, "app=web")},
          what="the evicted pod gone")
    until(lambda: pdb_status(kubectl).get("currentHealthy") == 3, what="the replacement")
    assert not pdb_status(kubectl).get("disruptedPods")
    conn.close()


def test_official_client_daemonset_budget_and_eviction(cluster: Cluster) -> None:
    api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig))
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    policy = client.PolicyV1Api(api_client)
    labels = {"app": "py"}
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[
            client.V1Container(name="c", image="busybox:1.36")]))
    apps.create_namespaced_daemon_set("default", client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name="py"),
        spec=client.V1DaemonSetSpec(selector=client.V1LabelSelector(match_labels=labels),
                                    template=template)))
    until(lambda: apps.read_namespaced_daemon_set("py", "default").status.number_available == 3,
          what="three available daemon pods")
    policy.create_namespaced_pod_disruption_budget("default", client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name="py"),
        spec=client.V1PodDisruptionBudgetSpec(
            min_available=3, selector=client.V1LabelSelector(match_labels=labels))))
    # a DaemonSet has no scale, but an int minAvailable counts the pods found
    until(lambda: (policy.read_namespaced_pod_disruption_budget("py", "default").status
                   .current_healthy == 3), what="the budget's status")
    name = core.list_namespaced_pod("default", label_selector="app=py").items[0].metadata.name
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod_eviction(name, "default", client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace="default")))
    assert refused.value.status == 429
    assert json.loads(refused.value.body)["details"]["causes"][0]["reason"] == \
        "DisruptionBudget"
    policy.patch_namespaced_pod_disruption_budget("py", "default",
                                                  {"spec": {"minAvailable": 2}})
    until(lambda: (policy.read_namespaced_pod_disruption_budget("py", "default").status
                   .disruptions_allowed == 1), what="room for one eviction")
    core.create_namespaced_pod_eviction(name, "default", client.V1Eviction(
        metadata=client.V1ObjectMeta(name=name, namespace="default")))
    # the DaemonSet puts a new pod on the node the evicted one left
    until(lambda: name not in {p.metadata.name for p in core.list_namespaced_pod(
        "default", label_selector="app=py").items} and apps.read_namespaced_daemon_set(
        "py", "default").status.number_available == 3, what="the replacement")
