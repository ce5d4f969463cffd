"""The node agents of `tinykube up` run as their nodes, `system:node:<name>`, under the Node
authorizer and NodeRestriction, with the real kubectl (v1.32).

One `tinykube up --nodes na,nb`: a process pod on `na` mounts a Secret and a ConfigMap and
reads them (the agent watched them one by one, as its node may); with `nb`'s credential (its
static token in `tokens.csv`) the Secret is refused with kube's message, as are `nb`'s writes to
`na`'s Node; with `na`'s it is readable. Every other request of the nodes, the scheduler, the
controllers and the proxy is audited, and one that RBAC denies fails the test.
"""

from __future__ import annotations

import csv
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, ComponentAudit, Kubectl, start_cluster, until

pytestmark = [pytest.mark.kubectl]

POD = """
apiVersion: v1
kind: Secret
metadata: {name: na-secret}
stringData: {key: the-secret-value}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: na-config}
data: {greeting: hello-from-na}
---
apiVersion: v1
kind: Pod
metadata: {name: on-na}
spec:
  nodeName: na
  runtimeClassName: process
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "cat /etc/s/key /etc/c/greeting; echo; sleep 600"]
    volumeMounts:
    - {name: s, mountPath: /etc/s}
    - {name: c, mountPath: /etc/c}
  volumes:
  - {name: s, secret: {secretName: na-secret}}
  - {name: c, configMap: {name: na-config}}
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, ComponentAudit]]:
    base = tmp_path_factory.mktemp("nodeauthz")
    audit = ComponentAudit(base)
    running = start_cluster(base / "data", "--nodes", "na,nb", *audit.args())
    yield running, audit
    running.stop()
    assert audit.new_denials() == [], "RBAC denied a component's request"


@pytest.fixture
def kctl(audited: tuple[Cluster, ComponentAudit], tmp_path: Path) -> Kubectl:
    return Kubectl(KUBECTLS[0][1], audited[0].kubeconfig, tmp_path)


def _node_token(cluster: Cluster, node: str) -> str:
    with (cluster.data_dir / "tokens.csv").open() as tokens:
        for row in csv.reader(tokens):
            if row[1] == f"system:node:{node}":
                assert row[3] == "system:nodes"
                return row[0]
    raise AssertionError(f"no token for node {node}")


def _as_node(cluster: Cluster, node: str, method: str, path: str,
             body: Any = None) -> tuple[int, dict[str, Any]]:
    """A request to the API server with the node's token: (status, decoded body)."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    context = ssl.create_default_context(cafile=str(cluster.data_dir / "ca.crt"))
    headers = {"Authorization": f"Bearer {_node_token(cluster, node)}",
               "Content-Type": "application/merge-patch+json"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_node_agents_run_as_their_nodes(audited: tuple[Cluster, ComponentAudit],
                                        kctl: Kubectl) -> None:
    cluster, audit = audited
    kctl("apply", "-f", "-", input=POD)
    until(lambda: "hello-from-na" in kctl.run("logs", "on-na", check=False).stdout, 60,
          "the pod on na to read its Secret and ConfigMap")
    assert "the-secret-value" in kctl("logs", "on-na")
    # the node agents authenticate as their nodes (the audit log names them)
    users = {e["user"]["username"] for e in audit.events()}
    assert {"system:node:na", "system:node:nb"} <= users
    assert audit.new_denials() == []

    # nb's credential: not the Secret of a pod on na, and not na's Node
    code, status = _as_node(cluster, "nb", "GET", "/api/v1/namespaces/default/secrets/na-secret")
    assert code == 403, status
    assert status["message"] == (
        'secrets "na-secret" is forbidden: User "system:node:nb" cannot get resource "secrets" '
        "in API group \"\" in the namespace \"default\": no relationship found between node "
        "'nb' and this object")
    code, status = _as_node(cluster, "nb", "GET", "/api/v1/nodes/na")
    assert code == 403 and status["message"].endswith(
        "node 'nb' cannot read 'na', only its own Node object"), status
    code, status = _as_node(cluster, "nb", "PATCH", "/api/v1/nodes/na",
                            {"metadata": {"labels": {"stolen": "yes"}}})
    assert code == 403, status
    assert status["message"] == 'nodes "na" is forbidden: node "nb" is not allowed to modify ' \
                                'node "na"'
    code, status = _as_node(cluster, "nb", "GET", "/api/v1/pods")
    assert code == 403 and status["message"].endswith(
        "can only list/watch pods with spec.nodeName field selector"), status
    # na's: its pod's Secret, its own Node, but not a label NodeRestriction keeps for admins
    code, secret = _as_node(cluster, "na", "GET", "/api/v1/namespaces/default/secrets/na-secret")
    assert code == 200 and secret["metadata"]["name"] == "na-secret"
    code, status = _as_node(cluster, "na", "PATCH", "/api/v1/nodes/na", {"metadata": {
        "labels": {"node-restriction.kubernetes.io/pool": "a"}}})
    assert code == 403 and status["message"] == (
        'nodes "na" is forbidden: is not allowed to modify labels: '
        "node-restriction.kubernetes.io/pool"), status
    denied = audit.new_denials()  # exactly the five refusals above, nothing of the agents
    assert len(denied) == 5 and all(d.startswith(("system:node:nb ", "system:node:na "))
                                    for d in denied), denied
    kctl("delete", "pod", "on-na", "--wait=true", "--timeout=30s")
