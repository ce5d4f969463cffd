"""A real 3-member etcd cluster as a StatefulSet with `volumeClaimTemplates` (issue 10, Volumes).

`tinykube up --network netns` with two nodes; the members are process pods running the host's
`/usr/bin/etcd`, each with its own PersistentVolumeClaim from the default StorageClass
(`standard`, the local-path provisioner, WaitForFirstConsumer) and its peers reached by the
headless Service's `etcd-N.etcd` names (`publishNotReadyAddresses: true`: a member must find
its peers before the cluster has quorum, so before any is Ready; `podManagementPolicy:
Parallel` for the same reason). A key is written through one member; then each pod is deleted
in turn and must come back Running and Ready on the same node, claim and volume, with the same
member IDs and cluster ID and the key still there, read serializably (from that member's own
data, not through the leader). etcd derives a bootstrapped member's ID from its peer URLs and
the cluster token, so equal IDs alone would not prove the data survived: the member's data
directory must be the one it had (a marker file written there before the deletion, and its
WAL's first file unchanged). Only the machine's kubectl (v1.32) drives it: the test restarts
three etcd members, and running it twice (once per kubectl) would double a long test.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and iproute2"),
    pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None,
                       reason="needs etcd and etcdctl (Debian etcd-server, etcd-client)"),
]
MEMBERS = [f"etcd-{i}" for i in range(3)]
INITIAL = ",".join(f"{m}=http://{m}.etcd:2380" for m in MEMBERS)
MANIFEST = f"""
apiVersion: v1
kind: Service
metadata: {{name: etcd}}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {{app: etcd}}
  ports:
  - {{name: client, port: 2379}}
  - {{name: peer, port: 2380}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: etcd}}
spec:
  serviceName: etcd
  replicas: 3
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: etcd}}}}
  template:
    metadata: {{labels: {{app: etcd}}}}
    spec:
      runtimeClassName: process
      terminationGracePeriodSeconds: 5
      containers:
      - name: etcd
        image: etcd
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        - name: ETCDCTL_API
          value: "3"
        command:
        - etcd
        - --name=$(POD_NAME)
        - --data-dir=/var/lib/etcd-data/member-data
        - --listen-peer-urls=http://0.0.0.0:2380
        - --listen-client-urls=http://0.0.0.0:2379
        - --advertise-client-urls=http://$(POD_NAME).etcd:2379
        - --initial-advertise-peer-urls=http://$(POD_NAME).etcd:2380
        - --initial-cluster={INITIAL}
        - --initial-cluster-state=new
        - --initial-cluster-token=tinykube-etcd
        volumeMounts:
        - {{name: data, mountPath: /var/lib/etcd-data}}
        readinessProbe:
          httpGet: {{path: /health, port: 2379}}
          periodSeconds: 1
          failureThreshold: 3
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"""


@pytest.fixture
def net_cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", "--network", "netns", "--nodes", "n1,n2")
    yield running
    running.stop()


@pytest.fixture
def kctl(net_cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], net_cluster.kubeconfig, cache)


def get_json(kctl: Kubectl, *args: str) -> Any:
    return json.loads(kctl("get", *args, "-o", "json"))


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def all_ready(kctl: Kubectl) -> dict[str, dict[str, Any]] | None:
    pods = {p["metadata"]["name"]: p for p in get_json(kctl, "pods", "-l", "app=etcd")["items"]}
    good = sorted(pods) == MEMBERS and all(ready(p) for p in pods.values())
    return pods if good else None


def replaced(kctl: Kubectl, name: str, old_uid: str) -> dict[str, dict[str, Any]] | None:
    """All three Ready, `name` a new pod (not the one of `old_uid`)."""
    now = all_ready(kctl)
    return now if now and now[name]["metadata"]["uid"] != old_uid else None


def etcdctl(kctl: Kubectl, pod: str, *args: str) -> str:
    return kctl("exec", pod, "--", "etcdctl", "--endpoints=http://127.0.0.1:2379",
                "--command-timeout=10s", *args)


def member_ids(kctl: Kubectl, pod: str) -> dict[str, str]:
    """name -> hex member ID, from `etcdctl member list -w json` through `pod`'s member."""
    members = json.loads(etcdctl(kctl, pod, "member", "list", "-w", "json"))["members"]
    return {m["name"]: format(m["ID"], "x") for m in members}


def status(kctl: Kubectl, pod: str) -> dict[str, Any]:
    """`etcdctl endpoint status` of the pod's own member: its header's cluster and member IDs."""
    header = json.loads(etcdctl(kctl, pod, "endpoint", "status", "-w", "json"))[0]
    ids = {k: header["Status"]["header"][k] for k in ("cluster_id", "member_id")}
    assert all(ids.values()), header
    return ids


def on_volume(kctl: Kubectl, pod: str, script: str) -> str:
    return kctl("exec", pod, "--", "sh", "-c", f"cd /var/lib/etcd-data && {script}")


WAL = "ls member-data/member/wal/*.wal | head -1"


def volumes(kctl: Kubectl) -> dict[str, tuple[str, str]]:
    """claim name -> (uid, bound volume)."""
    claims = get_json(kctl, "pvc", "-l", "app=etcd")["items"]
    return {c["metadata"]["name"]: (c["metadata"]["uid"], c["spec"].get("volumeName", ""))
            for c in claims}


def test_members_keep_data_and_ids_across_pod_deletion(kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=MANIFEST)
    pods = until(lambda: all_ready(kctl), 90, "three Ready etcd members")
    claims = volumes(kctl)
    assert sorted(claims) == [f"data-{m}" for m in MEMBERS]
    assert all(pv.startswith("pvc-") for _, pv in claims.values()), claims
    etcdctl(kctl, "etcd-1", "put", "greeting", "hello from etcd-1")
    ids = member_ids(kctl, "etcd-0")
    assert sorted(ids) == MEMBERS and len(set(ids.values())) == 3
    for victim in MEMBERS:
        old_uid, node = pods[victim]["metadata"]["uid"], pods[victim]["spec"]["nodeName"]
        before = status(kctl, victim)
        wal = on_volume(kctl, victim, WAL)
        assert wal.endswith(".wal\n"), wal
        on_volume(kctl, victim, f"echo {old_uid} > marker")
        kctl.delete_replaced("pod", victim)
        pods = until(lambda: replaced(kctl, victim, old_uid), 60,  # noqa: B023 (called here)
                     f"{victim} back Running and Ready")
        assert pods[victim]["spec"]["nodeName"] == node  # the local volume's node affinity
        assert volumes(kctl) == claims
        assert on_volume(kctl, victim, f"cat marker && {WAL}") == f"{old_uid}\n{wal}"
        assert member_ids(kctl, victim) == ids
        assert status(kctl, victim) == before
        assert etcdctl(kctl, victim, "get", "greeting", "--print-value-only",
                       "--consistency=s") == "hello from etcd-1\n"
