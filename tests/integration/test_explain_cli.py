"""`tinykube explain` against a running cluster agrees with `dig` at the cluster DNS.

The seed's web.yaml runs on `tinykube up` (three virtual nodes, one labelled for its
nodeSelector, scaled to two replicas). For each name the CLI's answer (`-o json`) must be the
record set `dig` gets from the cluster DNS for the same fully qualified name, and a name that
does not resolve must be NXDOMAIN at the DNS with the reason explain gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import TESTDATA, Cluster, Kubectl, until
from tinykube.cli.main import cli

pytestmark = [pytest.mark.kubectl,
              pytest.mark.cluster_args("--nodes", "kube-node1,kube-node2,kube-node3")]


def explain(cluster: Cluster, *args: str) -> tuple[int, str]:
    """The CLI in this process (click's runner: the same command, no interpreter start-up)."""
    result = CliRunner().invoke(cli, ["explain", *args],
                                env={"KUBECONFIG": str(cluster.kubeconfig)})
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, result.output


def explain_process(cluster: Cluster, *args: str) -> tuple[int, str]:
    """`python -m tinykube explain ...` as a user runs it."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    done = subprocess.run([sys.executable, "-m", "tinykube", "explain", *args],
                          capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, done.stdout


def explain_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(explain(cluster, *args, "-o", "json")[1])
    return result


def dig(cluster: Cluster, name: str, qtype: str = "A") -> tuple[str, list[str]]:
    assert cluster.dns is not None
    host, port = cluster.dns
    out = subprocess.run(["dig", f"@{host}", "-p", str(port), "+noall", "+answer", "+comments",
                          name, qtype], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    records = sorted(f"{f[3]} {' '.join(f[4:])}" for line in out.splitlines()
                     if line and not line.startswith(";") and len(f := line.split()) >= 5)
    return status, records


def test_explain_agrees_with_dig(cluster: Cluster, kctl: Kubectl) -> None:
    kctl("apply", "-f", str(TESTDATA / "web.yaml"))
    kctl("label", "node", "kube-node3", "node=kube-node3")
    kctl("scale", "sts", "web", "--replicas=2")
    kctl("rollout", "status", "sts/web", "--timeout=30s")

    def ready_endpoints() -> bool:
        result = explain_json(cluster, "nginx")
        return len(result["answer"]) == 2

    until(ready_endpoints, timeout=20, what="both pods in the headless Service's answer")
    for name, qtype in [("nginx", "A"), ("web-1.nginx", "A"), ("_web._tcp.nginx", "SRV"),
                        ("kubernetes", "A")]:
        result = explain_json(cluster, name, "--type", qtype)
        assert result["answeredBy"], result
        status, records = dig(cluster, result["answeredBy"], qtype)
        assert (status, records) == ("NOERROR", sorted(result["answer"])), name

    code, text = explain_process(cluster, "web-2.nginx")
    assert code == 1
    assert "StatefulSet web has 2 replica(s) (web-0..web-1), so there is no pod web-2" in text
    assert dig(cluster, "web-2.nginx.default.svc.cluster.local") == ("NXDOMAIN", [])

    # From a pod in another namespace the short name misses: every in-zone query it sends is
    # NXDOMAIN at the DNS too, and explain says the Service lives in "default".
    kctl("create", "namespace", "other")
    result = explain_json(cluster, "nginx", "-n", "other")
    assert [r["code"] for r in result["reasons"]] == ["no-service", "wrong-namespace"]
    for query in result["queries"]:
        if query["rcode"] != "FORWARDED":
            assert dig(cluster, query["name"])[0] == query["rcode"]

    code, text = explain(cluster, "service", "nginx")
    assert code == 0
    assert "no proxy: a headless Service has no cluster IP" in text
    assert text.count("ready=true") == 2
