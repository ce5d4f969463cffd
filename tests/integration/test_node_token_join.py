"""`tinykube node --token`: a node joins a running `tinykube up` with a bootstrap token.

`tinykube token create --print-join-command` (listed by `tinykube token list`) gives the server,
the token and the CA hash; node `nj-n3` discovers the CA by its hash, gets a client certificate
through a CSR that the controllers approve and sign (requestor `system:bootstrap:<id>`), and
runs as `system:node:nj-n3`. A wrong CA hash or an unknown token is refused; the token
cleaner deletes a token's Secret once it expires.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tests.integration.joining import Node, pod_on, ready, running_ip, tinykube

pytestmark = [pytest.mark.kubectl]


def started(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tinykube", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", "--nodes", "nj-n1")
    yield running
    running.stop()


@pytest.fixture
def kctl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], cluster.kubeconfig, cache)


def test_node_joins_with_a_bootstrap_token(cluster: Cluster, kctl: Kubectl,
                                           tmp_path: Path) -> None:
    made = tinykube("token", "create", "--kubeconfig", str(cluster.kubeconfig), "--ttl", "10m",
                    "--print-join-command")
    assert made.returncode == 0, made.stderr
    words = made.stdout.split()
    server = words[words.index("--server") + 1]
    token = words[words.index("--token") + 1]
    ca_hash = words[words.index("--ca-cert-hash") + 1]
    token_id = token.split(".")[0]
    assert ca_hash.startswith("sha256:") and len(ca_hash) == 7 + 64
    # the refusals and the listing run while the node joins (each is a Python start-up)
    listed = started("token", "list", "--kubeconfig", str(cluster.kubeconfig))
    wrong = started("node", "--server", server, "--token", token, "--ca-cert-hash",
                    "sha256:" + "0" * 64, "--name", "nj-bad", "--data-dir",
                    str(tmp_path / "bad"), "--no-dns", "--no-proxy")
    unknown = started("node", "--server", server, "--token", "zzzzzz.0123456789abcdef",
                      "--ca-cert-hash", ca_hash, "--name", "nj-bad2", "--data-dir",
                      str(tmp_path / "bad2"), "--no-dns", "--no-proxy")
    node = Node(tmp_path, "nj-n3", "--server", server, "--token", token, "--ca-cert-hash",
                ca_hash, "--no-dns")
    try:
        out, _ = listed.communicate(timeout=60)
        assert token in out and "authentication,signing" in out
        _, err = wrong.communicate(timeout=60)
        assert wrong.returncode != 0 and "does not match" in err, err
        _, err = unknown.communicate(timeout=60)
        assert unknown.returncode != 0 and "Unauthorized" in err, err
        secret = json.loads(kctl("get", "secret", "-n", "kube-system",
                                 f"bootstrap-token-{token_id}", "-o", "json"))
        assert secret["type"] == "bootstrap.kubernetes.io/token"
        until(lambda: ready(kctl, "nj-n3"), 30, "nj-n3 Ready")
        csrs = json.loads(kctl("get", "csr", "-o", "json"))["items"]
        mine = [c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{token_id}"]
        assert len(mine) == 1
        conditions = {c["type"] for c in mine[0]["status"]["conditions"]}
        assert conditions == {"Approved"} and mine[0]["status"].get("certificate")
        conf = yaml.safe_load((tmp_path / "nj-n3" / "kubelet.conf").read_text())
        user = conf["users"][0]["user"]
        assert "token" not in user
        cert = base64.b64decode(user["client-certificate-data"])
        subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=cert.decode(),
                                 capture_output=True, text=True, check=True).stdout
        assert "system:node:nj-n3" in subject and "system:nodes" in subject
        kctl("apply", "-f", "-", input=pod_on("nj-n3", "joined"))
        until(lambda: running_ip(kctl, "joined"), 30, "the pod on nj-n3 to run")
        # the API server reaches the node's kubelet, which never saw the kubelet token:
        # the kubelet has the API server review it (webhook authentication)
        logs = kctl.run("logs", "joined", check=False)
        assert "Unauthorized" not in logs.stderr and logs.returncode == 0, logs.stderr
        # the node's identity is its certificate's: who it is, and that it may not do more
        who = kctl("auth", "can-i", "create", "nodes", "--as", "system:node:nj-n3",
                   "--as-group", "system:nodes")
        assert who.strip() == "yes"
        refused = kctl.run("auth", "can-i", "delete", "namespaces", "--as",
                           "system:node:nj-n3", "--as-group", "system:nodes", check=False)
        assert refused.stdout.strip() == "no"
        # with its own certificate, under the Node authorizer: the Secret of a pod on nj-n1
        # is not its to read, nor nj-n1's Node
        kctl("create", "secret", "generic", "n1-secret", "--from-literal=k=v")
        on_n1 = yaml.safe_load(pod_on("nj-n1", "on-n1"))
        on_n1["spec"]["imagePullSecrets"] = [{"name": "n1-secret"}]
        kctl("apply", "-f", "-", input=json.dumps(on_n1))
        until(lambda: running_ip(kctl, "on-n1"), 30, "the pod on nj-n1 to run")
        as_node = Kubectl(KUBECTLS[0][1], tmp_path / "nj-n3" / "kubelet.conf", tmp_path / "n3c")
        read = as_node.run("get", "secret", "n1-secret", check=False)
        assert read.returncode != 0
        assert 'secrets "n1-secret" is forbidden: User "system:node:nj-n3" cannot get resource ' \
               '"secrets" in API group "" in the namespace "default": no relationship found ' \
               "between node 'nj-n3' and this object" in read.stderr, read.stderr
        other = as_node.run("label", "node", "nj-n1", "x=y", check=False)
        assert other.returncode != 0 and "Forbidden" in other.stderr, other.stderr
    finally:
        node.stop()
    # the token cleaner deletes a token Secret once it expires
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    kctl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-qqqqqq", "namespace": "kube-system"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in {
            "token-id": "qqqqqq", "token-secret": "0123456789abcdef", "expiration": soon,
            "usage-bootstrap-authentication": "true"}.items()}}))
    until(lambda: kctl.run("get", "secret", "-n", "kube-system", "bootstrap-token-qqqqqq",
                           check=False).returncode != 0, 20, "the expired token to be deleted")
