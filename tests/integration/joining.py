"""Helpers of the `tinykube node` join tests: a node process, and what kubectl says of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import Kubectl, until


def tinykube(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinykube", *args], capture_output=True,
                          text=True, timeout=60)


class Node:
    """A `tinykube node` process; `wait=False` returns at once (then call `wait_running`)."""

    def __init__(self, tmp_path: Path, name: str, *args: str, wait: bool = True) -> None:
        self.name = name
        self.log = tmp_path / f"{name}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tinykube", "node", "--name", name, "--data-dir",
                 str(tmp_path / name), "--no-proxy", *args],
                stdout=out, stderr=subprocess.STDOUT, text=True)
        if wait:
            self.wait_running()

    def wait_running(self) -> None:
        until(lambda: f"tinykube node {self.name} running" in self.log.read_text()
              or self.process.poll() is not None, 45, f"node {self.name} to start")
        assert self.process.poll() is None, self.log.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def ready(kctl: Kubectl, node: str) -> bool:
    got = kctl.run("get", "node", node, "-o", "json", check=False)
    if got.returncode != 0:
        return False
    conditions = json.loads(got.stdout)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def pod_on(node: str, name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "runtimeClassName": "virtual",
                 "containers": [{"name": "c", "image": "nginx"}]}})


def running_ip(kctl: Kubectl, pod: str) -> str | None:
    got = json.loads(kctl("get", "pod", pod, "-o", "json"))
    if got["status"].get("phase") != "Running":
        return None
    return str(got["status"].get("podIP") or "") or None


def pod_cidr(kctl: Kubectl, node: str) -> str:
    return str(json.loads(kctl("get", "node", node, "-o", "json"))["spec"]["podCIDR"])


def dig(port: int, name: str) -> list[str]:
    out = subprocess.run(["dig", "+short", "@127.0.0.1", "-p", str(port), name],
                         capture_output=True, text=True, timeout=10, check=False).stdout
    return sorted(out.split())
