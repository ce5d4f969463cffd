"""Pod volumes of process pods, end to end: real `tinykube up`, both kubectls, real mounts.

One cluster serves the module (default runtime `process`). Each test creates its objects in a
namespace of its own and reads the volume's content from inside the container with `kubectl
exec ... cat`. Mount paths are under directories the host does not have (`/tinykube-vol/...`)
or below existing ones (`/usr/share/...`): the pod sees them, the host's own tree never gets
them (checked after each test).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]
_names = itertools.count()
KUBECTL = KUBECTLS[0][1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("volumes") / "data",
                            "--default-runtime", "process")
    yield running
    running.stop()


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    name = f"vol-{next(_names)}-{random.randrange(1 << 16):x}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(autouse=True)
def host_tree_untouched() -> Iterator[None]:
    before = set(os.listdir("/")), set(os.listdir("/usr/share"))
    yield
    assert (set(os.listdir("/")), set(os.listdir("/usr/share"))) == before


def pod_yaml(name: str, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], *,
             extra: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
             ) -> str:
    spec = {"terminationGracePeriodSeconds": 1, "volumes": volumes, "containers": [
        {"name": "c", "image": "busybox", "command": ["sleep", "3600"], "volumeMounts": mounts},
        *(extra or [])]}
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": labels or {"app": "vol"}},
                       "spec": spec})


def apply(kubectl: Kubectl, ns: str, text: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=text)


def get(kubectl: Kubectl, ns: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", "-n", ns, kind, name, "-o", "json")))


def running(kubectl: Kubectl, ns: str, name: str, timeout: float = 30) -> None:
    until(lambda: get(kubectl, ns, "pod", name).get("status", {}).get("phase") == "Running",
          timeout, f"pod {name} Running")


def cat(kubectl: Kubectl, ns: str, pod: str, path: str, container: str = "c") -> str:
    return kubectl("exec", "-n", ns, pod, "-c", container, "--", "cat", path)


def events(kubectl: Kubectl, ns: str, reason: str) -> list[str]:
    items = json.loads(kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    return [e["message"] for e in items if e.get("reason") == reason]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {app.conf: "port=8080\\n", other: "x"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
data: {password: c2VjcmV0}
"""

# id -> (volume, mountPath, file read inside, expected content)
CASES = {
    "empty-dir": ({"emptyDir": {}}, "/tinykube-vol/scratch", None, None),
    "empty-dir-memory": ({"emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                         "/tinykube-vol/mem", None, None),
    "config-map": ({"configMap": {"name": "cfg"}}, "/tinykube-vol/cfg", "app.conf",
                   "port=8080\n"),
    "config-map-items": ({"configMap": {"name": "cfg", "items": [
        {"key": "app.conf", "path": "conf/main.conf"}]}}, "/usr/share/tinykube-vol",
        "conf/main.conf", "port=8080\n"),
    "secret": ({"secret": {"secretName": "sec"}}, "/tinykube-vol/sec", "password", "secret"),
    "downward-api": ({"downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                             "divisor": "1Mi"}}]}},
        "/tinykube-vol/info", "labels", 'app="vol"'),
    "projected": ({"projected": {"sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "other", "path": "other"}]}},
        {"secret": {"name": "sec"}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {
            "fieldPath": "metadata.namespace"}}]}},
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
        "/tinykube-vol/all", "password", "secret"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_volume_content_seen_from_inside(kubectl: Kubectl, ns: str, case: str) -> None:
    volume, path, name, expected = CASES[case]
    if (volume.get("emptyDir") or {}).get("medium") and os.geteuid() != 0:
        pytest.skip("a memory emptyDir is a tmpfs only with a root node agent")
    apply(kubectl, ns, CONFIG)
    apply(kubectl, ns, pod_yaml("p", [{"name": "v", **volume}],
                                [{"name": "v", "mountPath": path}]))
    running(kubectl, ns, "p")
    if name is None:  # an emptyDir: written and read back inside
        kubectl("exec", "-n", ns, "p", "--", "sh", "-c", f"echo written > {path}/f")
        assert cat(kubectl, ns, "p", f"{path}/f") == "written\n"
        mounts = cat(kubectl, ns, "p", "/proc/self/mounts")
        fs = "tmpfs" if volume["emptyDir"].get("medium") else ""
        assert any(line.split()[1] == path and fs in line.split()[2]
                   for line in mounts.splitlines())
        return
    assert cat(kubectl, ns, "p", f"{path}/{name}") == expected
    written = kubectl.run("exec", "-n", ns, "p", "--", "sh", "-c", f"echo x > {path}/new",
                          check=False)
    assert written.returncode != 0 and "Read-only file system" in written.stderr


def test_downward_api_and_projected_files(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, CONFIG)
    downward, projected = CASES["downward-api"][0], CASES["projected"][0]
    apply(kubectl, ns, pod_yaml("p", [{"name": "d", **downward}, {"name": "a", **projected}],
                                [{"name": "d", "mountPath": "/tinykube-vol/d"},
                                 {"name": "a", "mountPath": "/tinykube-vol/a"}]))
    running(kubectl, ns, "p")
    assert cat(kubectl, ns, "p", "/tinykube-vol/d/name") == "p"
    assert cat(kubectl, ns, "p", "/tinykube-vol/d/mem") == str(24 * 1024)  # node allocatable
    assert cat(kubectl, ns, "p", "/tinykube-vol/a/other") == "x"
    assert cat(kubectl, ns, "p", "/tinykube-vol/a/ns") == ns
    token = cat(kubectl, ns, "p", "/tinykube-vol/a/token")
    assert token not in Path(kubectl.kubeconfig).read_text()  # the pod's own, not the admin's
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["kubernetes.io"]["pod"]["name"] == "p"
    assert claims["exp"] - claims["iat"] == 3600


def test_config_map_update_reaches_the_file_but_not_a_sub_path(kubectl: Kubectl,
                                                                 ns: str) -> None:
    apply(kubectl, ns, CONFIG)
    apply(kubectl, ns, pod_yaml("p", [{"name": "v", "configMap": {"name": "cfg"}}], [
        {"name": "v", "mountPath": "/tinykube-vol/cfg"},
        {"name": "v", "mountPath": "/tinykube-vol/one.conf", "subPath": "app.conf"}]))
    running(kubectl, ns, "p")
    kubectl("patch", "-n", ns, "configmap", "cfg", "--type=merge",
            "-p", '{"data": {"app.conf": "port=9090\\n"}}')
    until(lambda: cat(kubectl, ns, "p", "/tinykube-vol/cfg/app.conf") == "port=9090\n", 30,
          "the new content in the mounted file")
    assert cat(kubectl, ns, "p", "/tinykube-vol/one.conf") == "port=8080\n"
    assert get(kubectl, ns, "pod", "p")["status"]["containerStatuses"][0]["restartCount"] == 0


def test_missing_config_map_waits_then_runs(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, pod_yaml("p", [{"name": "cfg", "configMap": {"name": "late"}}],
                                [{"name": "cfg", "mountPath": "/tinykube-vol/late"}]))
    message = 'MountVolume.SetUp failed for volume "cfg" : configmap "late" not found'
    until(lambda: message in events(kubectl, ns, "FailedMount"), 30, "the FailedMount event")
    pod = get(kubectl, ns, "pod", "p")
    assert pod["status"]["phase"] == "Pending"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ContainerCreating"
    kubectl("create", "configmap", "late", "-n", ns, "--from-literal=k=v")
    running(kubectl, ns, "p")
    assert cat(kubectl, ns, "p", "/tinykube-vol/late/k") == "v"


def test_empty_dir_shared_by_two_containers(kubectl: Kubectl, ns: str) -> None:
    writer = {"name": "w", "image": "busybox", "command": [
        "sh", "-c", "echo from-writer > /tinykube-vol/shared/note; exec sleep 3600"],
        "volumeMounts": [{"name": "s", "mountPath": "/tinykube-vol/shared"}]}
    apply(kubectl, ns, pod_yaml("p", [{"name": "s", "emptyDir": {}}],
                                [{"name": "s", "mountPath": "/data/other-place"}],
                                extra=[writer]))
    running(kubectl, ns, "p")
    until(lambda: kubectl.run("exec", "-n", ns, "p", "-c", "c", "--", "cat",
                              "/data/other-place/note", check=False).stdout == "from-writer\n",
          30, "the writer's file in the reader's mount")


def test_host_path_and_claim(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    host = tmp_path / "host"
    (tmp_path / "pv").mkdir()
    (tmp_path / "pv" / "data").write_text("kept\n")
    claim = textwrap.dedent(f"""
        apiVersion: v1
        kind: PersistentVolume
        metadata: {{name: pv-{ns}}}
        spec:
          capacity: {{storage: 1Gi}}
          accessModes: [ReadWriteOnce]
          hostPath: {{path: "{tmp_path / 'pv'}"}}
          claimRef: {{namespace: {ns}, name: claim}}
        ---
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {{name: claim}}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {{requests: {{storage: 1Gi}}}}
          volumeName: pv-{ns}
        """)
    apply(kubectl, ns, claim)
    apply(kubectl, ns, pod_yaml("p", [
        {"name": "h", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}},
        {"name": "d", "persistentVolumeClaim": {"claimName": "claim"}}],
        [{"name": "h", "mountPath": "/tinykube-vol/host"},
         {"name": "d", "mountPath": "/tinykube-vol/claim"}]))
    running(kubectl, ns, "p")  # the PV controller binds the pre-bound pair, then it mounts
    assert get(kubectl, ns, "pvc", "claim")["status"]["phase"] == "Bound"
    assert cat(kubectl, ns, "p", "/tinykube-vol/claim/data") == "kept\n"
    kubectl("exec", "-n", ns, "p", "--", "sh", "-c", "echo from-pod > /tinykube-vol/host/f")
    assert (host / "f").read_text() == "from-pod\n"
    kubectl("delete", "-n", ns, "pod", "p", "--wait=true", "--timeout=30s")
    assert (host / "f").read_text() == "from-pod\n"  # hostPath and PV contents are kept
    assert (tmp_path / "pv" / "data").read_text() == "kept\n"
    kubectl("delete", "pv", f"pv-{ns}", "--wait=false")


@pytest.mark.parametrize(("kind", "make", "what"), [
    pytest.param("Directory", "file", "is not a directory", id="directory-is-a-file"),
    pytest.param("File", "dir", "is not a file", id="file-is-a-directory"),
    pytest.param("Socket", "file", "is not a socket file", id="socket-is-a-file"),
    pytest.param("CharDevice", "file", "is not a character device", id="char-device"),
    pytest.param("BlockDevice", "none", "is not a block device", id="block-device-missing"),
])
def test_host_path_type_errors(kubectl: Kubectl, ns: str, tmp_path: Path, kind: str,
                               make: str, what: str) -> None:
    path = tmp_path / "thing"
    if make == "file":
        path.write_text("")
    elif make == "dir":
        path.mkdir()
    apply(kubectl, ns, pod_yaml("p", [{"name": "h", "hostPath": {"path": str(path),
                                                                 "type": kind}}],
                                [{"name": "h", "mountPath": "/tinykube-vol/h"}]))
    message = (f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
               f"{path} {what}")
    until(lambda: message in events(kubectl, ns, "FailedMount"), 30, "the FailedMount event")
    assert get(kubectl, ns, "pod", "p")["status"]["phase"] == "Pending"


def test_sub_path_escaping_the_volume_is_refused(kubectl: Kubectl, ns: str,
                                                 tmp_path: Path) -> None:
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "out").symlink_to("/etc")
    apply(kubectl, ns, pod_yaml("p", [{"name": "h", "hostPath": {"path": str(tmp_path / "vol")}}],
                                [{"name": "h", "mountPath": "/tinykube-vol/x",
                                  "subPath": "out"}]))
    prefix = 'Error: failed to prepare subPath for volumeMount "h" of container "c"'
    until(lambda: any(m.startswith(prefix) and "not within volume path" in m
                      for m in events(kubectl, ns, "Failed")), 30, "the subPath refusal")
    waiting = until(lambda: get(kubectl, ns, "pod", "p")["status"]["containerStatuses"][0][
        "state"].get("waiting"), 30, "a waiting container")
    assert waiting["reason"] == "CreateContainerConfigError"


def test_sub_path_expr(kubectl: Kubectl, ns: str) -> None:
    text = json.loads(pod_yaml("p", [{"name": "s", "emptyDir": {}}], [
        {"name": "s", "mountPath": "/tinykube-vol/mine", "subPathExpr": "$(POD_NAME)"}]))
    text["spec"]["containers"][0]["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    text["spec"]["containers"][0]["command"] = [
        "sh", "-c", "echo here > /tinykube-vol/mine/f; exec sleep 3600"]
    text["spec"]["containers"].append({
        "name": "all", "image": "busybox", "command": ["sleep", "3600"],
        "volumeMounts": [{"name": "s", "mountPath": "/tinykube-vol/all"}]})
    apply(kubectl, ns, json.dumps(text))
    running(kubectl, ns, "p")
    until(lambda: kubectl.run("exec", "-n", ns, "p", "-c", "all", "--", "cat",
                              "/tinykube-vol/all/p/f", check=False).stdout == "here\n", 30,
          "the file in the pod-named sub directory")


def test_secret_and_label_changes_reach_the_files(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, CONFIG)
    apply(kubectl, ns, pod_yaml("p", [
        {"name": "s", "secret": {"secretName": "sec"}},
        {"name": "d", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
        [{"name": "s", "mountPath": "/tinykube-vol/s"},
         {"name": "d", "mountPath": "/tinykube-vol/d"}]))
    running(kubectl, ns, "p")
    kubectl("patch", "-n", ns, "secret", "sec", "--type=merge",
            "-p", json.dumps({"data": {"password": b64("rotated")}}))
    kubectl("label", "-n", ns, "pod", "p", "tier=web")
    until(lambda: cat(kubectl, ns, "p", "/tinykube-vol/s/password") == "rotated", 30,
          "the rotated secret in the mounted file")
    until(lambda: cat(kubectl, ns, "p", "/tinykube-vol/d/labels") == 'app="vol"\ntier="web"',
          30, "the new label in the downward API file")


def test_host_path_without_type_is_made_like_containerd(kubectl: Kubectl, ns: str,
                                                        tmp_path: Path) -> None:
    """The seed's web.yaml mounts hostPath /mydir with no type: a missing path is made as a
    directory, as containerd does for a bind source (here below tmp_path, not at /)."""
    path = tmp_path / "mydir"
    apply(kubectl, ns, pod_yaml("p", [{"name": "www", "hostPath": {"path": str(path)}}],
                                [{"name": "www", "mountPath": "/usr/share/nginx/html"}]))
    running(kubectl, ns, "p")
    kubectl("exec", "-n", ns, "p", "--", "sh", "-c", "echo page > /usr/share/nginx/html/i")
    assert (path / "i").read_text() == "page\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="a memory emptyDir is a tmpfs only as root")
def test_volumes_go_with_the_pod(kubectl: Kubectl, ns: str, cluster: Cluster) -> None:
    apply(kubectl, ns, pod_yaml("p", [{"name": "m", "emptyDir": {"medium": "Memory"}},
                                      {"name": "e", "emptyDir": {}}],
                                [{"name": "m", "mountPath": "/tinykube-vol/m"},
                                 {"name": "e", "mountPath": "/tinykube-vol/e"}]))
    running(kubectl, ns, "p")
    uid = get(kubectl, ns, "pod", "p")["metadata"]["uid"]
    [pod_dir] = list(cluster.data_dir.glob(f"kubelet/*/pods/{uid}"))
    assert (pod_dir / "volumes" / "kubernetes.io~empty-dir" / "e").is_dir()
    assert uid in Path("/proc/self/mounts").read_text()  # the memory emptyDir's tmpfs
    kubectl("delete", "-n", ns, "pod", "p", "--wait=true", "--timeout=30s")
    until(lambda: not pod_dir.exists(), 10, "the pod's directory removed")
    assert uid not in Path("/proc/self/mounts").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="runAsUser needs a root node agent")
def test_fs_group_lets_another_user_read_and_write(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, CONFIG)
    manifest = json.loads(pod_yaml("p", [
        {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        {"name": "e", "emptyDir": {}}],
        [{"name": "s", "mountPath": "/tinykube-vol/s"},
         {"name": "e", "mountPath": "/tinykube-vol/e"}]))
    manifest["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000,
                                           "fsGroup": 2000}
    apply(kubectl, ns, json.dumps(manifest))
    running(kubectl, ns, "p")
    assert cat(kubectl, ns, "p", "/tinykube-vol/s/password") == "secret"
    out = kubectl("exec", "-n", ns, "p", "--", "sh", "-c",
                  "id -u; echo x > /tinykube-vol/e/f && stat -c %g /tinykube-vol/e/f")
    assert out.split() == ["1000", "2000"]


@pytest.mark.skipif(os.geteuid() != 0, reason="a memory emptyDir is a tmpfs only as root")
def test_a_killed_run_leaves_no_tmpfs_behind(tmp_path: Path) -> None:
    """A node agent killed with SIGKILL (its components process: `tinykube up` itself stops it
    gracefully when killed) cannot unmount its pods' tmpfs volumes: the next run on the same
    data directory does, and mounts the pod's afresh."""
    data = tmp_path / "data"
    first = start_cluster(data, "--default-runtime", "process")
    try:
        kctl = Kubectl(KUBECTL, first.kubeconfig, tmp_path / "cache")
        apply(kctl, "default", pod_yaml("p", [{"name": "m", "emptyDir": {"medium": "Memory"}}],
                                        [{"name": "m", "mountPath": "/tinykube-vol/m"}]))
        running(kctl, "default", "p")
        uid = get(kctl, "default", "pod", "p")["metadata"]["uid"]
        assert Path("/proc/self/mounts").read_text().count(uid) == 1
        os.kill(components_of(first.process.pid), signal.SIGKILL)
    finally:
        first.stop()
    assert Path("/proc/self/mounts").read_text().count(uid) == 1  # left behind
    second = start_cluster(data, "--default-runtime", "process")
    try:
        kctl = Kubectl(KUBECTL, second.kubeconfig, tmp_path / "cache")
        until(lambda: kctl.run("exec", "p", "--", "true", check=False).returncode == 0, 30,
              "the pod running again")
        assert Path("/proc/self/mounts").read_text().count(uid) == 1
        kctl("delete", "pod", "p", "--wait=true", "--timeout=30s")
        assert uid not in Path("/proc/self/mounts").read_text()
    finally:
        second.stop()


def components_of(parent: int) -> int:
    """The pid of `tinykube up`'s components process."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"tinykube.components" in cmdline:
            return int(entry.name)
    raise AssertionError(f"no components process under {parent}")


def test_the_kubelet_style_service_account_volume(kubectl: Kubectl, ns: str) -> None:
    """The projected volume a real API server adds to every pod (kube-api-access-*), written
    out in a manifest as `kubectl get -o yaml` from a real cluster shows it."""
    volume = {"name": "kube-api-access-x", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                              "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
    until(lambda: kubectl.run("get", "-n", ns, "configmap", "kube-root-ca.crt",
                              check=False).returncode == 0, 30, "kube-root-ca.crt")
    apply(kubectl, ns, pod_yaml("p", [volume], [
        {"name": "kube-api-access-x", "mountPath": "/tinykube-vol/sa", "readOnly": True}]))
    running(kubectl, ns, "p")
    ca = get(kubectl, ns, "configmap", "kube-root-ca.crt")["data"]["ca.crt"]
    assert cat(kubectl, ns, "p", "/tinykube-vol/sa/ca.crt") == ca
    assert cat(kubectl, ns, "p", "/tinykube-vol/sa/namespace") == ns
    mode = kubectl("exec", "-n", ns, "p", "--", "stat", "-L", "-c", "%a",
                   "/tinykube-vol/sa/token")
    assert mode.strip() == "644"


def test_a_volume_inside_another(kubectl: Kubectl, ns: str) -> None:
    """A configMap mounted inside an emptyDir (listed first): the emptyDir is bound first and
    the mount point made in it, so what the container writes at its top level is shared."""
    apply(kubectl, ns, CONFIG)
    other = {"name": "o", "image": "busybox", "command": ["sleep", "3600"],
             "volumeMounts": [{"name": "e", "mountPath": "/tinykube-vol/q"}]}
    apply(kubectl, ns, pod_yaml("p", [{"name": "e", "emptyDir": {}},
                                      {"name": "cfg", "configMap": {"name": "cfg"}}],
                                [{"name": "cfg", "mountPath": "/tinykube-vol/p/cfg"},
                                 {"name": "e", "mountPath": "/tinykube-vol/p"}], extra=[other]))
    running(kubectl, ns, "p")
    assert cat(kubectl, ns, "p", "/tinykube-vol/p/cfg/app.conf") == "port=8080\n"
    kubectl("exec", "-n", ns, "p", "-c", "c", "--", "sh", "-c", "echo top > /tinykube-vol/p/t")
    assert cat(kubectl, ns, "p", "/tinykube-vol/q/t", container="o") == "top\n"
    listing = kubectl("exec", "-n", ns, "p", "-c", "o", "--", "ls", "/tinykube-vol/q")
    assert listing.split() == ["cfg", "t"]
