"""The data directory of a real `tinykube up`: one `up` at a time, and readable by its owner only.

A second `up` on a directory in use (another port) must fail at once with a message naming the
running one, leaving its state and kubeconfig alone; a killed `up` leaves no lock behind. After
an `up` has run a process pod (logs, name files, service account token), every directory in the
data directory is 0700 and every file 0600, owned by this user; a directory an older tinykube
left 0755/0644 is tightened at the next start.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tinykube.testing import free_port

pytestmark = [pytest.mark.kubectl]

POD = """
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  runtimeClassName: process
  terminationGracePeriodSeconds: 1
  dnsPolicy: None
  dnsConfig: {nameservers: [127.0.0.53], searches: [default.svc.cluster.local]}
  containers:
  - name: writer
    image: busybox
    command: [sh, -c, "echo started; exec sleep 600"]
"""


def kubectl_for(cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir(exist_ok=True)
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


def modes(data_dir: Path) -> dict[str, str]:
    """Every entry under `data_dir` (itself as "."): its permissions and whether we own it."""
    found = {".": _mode(data_dir)}
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            path = Path(root, name)
            found[str(path.relative_to(data_dir))] = _mode(path)
    return found


def _mode(path: Path) -> str:
    info = path.lstat()
    owner = "mine" if info.st_uid == os.getuid() else f"uid {info.st_uid}"
    return f"{stat.filemode(info.st_mode)} {owner}"


def assert_owner_only(data_dir: Path) -> dict[str, str]:
    found = modes(data_dir)
    loose = {path: mode for path, mode in found.items()
             if mode not in ("drwx------ mine", "-rw------- mine")}
    assert loose == {}
    return found


def second_up(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinykube", "up", "--data-dir", str(data_dir), "--listen",
         "127.0.0.1:0", "--no-proxy", "--dns-listen", f"127.0.0.1:{free_port()}", *extra],
        capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("extra", [(), ("--single-process",)], ids=["two-processes", "single"])
def test_a_second_up_on_a_data_dir_in_use_fails_naming_the_first(tmp_path: Path,
                                                                  extra: tuple[str, ...]) -> None:
    first = start_cluster(tmp_path / "data")
    try:
        kubectl = kubectl_for(first, tmp_path)
        kubectl("create", "configmap", "kept", "--from-literal=a=b")
        kubeconfig = first.kubeconfig.read_bytes()
        second = second_up(first.data_dir, *extra)
        assert second.returncode == 1
        assert second.stdout == ""
        assert second.stderr == (
            f"Error: the data directory {first.data_dir} is in use by another tinykube "
            f"(PID {first.process.pid}, API server at {first.url}): stop it, or give this one "
            "another --data-dir\n")
        assert first.kubeconfig.read_bytes() == kubeconfig
        assert kubectl("get", "configmap", "kept", "-o", "name") == "configmap/kept\n"
    finally:
        assert first.stop() == 0


def test_a_killed_up_leaves_the_data_dir_free(tmp_path: Path) -> None:
    first = start_cluster(tmp_path / "data")
    kubectl_for(first, tmp_path)("create", "configmap", "kept", "--from-literal=a=b")
    first.stop(signal.SIGKILL)
    second = start_cluster(tmp_path / "data")
    try:
        assert kubectl_for(second, tmp_path)("get", "configmap", "kept", "-o",
                                             "name") == "configmap/kept\n"
    finally:
        assert second.stop() == 0


def run_a_process_pod(cluster: Cluster, tmp_path: Path) -> None:
    kubectl = kubectl_for(cluster, tmp_path)
    kubectl("apply", "-f", "-", input=POD)
    kubectl("wait", "--for=condition=Ready", "pod/writer", "--timeout=30s")
    # Ready comes when the container has started, not when its first line is in the log.
    until(lambda: kubectl("logs", "writer") == "started\n", timeout=10, what="the pod's log")
    kubectl("create", "secret", "generic", "s", "--from-literal=password=hunter2")


def test_every_file_of_a_fresh_data_dir_is_owner_only(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data")
    try:
        run_a_process_pod(cluster, tmp_path)
        found = assert_owner_only(cluster.data_dir)
        expected = {".", "state.db", "state.db-wal", "state.db-shm", "kubeconfig", "ca.crt",
                    "ca.key", "apiserver.crt", "apiserver.key", "admin.token", "kubelet.token",
                    "up.lock"}
        assert expected <= set(found)
        pod_files = {Path(p).name for p in found if p.startswith("kubelet/")}
        assert {"hosts", "resolv.conf", "token", "current.log"} <= pod_files
    finally:
        assert cluster.stop() == 0
    assert_owner_only(cluster.data_dir)


def test_a_data_dir_an_older_tinykube_left_open_is_tightened(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data")
    run_a_process_pod(cluster, tmp_path)
    assert cluster.stop() == 0
    for path in [cluster.data_dir, *cluster.data_dir.rglob("*")]:  # as tinykube 0.x left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    again = start_cluster(cluster.data_dir)
    try:
        assert_owner_only(cluster.data_dir)
        [warning] = [line for line in again.output if "readable by their owner only" in line]
        assert f"in {cluster.data_dir} readable by their owner only (an older tinykube left " \
            "them readable by every local user)" in warning
    finally:
        assert again.stop() == 0
