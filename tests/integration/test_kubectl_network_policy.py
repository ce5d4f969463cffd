"""NetworkPolicy through both real kubectls and the official client: served under its short
name with kube's columns, `explain` and `api-resources`, defaulted (policyTypes, port
protocol) and validated with kube-apiserver's messages."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config

from tests.conftest import Cluster, Kubectl

pytestmark = [pytest.mark.kubectl]

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 5432}]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
"""


def test_apply_get_and_defaults(kubectl: Kubectl) -> None:
    result = kubectl.run("apply", "-f", "-", input=POLICY)
    assert result.stdout.strip() == "networkpolicy.networking.k8s.io/db created", result.stderr
    # host mode: nothing enforces the policy, and the answer says so
    assert "Warning: tinykube stores NetworkPolicy objects but does not enforce them in this " \
        "cluster: only `tinykube up --network netns` (with its service proxy) does" \
        in result.stderr, result.stderr
    lines = kubectl("get", "netpol").splitlines()
    assert [line.split()[:2] for line in lines] == [["NAME", "POD-SELECTOR"], ["db", "app=db"]]
    assert lines[0].split()[2] == "AGE"
    spec = json.loads(kubectl("get", "networkpolicy", "db", "-o", "jsonpath={.spec}"))
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}]


INVALID = [
    ("ipblock-with-selector", POLICY.replace(
        "{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}",
        "{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}"),
     'The NetworkPolicy "db" is invalid: spec.egress[0].to[0]: Forbidden: may not specify both '
     "ipBlock and another peer"),
    ("except-not-subset", POLICY.replace("10.1.0.0/16", "192.168.0.0/16"),
     'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a strict '
     "subset of `cidr`"),
    ("end-port-below", POLICY.replace("{port: 5432}", "{port: 5432, endPort: 5000}"),
     "spec.ingress[0].ports[0].endPort: Invalid value: 5432: must be greater than or equal to "
     "`port`"),
    ("policy-type", POLICY.replace("  ingress:", "  policyTypes: [Inbound]\n  ingress:"),
     'spec.policyTypes[0]: Unsupported value: "Inbound": supported values: "Ingress", '
     '"Egress"'),
]


@pytest.mark.parametrize(("manifest", "message"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_policy_is_refused(kubectl: Kubectl, manifest: str, message: str) -> None:
    result = kubectl.run("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    assert message in result.stderr


def test_explain_and_api_resources(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "netpol.spec")
    assert "KIND:" in explained and "NetworkPolicy" in explained
    assert "policyTypes" in explained and "podSelector" in explained
    rows = [line.split() for line in kubectl("api-resources", "--api-group",
                                             "networking.k8s.io").splitlines()]
    assert ["networkpolicies", "netpol", "networking.k8s.io/v1", "true", "NetworkPolicy"] in rows


def test_official_client_creates_and_reads_a_policy(cluster: Cluster) -> None:
    api = client.NetworkingV1Api(config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)))
    body = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="api"),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"app": "api"}),
            egress=[client.V1NetworkPolicyEgressRule(ports=[
                client.V1NetworkPolicyPort(port=8000, end_port=8080)])]))
    api.create_namespaced_network_policy("default", body)
    read = api.read_namespaced_network_policy("api", "default")
    assert read.spec.policy_types == ["Ingress", "Egress"]
    assert read.spec.egress[0].ports[0].to_dict() == {"end_port": 8080, "port": 8000,
                                                      "protocol": "TCP"}
    body.metadata.name, body.spec.egress[0].ports[0].end_port = "bad", 7000
    with pytest.raises(client.ApiException) as refused:
        api.create_namespaced_network_policy("default", body)
    assert refused.value.status == 422
    assert "must be greater than or equal to `port`" in str(refused.value.body)
