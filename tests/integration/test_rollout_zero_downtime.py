"""A rolling restart without a failed request: the busybox httpd image (no command) in a
Deployment of 3 behind a ClusterIP Service, a readiness probe and `preStop: {sleep: 2}`, on the
`container` runtime of `tinykube up --network netns` (nftables service proxy).

A client pod requests the Service by name in a loop (bounded: at most MAX_REQUESTS, ended by
a marker file the test writes once `kubectl rollout status` returned) and prints how many
failed. What makes it work, as in Kubernetes: a deleted pod's endpoint is `ready: false` at
once (the proxy stops sending it new connections) while the preStop sleep keeps it serving
the connections already in flight; the new pod gets traffic only once its probe passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tests.integration import oci_registry

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None
                       or bool(oci_registry.missing_tools()),
                       reason="needs root, runc and the registry tools"),
]
NODES = ("z-node1", "z-node2")
MAX_REQUESTS = 20000  # busybox wget -T crashes (SIGSEGV) on a refused connection: no -T
LOOP = ("echo start; f=0; i=0; while [ $i -lt {max} ] && [ ! -e /tmp/stop ]; do "
        "wget -q -O /dev/null http://web/index.html || {{ f=$((f+1)); echo fail $i; }}; "
        "i=$((i+1)); done; [ -e /tmp/stop ] && s=marker || s=bound; "
        "echo requests=$i failures=$f end=$s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    work = tmp_path_factory.mktemp("rollout")
    layout = oci_registry.build_busybox(work, "1")
    with oci_registry.registry(work, work / "registry-data") as plain:
        image = f"{plain.host}/demo/busybox:1"
        oci_registry.push(layout, "1", image)
        cluster = start_cluster(work / "data", "--network", "netns", "--nodes",
                                ",".join(NODES), "--proxy", timeout=60)
        try:
            yield cluster, image
        finally:
            cluster.stop()


def _manifests(image: str) -> str:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 4,
                     "containers": [{
                         "name": "httpd", "image": image,
                         "ports": [{"name": "http", "containerPort": 8080}],
                         "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080},
                                            "periodSeconds": 1},
                         "lifecycle": {"preStop": {"sleep": {"seconds": 2}}}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": "http"}]}}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [deployment, service]})


def _client(image: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": image, "command": [
                     "sh", "-c", LOOP.format(max=MAX_REQUESTS)]}]}})


def _pods(k: Kubectl) -> list[dict[str, object]]:
    items = json.loads(k("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _ready_endpoints(k: Kubectl) -> int:
    slices = json.loads(k("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                          "-o", "json"))["items"]
    return sum(bool(e.get("conditions", {}).get("ready")) for s in slices
               for e in s.get("endpoints") or [])


def _objects(stream: str) -> list[dict[str, Any]]:
    """The objects of a `kubectl get -w -o json` stream (JSON documents one after another;
    the last one may be cut short where the watch was stopped)."""
    decoder, objects, at = json.JSONDecoder(), [], 0
    while (at := len(stream) - len(stream[at:].lstrip())) < len(stream):
        try:
            obj, at = decoder.raw_decode(stream, at)
        except json.JSONDecodeError:  # the cut-short last document
            break
        objects.append(obj)
    return objects


def _condition(pod: dict[str, Any], kind: str) -> str:
    return next((c["status"] for c in pod["status"].get("conditions") or []
                 if c["type"] == kind), "")


def _phase(k: Kubectl, name: str) -> str:
    return str(json.loads(k("get", "pod", name, "-o", "json"))["status"].get("phase"))


@pytest.mark.parametrize("binary", [b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def test_rollout_restart_fails_no_request(cluster: tuple[Cluster, str], binary: str,
                                          tmp_path: Path) -> None:
    the_cluster, image = cluster
    k = Kubectl(binary, the_cluster.kubeconfig, tmp_path)
    k("apply", "-f", "-", input=_manifests(image))
    k("rollout", "status", "deploy/web", "--timeout=120s", timeout=130)
    before = {p["metadata"]["uid"] for p in _pods(k)}  # type: ignore[index]
    assert len(before) == 3
    until(lambda: _ready_endpoints(k) == 3, 30, "3 ready endpoints")
    k("apply", "-f", "-", input=_client(image))
    until(lambda: _phase(k, "client") == "Running", 60, "the client pod runs")
    until(lambda: "start" in k("logs", "client"), 30, "the client loop runs")
    watch = k.popen("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                    "--watch", "-o", "json")
    pod_watch = k.popen("get", "pods", "-l", "app=web", "--watch", "-o", "json")
    try:
        k("rollout", "restart", "deploy/web")
        k("rollout", "status", "deploy/web", "--timeout=180s", timeout=190)
    finally:
        for w in (watch, pod_watch):
            w.terminate()
        seen, _ = watch.communicate(timeout=10)
        pod_versions, _ = pod_watch.communicate(timeout=10)
    # The loop ends as soon as the file exists, and its container's PID namespace with it: the
    # exec's shell may be killed (137) before it exits, as on any cluster.
    stopped = k.run("exec", "client", "--", "sh", "-c", "echo > /tmp/stop", check=False)
    assert stopped.returncode in (0, 137), stopped.stderr
    until(lambda: _phase(k, "client") in ("Succeeded", "Failed"), 60, "the client loop ends")
    log = k("logs", "client")
    summary = re.search(r"requests=(\d+) failures=(\d+) end=(\w+)", log)
    assert summary is not None, log
    assert summary.group(3) == "marker", log  # the loop ran through the whole rollout
    assert int(summary.group(1)) > 0
    assert (summary.group(2), log.count("fail ")) == ("0", 0), log
    conditions = [e.get("conditions") for s in _objects(seen) for e in s.get("endpoints") or []]
    # while preStop sleeps, an old pod's endpoint is serving and terminating, not ready
    assert {"ready": False, "serving": True, "terminating": True} in conditions
    # the kubelet keeps probing a stopping pod: it stays Ready while its container runs
    stopping = [p for p in _objects(pod_versions) if p["metadata"].get("deletionTimestamp")
                and "running" in p["status"]["containerStatuses"][0]["state"]]
    assert stopping
    assert all(_condition(p, "Ready") == "True" for p in stopping)
    after = _pods(k)
    assert len(after) == 3
    assert not before & {p["metadata"]["uid"] for p in after}  # type: ignore[index]
    k("delete", "pod", "client", "--wait=true", "--timeout=60s", timeout=70)
    k("delete", "-f", "-", "--wait=true", "--timeout=60s", input=_manifests(image), timeout=70)
    until(lambda: not json.loads(k("get", "pods", "-o", "json"))["items"], 60,
          "every pod is gone")


def _hook_pod(name: str, image: str, lifecycle: dict[str, Any]) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 3, "restartPolicy": "Never",
                 "containers": [{"name": "c", "image": image, "lifecycle": lifecycle,
                                 "ports": [{"name": "http", "containerPort": 8080}]}]}})


def _events(k: Kubectl, name: str, uid: str) -> list[tuple[str, str]]:
    """Events about this pod (not an earlier one of the same name)."""
    out = json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}",
                       "-o", "json"))
    return [(e["reason"], e["message"]) for e in out["items"]
            if e["involvedObject"].get("uid") == uid]


@pytest.mark.parametrize("binary", [b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def test_hooks_in_images(cluster: tuple[Cluster, str], binary: str, tmp_path: Path) -> None:
    """postStart exec runs in the container before it counts as started; a failing postStart
    kills it with kube's event; a failing preStop httpGet (by port name) is an event too."""
    the_cluster, image = cluster
    k = Kubectl(binary, the_cluster.kubeconfig, tmp_path)
    k("apply", "-f", "-", input=_hook_pod("hooks-ok", image, {
        "postStart": {"exec": {"command": ["sh", "-c", "echo posted > /www/post.txt"]}},
        "preStop": {"httpGet": {"path": "/missing", "port": "http"}}}))
    k("apply", "-f", "-", input=_hook_pod("hooks-fail", image, {
        "postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}}))
    until(lambda: _phase(k, "hooks-ok") == "Running", 60, "hooks-ok runs")
    assert k("exec", "hooks-ok", "--", "cat", "/www/post.txt") == "posted\n"
    until(lambda: _phase(k, "hooks-fail") == "Failed", 60, "hooks-fail is killed")
    uid = json.loads(k("get", "pod", "hooks-fail", "-o", "json"))["metadata"]["uid"]
    failed = [m for r, m in _events(k, "hooks-fail", uid) if r == "FailedPostStartHook"]
    assert failed == [f'Exec lifecycle hook ([sh -c exit 3]) for Container "c" in Pod '
                      f'"hooks-fail_default({uid})" failed - error: command failed with exit '
                      'code 3: ']
    assert ("Killing", "FailedPostStartHook") in _events(k, "hooks-fail", uid)
    uid = json.loads(k("get", "pod", "hooks-ok", "-o", "json"))["metadata"]["uid"]
    k("delete", "pod", "hooks-ok", "hooks-fail", "--wait=true", "--timeout=60s", timeout=70)
    failed = [m for r, m in _events(k, "hooks-ok", uid) if r == "FailedPreStopHook"]
    assert failed == [f'HTTP lifecycle hook (/missing) for Container "c" in Pod '
                      f'"hooks-ok_default({uid})" failed - error: HTTP probe failed with '
                      'statuscode: 404']
