"""`tinykube up --detach --name NAME`: two clusters side by side, each with its own data dir,
ports and kubeconfig names, driven by `status`, `logs`, `kubeconfig --merge`, `down` and
`reset`. HOME and XDG_DATA_HOME are the test's own, so ~/.kube/config is too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinykube import background


def tinykube(env: dict[str, str], *args: str, input: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinykube", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=180)


def running_pid(data_dir: Path) -> int | None:
    lock = data_dir / "up.lock"
    if not lock.exists():
        return None
    pid = json.loads(lock.read_text() or "{}").get("pid")
    return pid if isinstance(pid, int) and background.alive(pid) else None


@pytest.mark.slow
@pytest.mark.kubectl
def test_two_detached_clusters_side_by_side(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    env.pop("KUBECONFIG", None)
    dirs = {n: tmp_path / "share" / f"tinykube-{n}" for n in "ab"}
    try:
        for name in "ab":
            up = tinykube(env, "up", "--detach", "--name", name)
            assert up.returncode == 0, up.stdout + up.stderr
            assert f"export KUBECONFIG={dirs[name] / 'kubeconfig'}" in up.stdout
        again = tinykube(env, "up", "--detach", "--name", "a")
        assert again.returncode != 0 and "is in use by another tinykube" in again.stderr

        urls = set()
        for name in "ab":
            status = tinykube(env, "status", "--name", name)
            assert status.returncode == 0, status.stdout + status.stderr
            assert f"tinykube-{name}: running" in status.stdout
            assert "objects:" in status.stdout and "namespaces" in status.stdout
            urls.add(next(line.split()[-1] for line in status.stdout.splitlines()
                          if "API server:" in line))
            logs = tinykube(env, "logs", "--name", name)
            assert "tinykube API server ready at" in logs.stdout
            merged = tinykube(env, "kubeconfig", "--name", name, "--merge")
            assert merged.returncode == 0, merged.stderr
        assert len(urls) == 2  # ports picked free

        kubeconfig = tmp_path / ".kube" / "config"
        contexts = subprocess.run(["kubectl", "config", "get-contexts", "-o", "name"],
                                  env={**env, "KUBECONFIG": str(kubeconfig)},
                                  capture_output=True, text=True, check=True).stdout.split()
        # each cluster's token context and its client-certificate admin context (kubeadm's)
        assert sorted(contexts) == ["kubernetes-admin@tinykube-a", "kubernetes-admin@tinykube-b",
                                    "tinykube-a", "tinykube-b"]
        if shutil.which("kubectx"):  # kubectx (Debian's) lists both, and switches between them
            listed = subprocess.run(["kubectx"], env={**env, "KUBECONFIG": str(kubeconfig)},
                                    capture_output=True, text=True, check=True).stdout.split()
            assert sorted(listed) == sorted(contexts)
            for name in "ba":
                subprocess.run(["kubectx", f"tinykube-{name}"], check=True, capture_output=True,
                               env={**env, "KUBECONFIG": str(kubeconfig)})
                current = subprocess.run(["kubectx", "-c"], capture_output=True, text=True,
                                         env={**env, "KUBECONFIG": str(kubeconfig)}).stdout
                assert current.strip() == f"tinykube-{name}"
        for name in "ab":
            nodes = subprocess.run(["kubectl", "--context", f"tinykube-{name}", "get", "ns",
                                    "default", "-o", "name"],
                                   env={**env, "KUBECONFIG": str(kubeconfig)},
                                   capture_output=True, text=True)
            assert nodes.stdout.strip() == "namespace/default", nodes.stderr

        down = tinykube(env, "down", "--name", "a")
        assert "stopped tinykube-a" in down.stdout
        assert running_pid(dirs["a"]) is None and running_pid(dirs["b"]) is not None
        followed = tinykube(env, "logs", "-f", "--name", "a")  # returns: a is not running
        assert followed.returncode == 0 and "tinykube stopped" in followed.stdout
        only_dns = tinykube(env, "logs", "--name", "a", "dns")
        assert only_dns.returncode == 0 and "ready at" not in only_dns.stdout
        stopped = tinykube(env, "status", "--name", "a")
        assert stopped.returncode == 3 and "tinykube-a: not running" in stopped.stdout
        assert (dirs["a"] / "state.db").exists() or any(dirs["a"].iterdir())  # data kept

        refused = tinykube(env, "reset", "--name", "b", input="n\n")
        assert refused.returncode != 0 and running_pid(dirs["b"]) is not None
        for name in "ab":
            reset = tinykube(env, "reset", "--name", name, "--yes")
            assert reset.returncode == 0, reset.stderr
            assert not dirs[name].exists()
    finally:
        for directory in dirs.values():
            if (pid := running_pid(directory)) is not None:
                background.stop_pid(pid)
