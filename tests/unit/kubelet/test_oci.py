"""The OCI bundle config of a pod's container (kubelet/oci.py), as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tinykube.kubelet import oci
from tinykube.kubelet.mounts import Mount

IMAGE = {"Entrypoint": ["/bin/httpd"], "Cmd": ["-f", "-p", "8080"], "Env": ["PATH=/bin"],
         "WorkingDir": "/www", "User": ""}
POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {}}


@pytest.mark.parametrize(("container", "expected"), [
    pytest.param({}, ["/bin/httpd", "-f", "-p", "8080"], id="entrypoint-and-cmd"),
    pytest.param({"args": ["-p", "90"]}, ["/bin/httpd", "-p", "90"], id="args-replace-cmd"),
    pytest.param({"command": ["sh"]}, ["sh"], id="command-drops-cmd"),
    pytest.param({"command": ["sh", "-c"], "args": ["echo $(X)"]}, ["sh", "-c", "echo 1"],
                 id="command-and-args-expanded"),
])
def test_command_rules(container: dict[str, Any], expected: list[str]) -> None:
    assert oci.command(container, IMAGE, {"X": "1"}) == expected


def test_no_command_at_all() -> None:
    with pytest.raises(oci.ConfigError, match="no command specified"):
        oci.command({}, {}, {})


def test_image_env_keeps_the_images_path_and_adds_a_default() -> None:
    assert oci.image_env(IMAGE) == {"PATH": "/bin"}
    assert oci.image_env({"Env": ["A=b=c"]}) == {"A": "b=c", "PATH": oci.DEFAULT_PATH}


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:101:102::/:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    return tmp_path


@pytest.mark.parametrize(("image_user", "context", "expected"), [
    pytest.param("", {}, {"uid": 0, "gid": 0}, id="image-root"),
    pytest.param("web", {}, {"uid": 101, "gid": 102}, id="image-name"),
    pytest.param("web:staff", {}, {"uid": 101, "gid": 50}, id="image-name-and-group"),
    pytest.param("1000:7", {}, {"uid": 1000, "gid": 7}, id="image-numeric"),
    pytest.param("web", {"runAsUser": 5, "runAsGroup": 6}, {"uid": 5, "gid": 6},
                 id="securityContext-wins"),
    pytest.param("web", {"runAsNonRoot": True}, None, id="non-numeric-refused"),
    pytest.param("", {"runAsNonRoot": True}, None, id="root-refused"),
    pytest.param("", {"runAsNonRoot": True, "runAsUser": 7}, {"uid": 7, "gid": 0},
                 id="non-root-by-runAsUser"),
])
def test_user(rootfs: Path, image_user: str, context: dict[str, Any],
              expected: dict[str, int] | None) -> None:
    container = {"name": "c", "securityContext": context}
    if expected is None:
        with pytest.raises(oci.ConfigError, match="container has runAsNonRoot and image"):
            oci.user(POD, container, {"User": image_user}, rootfs)
    else:
        assert oci.user(POD, container, {"User": image_user}, rootfs) == expected


def test_root_refusal_is_the_kubelets_message(rootfs: Path) -> None:
    with pytest.raises(oci.ConfigError) as exc:
        oci.user(POD, {"name": "c", "securityContext": {"runAsNonRoot": True}}, {}, rootfs)
    assert str(exc.value) == ('container has runAsNonRoot and image will run as root (pod: '
                              '"p_ns(u1)", container: c)')


@pytest.mark.parametrize(("context", "root", "has", "lacks"), [
    pytest.param({}, True, {"CAP_CHOWN", "CAP_KILL"}, {"CAP_SYS_ADMIN"}, id="default"),
    pytest.param({"capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL"]}}, True,
                 {"CAP_NET_ADMIN"}, {"CAP_KILL"}, id="add-drop"),
    pytest.param({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}, True,
                 {"CAP_NET_BIND_SERVICE"}, {"CAP_CHOWN"}, id="drop-all"),
])
def test_capabilities(context: dict[str, Any], root: bool, has: set[str],
                      lacks: set[str]) -> None:
    caps = oci.capabilities({"securityContext": context}, privileged=False, root=root)
    assert has <= set(caps["bounding"]) and not lacks & set(caps["bounding"])
    assert caps["effective"] == caps["bounding"]


def test_a_non_root_user_gets_capabilities_only_in_the_bounding_set() -> None:
    caps = oci.capabilities({}, privileged=False, root=False)
    assert len(caps["bounding"]) == len(oci.DEFAULT_CAPABILITIES) and caps["effective"] == []


@pytest.mark.parametrize(("resources", "memory", "expected"), [
    pytest.param({}, None, {"pids": {"limit": oci.PIDS_LIMIT}}, id="none"),
    pytest.param({"limits": {"cpu": "500m"}, "requests": {"cpu": "250m"}}, 1 << 24,
                 {"pids": {"limit": oci.PIDS_LIMIT}, "memory": {"limit": 1 << 24},
                  "cpu": {"quota": 50000, "period": 100000, "shares": 256}}, id="cpu-memory"),
])
def test_resources(resources: dict[str, Any], memory: int | None,
                   expected: dict[str, Any]) -> None:
    assert oci.resources({"resources": resources}, memory) == expected


@pytest.mark.parametrize(("context", "nnp", "readonly", "seccomp"), [
    pytest.param({}, False, False, True, id="defaults"),
    pytest.param({"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}, True,
                 True, True, id="locked-down"),
    pytest.param({"privileged": True}, False, False, False, id="privileged"),
    pytest.param({"seccompProfile": {"type": "Unconfined"}}, False, False, False,
                 id="unconfined"),
])
def test_config(rootfs: Path, context: dict[str, Any], nnp: bool, readonly: bool,
                seccomp: bool) -> None:
    body = oci.config(POD, {"name": "c", "securityContext": context}, IMAGE, rootfs=rootfs,
                      env={"PATH": "/bin"}, argv=["sh"], hostname="p", netns="/run/netns/x",
                      mounts=[Mount(Path("/h"), "/etc/hosts", read_only=True)],
                      cgroups_path="/tk/u1/c", memory=None)
    assert body["process"]["noNewPrivileges"] is nnp
    assert body["root"] == {"path": str(rootfs), "readonly": readonly}
    assert ("seccomp" in body["linux"]) is seccomp
    assert body["process"]["cwd"] == "/www" and body["hostname"] == "p"
    assert {"type": "network", "path": "/run/netns/x"} in body["linux"]["namespaces"]
    assert body["linux"]["cgroupsPath"] == "/tk/u1/c"
    assert body["mounts"][-1] == {"destination": "/etc/hosts", "type": "bind", "source": "/h",
                                  "options": ["rbind", "rprivate", "ro"]}
