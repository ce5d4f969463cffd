"""The DNS query log and propagation traces on a `--network netns` cluster (root, nft), where
every pod has its own address, so a query's source names its pod.

* `tinykube dns log`: the kubelet's `--resolv-conf` holds one host search domain, as most hosts
  have (`corp.cluster.local`: inside the cluster zone, so its queries are answered here and none
  leaves the host), so a pod in namespace `other` searches `other.svc.cluster.local
  svc.cluster.local cluster.local corp.cluster.local`. It runs `nslookup nginx.default` and
  `nslookup nginx.default.svc.cluster.local` (no trailing dot); the log, filtered to that pod,
  shows its resolver's search-path expansion (`ndots:5`): every search suffix answered NXDOMAIN,
  in order, then the name that answers NOERROR, from the Service `default/nginx`; for the
  second name that is exactly 4 NXDOMAIN lines and one NOERROR (4 dots < ndots 5: the search
  list first, the name as given last).
* `tinykube trace`: web-1's readiness gate turns False; its trace has all five steps (API write,
  EndpointSlice, DNS model, first DNS answer, nftables proxy), each step's delta adds up to the
  trace's total, and the trace lies inside what the test measured around it: from before the
  write to the first answer (seen from a node) without web-1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, TESTDATA, Cluster, Kubectl, start_cluster, until
from tinykube.observe_client import ObserveAPI, set_query_log, wait_log_state

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None
                       or shutil.which("nft") is None,
                       reason="--network netns needs root, iproute2 and nftables"),
]
GATE = "tinykube.io/gate"
HOST_SEARCH = "corp.cluster.local"  # the host's search domain (trailing dot in its file)
CLIENT = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": "other"},
          "spec": {"runtimeClassName": "process", "nodeName": "n2", "containers": [
              {"name": "c", "image": "python", "command": ["sleep", "3600"]}]}}


def seed() -> list[dict[str, Any]]:
    """The seed's Service and StatefulSet (two replicas, gated pods, no node selector)."""
    service, statefulset = yaml.safe_load_all((TESTDATA / "web.yaml").read_text())
    spec = statefulset["spec"]
    spec.update(replicas=2, podManagementPolicy="Parallel")
    spec["template"]["spec"].pop("nodeSelector")
    spec["template"]["spec"]["readinessGates"] = [{"conditionType": GATE}]
    return [service, statefulset]


def tinykube(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "tinykube", *args], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def set_gate(kctl: Kubectl, pod: str, ok: bool) -> None:
    patch = {"status": {"conditions": [{"type": GATE, "status": str(ok)}]}}
    kctl("patch", "pod", pod, "--subresource=status", "--type=strategic", "-p",
         json.dumps(patch))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    resolv = tmp_path_factory.mktemp("resolv") / "resolv.conf"
    resolv.write_text(f"nameserver 127.0.0.1\nsearch {HOST_SEARCH}.\noptions edns0\n")
    running = start_cluster(tmp_path_factory.mktemp("observe") / "data", "--network", "netns",
                            "--nodes", "n1,n2", "--default-runtime", "virtual", "--proxy",
                            "--resolv-conf", str(resolv), timeout=60)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kctl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    kctl = Kubectl(KUBECTLS[0][1], cluster.kubeconfig, tmp_path_factory.mktemp("kubecache"))
    kctl("create", "namespace", "other")
    kctl("apply", "-f", "-", input=yaml.safe_dump_all([*seed(), CLIENT]))
    until(lambda: {"web-0", "web-1"} <= set(kctl("get", "pods", "-o", "name").replace(
        "pod/", "").split()), 30, "the pods")
    for pod in ("web-0", "web-1"):
        set_gate(kctl, pod, True)
    kctl("wait", "--for=condition=Ready", "pod/web-0", "pod/web-1", "--timeout=30s")
    kctl("wait", "-n", "other", "--for=condition=Ready", "pod/client", "--timeout=30s")
    return kctl


def observer(cluster: Cluster) -> ObserveAPI:
    """What `tinykube dns log` and `tinykube trace` read (polled in-process: each CLI run
    costs seconds of imports on a loaded machine; the CLI's output is checked once each)."""
    return ObserveAPI.from_kubeconfig(cluster.kubeconfig)


def log_entries(cluster: Cluster, pod: str) -> list[dict[str, Any]]:
    return list(observer(cluster).get("api/dns/log", pod=pod)["entries"])


def test_the_query_log_shows_a_pods_search_path(cluster: Cluster, kctl: Kubectl) -> None:
    kubeconfig = str(cluster.kubeconfig)
    assert "DNS query log on" in tinykube("dns", "log", "--kubeconfig", kubeconfig, "--enable")
    resolv = kctl("exec", "-n", "other", "client", "--", "cat", "/etc/resolv.conf")
    search = next(line.split()[1:] for line in resolv.splitlines() if line.startswith("search"))
    assert search == ["other.svc.cluster.local", "svc.cluster.local", "cluster.local", HOST_SEARCH]
    counts = []
    for name in ("nginx.default", "nginx.default.svc.cluster.local"):
        out = kctl("exec", "-n", "other", "client", "--", "nslookup", "-type=A", name)
        assert "Address" in out
        tried = [f"{name}.{suffix}." for suffix in search]
        answering = "nginx.default.svc.cluster.local."
        expected = tried[:tried.index(answering)] if answering in tried else [*tried, answering]
        expected = [(n, "NXDOMAIN") for n in expected if n != answering] + \
            [(answering, "NOERROR")]
        entries = until(lambda exp=expected: (e := [x for x in log_entries(
            cluster, "other/client") if x["type"] == "A"]) and
            [(x["name"], x["rcode"]) for x in e][-len(exp):] == exp and e, 10,
            f"the log to show {expected}")
        last = entries[-1]
        assert last["pod"] == "other/client" and last["client"].startswith("10.244.")
        assert last["source"] == "service default/nginx" and len(last["answers"]) == 2
        counts.append(len(expected))
    assert counts == [2, 5]  # nginx.default.other... NXDOMAIN, then 4 NXDOMAIN + one NOERROR
    text = tinykube("dns", "log", "--kubeconfig", kubeconfig, "--pod", "client",
                    "--rcode", "NXDOMAIN")
    print(text)
    assert "other/client udp A nginx.default.other.svc.cluster.local. NXDOMAIN" in text
    assert "NOERROR" not in text
    set_query_log(cluster.kubeconfig, enabled=False)
    assert wait_log_state(observer(cluster), False)


def dig_from_node(cluster: Cluster, name: str) -> set[str]:
    out = tinykube("node", "exec", "--data-dir", str(cluster.data_dir), "n1", "--", "dig",
                   "+short", "+tries=1", "+time=2", name, "@10.96.0.10")
    return set(out.split())


def test_a_readiness_change_is_traced_through_every_step(cluster: Cluster,
                                                         kctl: Kubectl) -> None:
    ips = {p["metadata"]["name"]: p["status"]["podIP"]
           for p in json.loads(kctl("get", "pods", "-o", "json"))["items"]}
    name = "nginx.default.svc.cluster.local"
    assert dig_from_node(cluster, name) == {ips["web-0"], ips["web-1"]}
    before = time.time()
    set_gate(kctl, "web-1", False)
    until(lambda: dig_from_node(cluster, name) == {ips["web-0"]}, 15, "DNS without web-1")
    seen = time.time()

    def traced() -> dict[str, Any] | None:
        found = observer(cluster).get("api/traces", pod="default/web-1")["traces"]
        return next((t for t in reversed(found) if t["subject"] ==
                     "pod default/web-1 ready=false" and t["closed"]), None)
    trace = until(traced, 15, "the trace to close")
    steps = {s["step"]: s for s in trace["steps"]}
    assert set(steps) == {"api-write", "endpointslice-written", "dns-model-updated",
                          "dns-answer", "proxy-updated"}
    assert sum(s["afterPreviousMs"] for s in trace["steps"]) == pytest.approx(
        trace["totalMs"], abs=0.01)
    assert before - 0.05 <= trace["start"]
    assert trace["start"] + steps["dns-answer"]["sinceStartMs"] / 1000 <= seen + 0.05
    assert steps["dns-answer"]["detail"] == name + "."
    assert trace["services"] == ["default/nginx"]
    timeline = tinykube("trace", "--kubeconfig", str(cluster.kubeconfig), "--pod",
                        "default/web-1")
    print(timeline)
    assert "pod default/web-1 ready=false" in timeline and "proxy-updated" in timeline
    assert f"= {trace['totalMs']:.3f} ms from api-write to the last step" in timeline
