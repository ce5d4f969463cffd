"""networking.k8s.io/v1 NetworkPolicy as the API serves it: its table entry, kube's defaults
(`SetDefaults_NetworkPolicy`) and validation messages (`ValidateNetworkPolicySpec`), each case
a valid defaulted policy changed in one place."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tinykube.api import defaults, resources, validation
from tinykube.api.resources import ALL_VERBS

POLICY: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "default"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                              {"namespaceSelector": {"matchLabels": {"team": "a"}},
                               "podSelector": {}},
                              {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                     "ports": [{"port": 5432}, {"port": "metrics", "protocol": "UDP"},
                               {"port": 8000, "endPort": 8080, "protocol": "SCTP"}]}],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
    },
}


def policy() -> dict[str, Any]:
    return copy.deepcopy(POLICY)


def test_resource_table_entry() -> None:
    res = resources.lookup("networking.k8s.io", "v1", "networkpolicies")
    assert res is not None
    assert (res.kind, res.namespaced, res.short_names, res.categories, res.verbs,
            res.subresources, res.not_run) == \
        ("NetworkPolicy", True, ("netpol",), (), ALL_VERBS, (), False)


DEFAULTS = [
    ("ingress-only", {"podSelector": {}}, ["Ingress"]),
    ("ingress-rules", {"podSelector": {}, "ingress": [{}]}, ["Ingress"]),
    ("egress-rules", {"podSelector": {}, "egress": [{}]}, ["Ingress", "Egress"]),
    ("empty-egress-list", {"podSelector": {}, "egress": []}, ["Ingress"]),
    ("explicit-kept", {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]},
     ["Egress"]),
]


@pytest.mark.parametrize(("spec", "expected"), [d[1:] for d in DEFAULTS],
                         ids=[d[0] for d in DEFAULTS])
def test_policy_types_default(spec: dict[str, Any], expected: list[str]) -> None:
    obj = defaults.apply_defaults("NetworkPolicy", {"metadata": {"name": "p"}, "spec": spec})
    assert obj["spec"]["policyTypes"] == expected


def test_port_protocol_and_pod_selector_default() -> None:
    obj = defaults.apply_defaults("NetworkPolicy", {"metadata": {"name": "p"}, "spec": {
        "ingress": [{"ports": [{"port": 80}, {"protocol": "UDP"}]}]}})
    assert obj["spec"]["podSelector"] == {}
    assert obj["spec"]["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"},
                                                  {"protocol": "UDP"}]


def test_valid_policy_passes() -> None:
    obj = defaults.apply_defaults("NetworkPolicy", policy())
    assert validation.validate("NetworkPolicy", obj, None) == []
    assert validation.validate("NetworkPolicy", obj, obj) == []


IN, EG = "spec.ingress[0]", "spec.egress[0]"
INVALID: list[tuple[str, str, Any, list[str]]] = [
    ("protocol", "ingress.0.ports.0.protocol", "ICMP",
     [f'{IN}.ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", '
      '"SCTP"']),
    ("port-zero", "ingress.0.ports.0.port", 0,
     [f"{IN}.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("port-name", "ingress.0.ports.1.port", "Metrics_1",
     [f'{IN}.ports[1].port: Invalid value: "Metrics_1": must contain only alpha-numeric '
      "characters (a-z, 0-9), and hyphens (-)"]),
    ("end-port-below-port", "ingress.0.ports.2.endPort", 7000,
     [f"{IN}.ports[2].endPort: Invalid value: 8000: must be greater than or equal to `port`"]),
    ("end-port-range", "ingress.0.ports.2.endPort", 70000,
     [f"{IN}.ports[2].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ("end-port-named", "ingress.0.ports.1.endPort", 9000,
     [f"{IN}.ports[1].endPort: Invalid value: 9000: may not be specified when `port` is "
      "non-numeric"]),
    ("end-port-alone", "ingress.0.ports.0", {"endPort": 9000},
     [f"{IN}.ports[0].endPort: Invalid value: 9000: may not be specified when `port` is not "
      "specified"]),
    ("empty-peer", "ingress.0.from.0", {},
     [f"{IN}.from[0]: Required value: must specify a peer"]),
    ("ip-block-and-selector", "ingress.0.from.2.podSelector", {},
     [f"{IN}.from[2]: Forbidden: may not specify both ipBlock and another peer"]),
    ("no-cidr", "egress.0.to.0.ipBlock", {},
     [f"{EG}.to[0].ipBlock.cidr: Required value"]),
    ("bad-cidr", "egress.0.to.0.ipBlock.cidr", "10.0.0.0/33",
     [f'{EG}.to[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, '
      "(e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
    ("except-outside", "ingress.0.from.2.ipBlock.except", ["192.168.0.0/16"],
     [f'{IN}.from[2].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a strict '
      "subset of `cidr`"]),
    ("except-equal", "ingress.0.from.2.ipBlock.except", ["10.0.0.0/8"],
     [f'{IN}.from[2].ipBlock.except[0]: Invalid value: "10.0.0.0/8": must be a strict subset '
      "of `cidr`"]),
    ("except-not-cidr", "ingress.0.from.2.ipBlock.except", ["10.1.2.3"],
     [f'{IN}.from[2].ipBlock.except[0]: Invalid value: "10.1.2.3": must be a valid CIDR value, '
      "(e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
    ("policy-type", "policyTypes", ["Ingress", "Sideways"],
     ['spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", '
      '"Egress"']),
    ("three-policy-types", "policyTypes", ["Ingress", "Egress", "Ingress"],
     ['spec.policyTypes: Invalid value: &[]networking.PolicyType{"Ingress", "Egress", '
      '"Ingress"}: may not specify more than two policyTypes']),
    ("pod-selector-operator", "podSelector",
     {"matchExpressions": [{"key": "app", "operator": "Near"}]},
     ['spec.podSelector.matchExpressions[0].operator: Invalid value: "Near": not a valid '
      "selector operator"]),
    ("peer-namespace-selector-label", "ingress.0.from.1.namespaceSelector",
     {"matchLabels": {"team": "a b"}},
     [f'{IN}.from[1].namespaceSelector.matchLabels: Invalid value: "a b": a valid label must '
      "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
      "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
      "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
]


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = obj["spec"]
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


@pytest.mark.parametrize(("path", "value", "expected"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid(path: str, value: Any, expected: list[str]) -> None:
    obj = policy()
    _set(obj, path, value)
    obj = defaults.apply_defaults("NetworkPolicy", obj)
    assert [str(e) for e in validation.validate("NetworkPolicy", obj, None)] == expected
