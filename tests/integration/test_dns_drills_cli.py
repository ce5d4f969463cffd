"""`tinykube dns inject` against a running cluster: the drill travels through the API (the
ConfigMap kube-system/tinykube-dns-drills) to the cluster DNS, `dig` shows it, then its end;
`tinykube dns clear` ends drills early."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cluster

pytestmark = [pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig"),
              pytest.mark.slow]
NAME = "kubernetes.default.svc.cluster.local"


def dig(cluster: Cluster, *args: str) -> str:
    assert cluster.dns is not None
    host, port = cluster.dns
    return subprocess.run(["dig", "-p", str(port), f"@{host}", "+tries=1", "+timeout=1",
                           *args], capture_output=True, text=True, timeout=30).stdout


def status(output: str) -> str:
    found = re.search(r"status: (\w+)", output)
    return found.group(1) if found else "no answer"


def tinykube(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinykube", "dns", *args, "--kubeconfig",
                           str(cluster.kubeconfig)], capture_output=True, text=True,
                          timeout=60, env={**os.environ})


def until_status(cluster: Cluster, want: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while status(dig(cluster, NAME)) != want:
        assert time.monotonic() < deadline, f"no {want} within {seconds}s"
        time.sleep(0.1)


def test_inject_servfail_then_its_end_and_clear(cluster: Cluster) -> None:
    assert cluster.dns is not None
    dns = f"{cluster.dns[0]}:{cluster.dns[1]}"
    until_status(cluster, "NOERROR")
    started = tinykube(cluster, "inject", NAME, "--rcode", "SERVFAIL", "--for", "3",
                       "--dns", dns)
    assert started.returncode == 0, started.stderr
    assert status(dig(cluster, NAME)) == "SERVFAIL"
    until_status(cluster, "NOERROR")  # ended by itself

    truncated = tinykube(cluster, "inject", NAME, "--truncate", "--for", "60", "--dns", dns)
    assert truncated.returncode == 0, truncated.stderr
    assert " tc" in dig(cluster, "+ignore", NAME).split("flags:")[1].split(";")[0]
    assert tinykube(cluster, "clear").stdout.strip() == "drills ended"
    deadline = time.monotonic() + 20
    while " tc" in dig(cluster, "+ignore", NAME).split("flags:")[1].split(";")[0]:
        assert time.monotonic() < deadline, "clear did not end the drill"
        time.sleep(0.1)


def test_inject_needs_one_behaviour(cluster: Cluster, tmp_path: Path) -> None:
    both = tinykube(cluster, "inject", NAME, "--drop", "--truncate", "--for", "1")
    assert both.returncode == 2 and "exactly one of" in both.stderr
