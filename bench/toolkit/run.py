"""The pytest plugin's costs (`python bench/toolkit/run.py [--rounds N]`): a cluster's start to
ready and teardown as `tinykube_cluster` does them, beside a plain `tinykube up` start to ready
(the first line it prints with `export`), and a namespace with 10 pods from create to deleted
as `k8s_namespace` does it (a Deployment of 10 virtual pods, all Ready, then the namespace
deleted and waited for). Prints one line per figure: the median over the rounds."""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tinykube import background
from tinykube.pytest_plugin import ClusterConfig, TinykubeCluster, delete_namespace
from tinykube.testing import free_port

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ten}
spec:
  replicas: 10
  selector: {matchLabels: {app: ten}}
  template:
    metadata: {labels: {app: ten}}
    spec: {containers: [{name: c, image: nginx}]}
"""


def start(root: Path, args: list[str]) -> tuple[TinykubeCluster, float]:
    t0 = time.monotonic()
    started = background.start(root / "data", args, timeout=180)
    ready = time.monotonic() - t0
    return TinykubeCluster(started.data_dir, started.kubeconfig, started.api_url,
                           started.dns_address, started.pid), ready


def namespace_round(cluster: TinykubeCluster) -> float:
    name = f"bench-{time.monotonic_ns()}"
    t0 = time.monotonic()
    cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    cluster.apply(DEPLOYMENT, namespace=name)
    cluster.wait_for("deployment/ten", "condition=Available", namespace=name, timeout=120)
    delete_namespace(cluster, name)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    rounds = parser.parse_args().rounds
    figures: dict[str, list[float]] = {"tinykube up ready": [], "fixture start to ready": [],
                                       "fixture teardown": [], "namespace, 10 pods": []}
    for _ in range(rounds):
        root = Path(tempfile.mkdtemp(prefix="tinykube-bench-"))
        try:
            plain, ready = start(root / "plain", ["--listen", "127.0.0.1:0", "--no-proxy",
                                                  "--dns-listen", f"127.0.0.1:{free_port()}"])
            figures["tinykube up ready"].append(ready)
            background.stop_pid(plain.pid)
            cluster, ready = start(root / "fixture", ClusterConfig().up_args(free_port()))
            figures["fixture start to ready"].append(ready)
            figures["namespace, 10 pods"].append(namespace_round(cluster))
            t0 = time.monotonic()
            background.stop_pid(cluster.pid)
            shutil.rmtree(root / "fixture")
            figures["fixture teardown"].append(time.monotonic() - t0)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    for what, values in figures.items():
        print(f"{what:26s} {statistics.median(values):6.2f} s (median of {len(values)})")


if __name__ == "__main__":
    main()
