"""The pytest plugin's costs (`python bench/toolkit/run.py [--rounds N]`): a cluster's start to
ready and teardown as `tinykube_cluster` does them, beside a plain `tinykube up` start to ready
(the first line it prints with `export`), and a namespace with 10 pods from create to deleted
as `k8s_namespace` does it (a Deployment of 10 virtual pods, all Ready, then the namespace
deleted and waited for). Cold start (issue 18): `tinykube up` ready and its first DNS answer (the
`kubernetes` Service's name, asked as soon as `up` is ready, retried until answered), beside the
interpreter's floor measured in the same run: a bare `python3 -c 'import aiohttp, uvloop'`.
The test clock (issue 16): on a `--test-clock` cluster, the wall time of `clock.advance(180)`
that restarts a process pod whose liveness probe fails (`periodSeconds: 60`, threshold 3), and
of an idle `advance(180)` with no pod, each with the number of due times it stepped through.
Before the first round tinykube's modules are compiled to their bytecode caches, as `pip
install` does (the floor's aiohttp and uvloop have theirs): with PYTHONDONTWRITEBYTECODE set and
no caches, every process of every start compiles some 300 modules again, 0.4 s each.
Prints one line per figure: the median over the rounds, with the targets (fixture < 1 s, up
ready and first answer <= 2x the floor, the liveness advance < 1 s) and the load average."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
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

LIVENESS = (Path(__file__).resolve().parents[2] / "tests" / "testdata" /
            "liveness-fails.yaml").read_text()  # the test clock test's pod


def start(root: Path, args: list[str]) -> tuple[TinykubeCluster, float]:
    t0 = time.monotonic()
    started = background.start(root / "data", args, timeout=180)
    ready = time.monotonic() - t0
    return TinykubeCluster(started.data_dir, started.kubeconfig, started.api_url,
                           started.dns_address, started.pid), ready


def import_floor() -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import aiohttp, uvloop"], check=True)
    return time.monotonic() - t0


def first_answer(address: tuple[str, int], deadline: float = 30) -> None:
    """Ask `kubernetes.default.svc.cluster.local` A over UDP until an answer with a record."""
    import dns.message

    query = dns.message.make_query("kubernetes.default.svc.cluster.local", "A").to_wire()
    end = time.monotonic() + deadline
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.05)
        while time.monotonic() < end:
            sock.sendto(query, address)
            try:
                reply = dns.message.from_wire(sock.recv(4096))
            except TimeoutError:
                continue
            if reply.answer:
                return
            time.sleep(0.005)
    raise TimeoutError("no DNS answer for kubernetes.default")


def namespace_round(cluster: TinykubeCluster) -> float:
    name = f"bench-{time.monotonic_ns()}"
    t0 = time.monotonic()
    cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    cluster.apply(DEPLOYMENT, namespace=name)
    cluster.wait_for("deployment/ten", "condition=Available", namespace=name, timeout=120)
    delete_namespace(cluster, name)
    return time.monotonic() - t0


def timed_advance(cluster: TinykubeCluster, seconds: float) -> tuple[float, int]:
    """Wall seconds of one `advance(seconds)` and the due times it stepped through."""
    t0 = time.monotonic()
    status, body = cluster.request("POST", "/tinykube/v1/clock/advance", {"seconds": seconds})
    elapsed = time.monotonic() - t0
    if status != 200:
        raise RuntimeError(f"advance failed ({status}): {body}")
    return elapsed, int(body["steps"])


def restarts(cluster: TinykubeCluster) -> int:
    _, pod = cluster.request("GET", "/api/v1/namespaces/default/pods/live")
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return int(statuses[0].get("restartCount", 0))


def clock_round(root: Path) -> tuple[tuple[float, int], tuple[float, int]]:
    """(idle advance(180), liveness advance(180)): each (wall seconds, steps)."""
    cluster, _ = start(root, ClusterConfig(test_clock=True).up_args(free_port()))
    try:
        idle = timed_advance(cluster, 180)
        cluster.apply(LIVENESS, namespace="default")
        cluster.wait_for("pod/live", namespace="default", timeout=60)
        liveness = timed_advance(cluster, 180)
        if restarts(cluster) != 1:
            raise RuntimeError(f"the pod restarted {restarts(cluster)} times, not once")
        return idle, liveness
    finally:
        background.stop_pid(cluster.pid)


def compile_tinykube() -> None:
    """Write the bytecode caches of tinykube's modules that are missing or stale."""
    import compileall

    import tinykube

    compileall.compile_dir(str(Path(tinykube.__file__).parent), quiet=1)


def main() -> None:
    compile_tinykube()
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    rounds = parser.parse_args().rounds
    figures: dict[str, list[float]] = {
        "import aiohttp, uvloop": [], "tinykube up ready": [], "first DNS answer": [],
        "fixture start to ready": [], "fixture teardown": [], "namespace, 10 pods": [],
        "clock: idle advance(180)": [], "clock: liveness advance(180)": []}
    steps: dict[str, list[int]] = {}
    for _ in range(rounds):
        root = Path(tempfile.mkdtemp(prefix="tinykube-bench-"))
        try:
            figures["import aiohttp, uvloop"].append(import_floor())
            t0 = time.monotonic()
            plain, ready = start(root / "plain", ["--listen", "127.0.0.1:0", "--no-proxy",
                                                  "--dns-listen", f"127.0.0.1:{free_port()}"])
            figures["tinykube up ready"].append(ready)
            assert plain.dns_address is not None
            first_answer(plain.dns_address)
            figures["first DNS answer"].append(time.monotonic() - t0)
            background.stop_pid(plain.pid)
            cluster, ready = start(root / "fixture", ClusterConfig().up_args(free_port()))
            figures["fixture start to ready"].append(ready)
            figures["namespace, 10 pods"].append(namespace_round(cluster))
            t0 = time.monotonic()
            background.stop_pid(cluster.pid)
            shutil.rmtree(root / "fixture")
            figures["fixture teardown"].append(time.monotonic() - t0)
            for what, (wall, stepped) in zip(("clock: idle advance(180)",
                                              "clock: liveness advance(180)"),
                                             clock_round(root / "clock"), strict=True):
                figures[what].append(wall)
                steps.setdefault(what, []).append(stepped)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    report(figures, steps)


def report(figures: dict[str, list[float]], steps: dict[str, list[int]]) -> None:
    median = {what: statistics.median(values) for what, values in figures.items()}
    floor = median["import aiohttp, uvloop"]
    targets = {"tinykube up ready": 2 * floor, "first DNS answer": 2 * floor,
               "fixture start to ready": 1.0}
    for what, value in median.items():
        line = f"{what:30s} {value:6.2f} s (median of {len(figures[what])})"
        if what in steps:
            line += f", {statistics.median(steps[what]):.0f} steps"
        if what == "clock: liveness advance(180)":
            line += "  target < 1.00 s" + (" (met)" if value < 1.0 else " (NOT met)")
        if what in targets:
            line += f"  {value / floor:4.2f}x the floor, target <= {targets[what]:.2f} s"
            line += " (met)" if value <= targets[what] else " (NOT met)"
        print(line)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
