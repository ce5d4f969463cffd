"""The files a pod sees as /etc/hosts and /etc/resolv.conf, and the helper's command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinykube.kubelet import sandbox
from tinykube.kubelet.mounts import Mount


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-0", "namespace": "team"}, "spec": spec}


HEADER = sandbox._HOSTS_HEADER


@pytest.mark.parametrize(("spec", "own", "aliases"), [
    pytest.param({}, "127.244.0.9\tweb-0\n", "", id="name-only"),
    pytest.param({"hostname": "web-0", "subdomain": "nginx"},
                 "127.244.0.9\tweb-0.nginx.team.svc.cluster.local\tweb-0\n", "",
                 id="fqdn-with-subdomain"),
    pytest.param({"hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo", "bar"]}]},
                 "127.244.0.9\tweb-0\n",
                 "\n# Entries added by HostAliases.\n10.1.2.3\tfoo\tbar\n", id="host-aliases"),
])
def test_hosts_file(spec: dict[str, Any], own: str, aliases: str) -> None:
    assert sandbox.hosts_file(pod(**spec), "127.244.0.9") == HEADER + own + aliases


CLUSTER_FIRST = ("search team.svc.cluster.local svc.cluster.local cluster.local\n"
                 "nameserver 127.96.0.10\noptions ndots:5\n")


@pytest.mark.parametrize(("spec", "nameserver", "expected"), [
    pytest.param({}, "127.96.0.10", CLUSTER_FIRST, id="cluster-first-default"),
    pytest.param({"dnsPolicy": "ClusterFirst"}, None, None, id="no-port-53-dns-keeps-host"),
    pytest.param({"dnsPolicy": "Default"}, "127.96.0.10", None, id="default-keeps-host"),
    pytest.param({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, "127.96.0.10", None,
                 id="host-network-cluster-first-is-default"),
    pytest.param({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}, "127.96.0.10",
                 CLUSTER_FIRST, id="cluster-first-with-host-net"),
    pytest.param({"dnsConfig": {"searches": ["corp.example"], "nameservers": ["1.1.1.1"],
                                "options": [{"name": "ndots", "value": "2"},
                                            {"name": "edns0"}]}},
                 "127.96.0.10",
                 "search team.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                 "nameserver 127.96.0.10\nnameserver 1.1.1.1\noptions ndots:2 edns0\n",
                 id="dns-config-merged"),
    pytest.param({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["9.9.9.9"]}},
                 "127.96.0.10", "nameserver 9.9.9.9\n", id="policy-none"),
])
def test_resolv_conf(spec: dict[str, Any], nameserver: str | None,
                     expected: str | None) -> None:
    assert sandbox.resolv_conf(pod(**spec), nameserver) == expected


@pytest.mark.parametrize(("name", "spec", "expected"), [
    pytest.param("web-0", {}, "web-0", id="pod-name"),
    pytest.param("web-0", {"hostname": "db"}, "db", id="spec-hostname"),
    pytest.param("x" * 70, {}, "x" * 63, id="truncated-to-63"),
])
def test_pod_hostname(name: str, spec: dict[str, Any], expected: str) -> None:
    assert sandbox.pod_hostname({"metadata": {"name": name}, "spec": spec}) == expected


@pytest.mark.parametrize(("mode", "resolv", "expected_tail"), [
    pytest.param("none", None, None, id="none-runs-command-as-is"),
    pytest.param("root", "nameserver 1.2.3.4\n", ["--resolv"], id="root-with-resolv"),
    pytest.param("userns", None, [], id="userns-without-resolv"),
])
def test_wrap(tmp_path: Path, mode: str, resolv: str | None,
              expected_tail: list[str] | None) -> None:
    box = sandbox.Sandbox(mode, tmp_path, hostname="web-0", hosts="h\n", resolv=resolv)
    wrapped = box.wrap(["echo", "hi"])
    assert (tmp_path / "hosts").read_text() == "h\n"
    if expected_tail is None:
        assert wrapped == ["echo", "hi"]
        return
    assert wrapped[:3] == [sys.executable, "-I", sandbox.__file__]
    assert wrapped[-3:] == ["--", "echo", "hi"]
    assert ("--resolv" in wrapped) == bool(expected_tail)
    assert wrapped[wrapped.index("--hostname") + 1] == "web-0"


@pytest.mark.skipif(sandbox.detect_mode() == "none", reason="needs root or user namespaces")
def test_the_helper_gives_the_pod_its_names_and_service_account(tmp_path: Path) -> None:
    """The real helper: host name, /etc/hosts and /etc/resolv.conf, and the service account
    files on a private /run, without touching the host's own files."""
    host_had_secrets = Path("/run/secrets").exists()
    box = sandbox.Sandbox(sandbox.detect_mode(), tmp_path, hostname="web-0",
                          hosts="127.244.0.5\tweb-0\n", resolv="nameserver 127.96.0.10\n",
                          account={"token": "t0ken", "ca.crt": "CA", "namespace": "demo"})
    script = ("hostname; cat /etc/hosts /etc/resolv.conf; "
              "cd /var/run/secrets/kubernetes.io/serviceaccount && cat token namespace; "
              "echo; ls /run")
    result = subprocess.run(box.wrap(["sh", "-c", script]), capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        "web-0", "127.244.0.5\tweb-0", "nameserver 127.96.0.10", "t0kendemo", "secrets", ""]
    assert Path("/run/secrets").exists() == host_had_secrets
    assert Path("/etc/hosts").read_text() != "127.244.0.5\tweb-0\n"


@pytest.mark.parametrize("mode", [
    pytest.param("root", marks=pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
                 id="root"),
    pytest.param("userns", id="userns"),
])
def test_the_helper_binds_volumes_at_paths_the_host_lacks(tmp_path: Path, mode: str) -> None:
    """Mount points under a missing top-level directory (the root is shadowed and pivoted
    into), below an existing directory (/usr/share shadowed), over an existing file, and
    read-only; the host's tree is unchanged afterwards."""
    if mode == "userns" and subprocess.run(
            [*sandbox.HELPER, "--mode", "userns", "--hostname", "probe", "--", "true"],
            capture_output=True, timeout=10, check=False).returncode != 0:
        pytest.skip("this kernel allows no unprivileged user namespace")
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "f").write_text("content\n")
    top = f"/tinykube-test-{os.getpid()}"
    before = set(os.listdir("/")), set(os.listdir("/usr/share"))
    box = sandbox.Sandbox(mode, tmp_path / "pod", hostname="p", hosts="h\n", resolv=None,
                          account={"token": "t", "ca.crt": "", "namespace": "n"})
    mounts = [Mount(volume, f"{top}/a/b", read_only=True),
              Mount(volume / "f", "/usr/share/tinykube-test/f"),
              Mount(volume, "/var/run/secrets/extra")]
    script = (f"cat {top}/a/b/f /usr/share/tinykube-test/f /var/run/secrets/extra/f; "
              f"cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo; "
              f"echo x > {top}/a/b/g || echo read-only; ls /usr/share | wc -l; ls -a / | "
              "grep -c old-root")
    result = subprocess.run(box.wrap(["sh", "-c", script], mounts=mounts), capture_output=True,
                            text=True, timeout=30, check=False, cwd=tmp_path)
    lines = result.stdout.split("\n")
    assert lines[:5] == ["content", "content", "content", "t", "read-only"], result.stderr
    assert int(lines[5]) == len(before[1]) + 1
    assert lines[6] == "0"
    assert (set(os.listdir("/")), set(os.listdir("/usr/share"))) == before
    assert not (volume / "g").exists()
