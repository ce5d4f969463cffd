"""The atomic writer, hostPath type checks, subPath and the containers' mount lists."""

from __future__ import annotations

import datetime
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinykube.kubelet import atomicwriter, hostpath, volumes
from tinykube.kubelet.mounts import Mount
from tinykube.kubelet.payloads import File, VolumeError


def clock(*moments: int) -> atomicwriter.Now:
    ticks: Iterator[int] = iter(moments)
    return lambda: datetime.datetime(2026, 12, 1, 23, 10, next(ticks), tzinfo=datetime.UTC)


def test_atomic_writer_layout_and_modes(tmp_path: Path) -> None:
    assert atomicwriter.write(tmp_path, {"a": File(b"1", 0o600), "d/b": File(b"2")},
                              now=clock(5))
    data = os.readlink(tmp_path / "..data")
    assert data.startswith("..2026_12_01_23_10_05.")
    assert os.readlink(tmp_path / "a") == "..data/a"
    assert os.readlink(tmp_path / "d") == "..data/d"
    assert (tmp_path / "d" / "b").read_bytes() == b"2"
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "d" / "b").stat().st_mode) == 0o644


def test_atomic_writer_update_swaps_and_cleans(tmp_path: Path) -> None:
    atomicwriter.write(tmp_path, {"a": File(b"1"), "gone": File(b"x")}, now=clock(5))
    first = os.readlink(tmp_path / "..data")
    with open(tmp_path / "a", "rb") as held:  # a reader of the old version keeps it
        assert not atomicwriter.write(tmp_path, {"a": File(b"1"), "gone": File(b"x")},
                                      now=clock(6)), "an equal payload writes nothing"
        assert atomicwriter.write(tmp_path, {"a": File(b"2")}, now=clock(7))
        assert os.readlink(tmp_path / "..data") != first
        assert not (tmp_path / first).exists()
        assert not (tmp_path / "gone").is_symlink()
        assert (tmp_path / "a").read_bytes() == b"2"
        assert held.read() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("..2026")) == \
        ["..data", "a"]


def test_atomic_writer_mode_change_is_an_update(tmp_path: Path) -> None:
    atomicwriter.write(tmp_path, {"a": File(b"1", 0o644)}, now=clock(1))
    assert atomicwriter.write(tmp_path, {"a": File(b"1", 0o400)}, now=clock(2))
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o400


@pytest.mark.parametrize(("path", "message"), [
    pytest.param("/etc/x", "must be relative", id="absolute"),
    pytest.param("a/../b", "must not contain '..'", id="backstep"),
    pytest.param("..hidden", "must not start with '..'", id="dot-dot-prefix"),
])
def test_atomic_writer_refuses_paths(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        atomicwriter.write(tmp_path, {path: File(b"")})


def _make(path: Path, what: str) -> None:
    if what == "file":
        path.write_text("")
    elif what == "dir":
        path.mkdir()
    elif what == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()


@pytest.mark.parametrize(("kind", "what", "error"), [
    pytest.param(None, "none", None, id="no-type-no-check"),
    pytest.param("Directory", "dir", None, id="directory"),
    pytest.param("Directory", "file", "is not a directory", id="directory-on-file"),
    pytest.param("Directory", "none", "is not a directory", id="directory-missing"),
    pytest.param("DirectoryOrCreate", "none", None, id="directory-created"),
    pytest.param("DirectoryOrCreate", "file", "is not a directory", id="or-create-on-file"),
    pytest.param("File", "file", None, id="file"),
    pytest.param("File", "dir", "is not a file", id="file-on-dir"),
    pytest.param("FileOrCreate", "none", None, id="file-created"),
    pytest.param("FileOrCreate", "dir", "is not a file", id="file-or-create-on-dir"),
    pytest.param("Socket", "socket", None, id="socket"),
    pytest.param("Socket", "file", "is not a socket file", id="socket-on-file"),
    pytest.param("CharDevice", "file", "is not a character device", id="char-on-file"),
    pytest.param("BlockDevice", "file", "is not a block device", id="block-on-file"),
])
def test_host_path_check(tmp_path: Path, kind: str | None, what: str,
                         error: str | None) -> None:
    path = tmp_path / "p"
    _make(path, what)
    if error is None:
        hostpath.check(path, kind)
        if kind == "DirectoryOrCreate":
            assert path.is_dir() and stat.S_IMODE(path.stat().st_mode) == 0o755
        if kind == "FileOrCreate":
            assert path.is_file()
        return
    with pytest.raises(VolumeError) as caught:
        hostpath.check(path, kind)
    assert str(caught.value) == f"hostPath type check failed: {path} {error}"


def test_host_path_char_device() -> None:
    hostpath.check(Path("/dev/null"), "CharDevice")


@pytest.mark.parametrize(("mount", "env", "expected"), [
    pytest.param({"subPath": "a/b"}, {}, "a/b", id="sub-path"),
    pytest.param({"subPathExpr": "logs/$(POD_NAME)"}, {"POD_NAME": "web-0"}, "logs/web-0",
                 id="sub-path-expr"),
    pytest.param({"subPathExpr": "$(UNSET)"}, {}, "$(UNSET)", id="expr-unknown-kept"),
])
def test_sub_path(mount: dict[str, Any], env: dict[str, str], expected: str) -> None:
    assert volumes.sub_path(mount, env) == expected


@pytest.mark.parametrize(("mount", "message"), [
    pytest.param({"subPathExpr": "/$(X)"}, "must not be an absolute path", id="absolute"),
    pytest.param({"subPathExpr": "$(X)"}, "must not contain '..'", id="backstep"),
])
def test_sub_path_refused(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        volumes.sub_path(mount, {"X": ".."})


def test_resolve_sub_path(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir(mode=0o750)
    os.chmod(volume, 0o750)
    made = volumes.resolve_sub_path(volume, "x/y")
    assert made == volume / "x" / "y" and made.is_dir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o750
    (volume / "inside").symlink_to("x")
    assert volumes.resolve_sub_path(volume, "inside") == volume / "x"
    (volume / "out").symlink_to(tmp_path)
    with pytest.raises(ValueError) as caught:
        volumes.resolve_sub_path(volume, "out")
    assert str(caught.value) == f'subpath "{tmp_path}" not within volume path "{volume}"'


def test_mounts(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "app.conf").write_text("x")
    (tmp_path / "data").mkdir()
    pod = {"spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c"}},
                                {"name": "data", "persistentVolumeClaim": {
                                    "claimName": "d", "readOnly": True}},
                                {"name": "scratch", "emptyDir": {}}]}}
    container = {"name": "c", "volumeMounts": [
        {"name": "cfg", "mountPath": "/etc/app"},
        {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
        {"name": "data", "mountPath": "/data"},
        {"name": "scratch", "mountPath": "/scratch", "readOnly": True},
        {"name": "scratch", "mountPath": "/rw"}]}
    paths = {"cfg": tmp_path / "cfg", "data": tmp_path / "data", "scratch": tmp_path / "data"}
    assert volumes.mounts(pod, container, paths, {}) == [
        Mount(tmp_path / "data", "/data", True),
        Mount(tmp_path / "data", "/scratch", True),
        Mount(tmp_path / "data", "/rw", False),
        Mount(tmp_path / "cfg", "/etc/app", True),
        Mount(tmp_path / "cfg" / "app.conf", "/etc/app.conf", True)]  # through ..data


def test_mounts_refuse_an_escaping_sub_path(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "out").symlink_to("/etc")
    pod = {"spec": {"volumes": [{"name": "h", "hostPath": {"path": str(tmp_path / "v")}}]}}
    container = {"name": "c", "volumeMounts": [{"name": "h", "mountPath": "/x",
                                                "subPath": "out"}]}
    with pytest.raises(volumes.MountError) as caught:
        volumes.mounts(pod, container, {"h": tmp_path / "v"}, {})
    assert str(caught.value) == (
        'failed to prepare subPath for volumeMount "h" of container "c": '
        f'subpath "/etc" not within volume path "{tmp_path / "v"}"')


def test_references() -> None:
    pod = {"spec": {"volumes": [
        {"name": "a", "configMap": {"name": "cm"}},
        {"name": "b", "secret": {"secretName": "s"}},
        {"name": "c", "persistentVolumeClaim": {"claimName": "pvc"}},
        {"name": "d", "projected": {"sources": [{"configMap": {"name": "cm2"}},
                                                {"secret": {"name": "s2"}}]}}]}}
    assert volumes.references(pod) == {
        ("configmaps", "cm"), ("secrets", "s"), ("persistentvolumeclaims", "pvc"),
        ("configmaps", "cm2"), ("secrets", "s2")}


def manager(tmp_path: Path, **objects: Any) -> volumes.VolumeManager:
    def lookup(kind: str) -> Any:
        return lambda namespace, name: objects.get(kind, {}).get((namespace, name))
    return volumes.VolumeManager(tmp_path, volumes.Objects(
        configmaps=lookup("configmaps"), secrets=lookup("secrets"), claims=lookup("claims"),
        persistent_volumes=lambda name: objects.get("pvs", {}).get(name),
        token=lambda _pod, _src: "tok"), can_mount=False)


def claim_pod(*volume: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"volumes": list(volume)}}


@pytest.mark.parametrize(("claims", "pvs", "message"), [
    pytest.param({}, {}, 'Unable to attach or mount volumes: unmounted volumes=[d], unattached '
                 'volumes=[d]: error processing PVC ns/c: failed to fetch PVC from API server: '
                 'persistentvolumeclaims "c" not found', id="claim-missing"),
    pytest.param({("ns", "c"): {"status": {"phase": "Pending"}, "spec": {}}}, {},
                 'Unable to attach or mount volumes: unmounted volumes=[d], unattached '
                 'volumes=[d]: error processing PVC ns/c: PVC ns/c has non-bound phase '
                 '("Pending") or empty pvc.Spec.VolumeName ("")', id="claim-unbound"),
    pytest.param({("ns", "c"): {"status": {"phase": "Bound"}, "spec": {"volumeName": "pv"}}},
                 {}, 'Unable to attach or mount volumes: unmounted volumes=[d], unattached '
                 'volumes=[d]: error processing PVC ns/c: failed to fetch PV pv from API '
                 'server: persistentvolumes "pv" not found', id="volume-missing"),
])
def test_claim_errors(tmp_path: Path, claims: dict[Any, Any], pvs: dict[str, Any],
                      message: str) -> None:
    pod = claim_pod({"name": "d", "persistentVolumeClaim": {"claimName": "c"}})
    with pytest.raises(volumes.SetupError) as caught:
        manager(tmp_path, claims=claims, pvs=pvs).setup(pod)
    assert str(caught.value) == message


@pytest.mark.parametrize("source", ["hostPath", "local"])
def test_claim_resolves_to_the_volume_path(tmp_path: Path, source: str) -> None:
    pv_dir = tmp_path / "pv"
    pv_dir.mkdir()
    pod = claim_pod({"name": "d", "persistentVolumeClaim": {"claimName": "c"}})
    found = manager(tmp_path / "root", claims={("ns", "c"): {
        "status": {"phase": "Bound"}, "spec": {"volumeName": "pv"}}},
        pvs={"pv": {"spec": {source: {"path": str(pv_dir)}}}}).setup(pod)
    assert found == {"d": pv_dir}


def test_setup_and_remove(tmp_path: Path) -> None:
    pod = claim_pod({"name": "e", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "cm"}},
                    {"name": "mem", "emptyDir": {"medium": "Memory"}})
    vm = manager(tmp_path, configmaps={("ns", "cm"): {"data": {"k": "v"}}})
    paths = vm.setup(pod)
    assert vm.setup(pod) == paths, "idempotent"
    assert paths["mem"].is_dir()
    assert vm.warnings["u1"] == ['emptyDir "mem" has medium Memory, but only a node agent '
                                 "running as root may mount a tmpfs: it is a directory on disk"]
    assert paths["e"] == tmp_path / "u1" / "volumes" / "kubernetes.io~empty-dir" / "e"
    assert stat.S_IMODE(paths["e"].stat().st_mode) == 0o777
    assert (paths["cfg"] / "k").read_text() == "v"
    vm.remove("u1")
    assert not (tmp_path / "u1" / "volumes").exists()
    assert "u1" not in vm.warnings


@pytest.mark.parametrize(("kind", "made"), [
    pytest.param(None, True, id="no-type-made-as-containerd-does"),
    pytest.param("Directory", False, id="directory-checked-not-made"),
])
def test_host_path_source_missing(tmp_path: Path, kind: str | None, made: bool) -> None:
    path = tmp_path / "host" / "dir"
    pod = claim_pod({"name": "h", "hostPath": {"path": str(path), **({"type": kind} if kind
                                                                        else {})}})
    if made:
        assert manager(tmp_path / "root").setup(pod) == {"h": path}
        assert path.is_dir()
        return
    with pytest.raises(volumes.SetupError):
        manager(tmp_path / "root").setup(pod)
    assert not path.exists()


def test_fs_group_owns_the_files(tmp_path: Path) -> None:
    group = os.getgid() if os.geteuid() != 0 else 4321
    pod = claim_pod({"name": "e", "emptyDir": {}},
                    {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}})
    pod["spec"]["securityContext"] = {"fsGroup": group}
    vm = manager(tmp_path, secrets={("ns", "sec"): {"data": {"k": "dg=="}}})
    paths = vm.setup(pod)
    assert paths["e"].stat().st_gid == group
    assert stat.S_IMODE(paths["e"].stat().st_mode) == 0o2777
    secret = paths["s"] / "k"
    assert secret.stat().st_gid == group
    assert stat.S_IMODE(secret.stat().st_mode) == 0o440  # group-readable, as the kubelet's
    version = os.readlink(paths["s"] / "..data")
    vm.setup(pod)
    assert os.readlink(paths["s"] / "..data") == version, "the same files are not rewritten"


def test_clear_unmounts_only_below_the_agent_directory(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pods"
    table = tmp_path / "mounts"
    table.write_text(
        "proc /proc proc rw 0 0\n"
        f"tmpfs {root}/u1/volumes/kubernetes.io~empty-dir/m tmpfs rw 0 0\n"
        f"tmpfs {root}/u2/volumes/kubernetes.io~empty-dir/with\\040space tmpfs rw 0 0\n"
        f"tmpfs {tmp_path}/podsother tmpfs rw 0 0\n")
    unmounted: list[Path] = []
    monkeypatch.setattr(volumes, "_umount", unmounted.append)
    assert manager(root).clear(table) == [
        f"{root}/u2/volumes/kubernetes.io~empty-dir/with space",
        f"{root}/u1/volumes/kubernetes.io~empty-dir/m"]
    assert len(unmounted) == 2


def test_mounts_put_parents_first(tmp_path: Path) -> None:
    pod = {"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]}}
    container = {"name": "c", "volumeMounts": [
        {"name": "a", "mountPath": "/data/inner/deep"}, {"name": "b", "mountPath": "/data"},
        {"name": "a", "mountPath": "/other/x"}]}
    found = volumes.mounts(pod, container, {"a": tmp_path, "b": tmp_path}, {})
    assert [m.target for m in found] == ["/data", "/other/x", "/data/inner/deep"]
