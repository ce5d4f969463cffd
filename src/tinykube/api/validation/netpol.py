"""networking.k8s.io/v1 NetworkPolicy (`ValidateNetworkPolicySpec` in
`pkg/apis/networking/validation`).

What kube-apiserver checks, with its messages: the label selectors (`podSelector`, and each
peer's `podSelector` / `namespaceSelector`); each port's protocol (TCP, UDP, SCTP), a numeric
port in 1-65535 or a port name, `endPort` only after a numeric port and not below it; each peer
names something, and `ipBlock` stands alone; an `ipBlock` has a valid `cidr` and each `except`
is a strict subset of it; at most two `policyTypes`, each Ingress or Egress. A missing
`podSelector` is not an error (Go's zero value: an empty selector, every pod of the namespace),
as upstream; the defaults (`api.defaults`) write it out.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.validation.meta import validate_label_selector
from tinykube.api.validation.names import (
    PROTOCOLS,
    Errors,
    Obj,
    check_port,
    invalid_each,
    port_name_errors,
)
from tinykube.api.validation.render import go_strings, raw

POLICY_TYPES = ["Ingress", "Egress"]
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _validate_port(port: Obj, path: str) -> Errors:
    errors: Errors = []
    protocol, number, end = port.get("protocol"), port.get("port"), port.get("endPort")
    if protocol is not None and protocol not in PROTOCOLS:
        errors.append(FieldError.not_supported(f"{path}.protocol", protocol,
                                               ["TCP", "UDP", "SCTP"]))
    if number is None:
        if end is not None:
            errors.append(FieldError.invalid(f"{path}.endPort", end,
                                             "may not be specified when `port` is not specified"))
    elif isinstance(number, str):
        if end is not None:
            errors.append(FieldError.invalid(f"{path}.endPort", end,
                                             "may not be specified when `port` is non-numeric"))
        errors += invalid_each(f"{path}.port", number, port_name_errors(number))
    else:
        errors += check_port(f"{path}.port", number)
        if end is not None:
            if isinstance(end, int) and isinstance(number, int) and end < number:
                errors.append(FieldError.invalid(f"{path}.endPort", number,
                                                 "must be greater than or equal to `port`"))
            errors += check_port(f"{path}.endPort", end)
    return errors


def _network(value: Any) -> Network | None:
    """Go's `ParseCIDR`: an address, a slash and a prefix length (host bits may be set)."""
    if not isinstance(value, str) or "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _validate_ip_block(block: Obj, path: str) -> Errors:
    cidr = block.get("cidr")
    if not cidr:
        return [FieldError.required(f"{path}.cidr")]
    network = _network(cidr)
    if network is None:
        return [FieldError.invalid(f"{path}.cidr", cidr, _CIDR_MSG)]
    errors: Errors = []
    for i, text in enumerate(block.get("except") or []):
        where, excluded = f"{path}.except[{i}]", _network(text)
        if excluded is None:
            errors.append(FieldError.invalid(where, text, _CIDR_MSG))
        elif (excluded.version != network.version
              or excluded.network_address not in network
              or network.prefixlen >= excluded.prefixlen):
            errors.append(FieldError.invalid(where, text, "must be a strict subset of `cidr`"))
    return errors


def _validate_peer(peer: Obj, path: str) -> Errors:
    errors: Errors = []
    count = 0
    for name in ("podSelector", "namespaceSelector"):
        if peer.get(name) is not None:
            count += 1
            errors += validate_label_selector(_as_dict(peer[name]), f"{path}.{name}")
    if peer.get("ipBlock") is not None:
        count += 1
        errors += _validate_ip_block(_as_dict(peer["ipBlock"]), f"{path}.ipBlock")
    if count == 0:
        errors.append(FieldError.required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errors.append(FieldError.forbidden(path, "may not specify both ipBlock and another peer"))
    return errors


def _validate_rules(rules: Any, direction: str, peers: str) -> Errors:
    errors: Errors = []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        rule, path = _as_dict(rule), f"spec.{direction}[{i}]"
        for j, port in enumerate(rule.get("ports") or []):
            errors += _validate_port(_as_dict(port), f"{path}.ports[{j}]")
        for j, peer in enumerate(rule.get(peers) or []):
            errors += _validate_peer(_as_dict(peer), f"{path}.{peers}[{j}]")
    return errors


def validate_network_policy(policy: Obj) -> Errors:
    spec = _as_dict(policy.get("spec"))
    errors = validate_label_selector(_as_dict(spec.get("podSelector")), "spec.podSelector")
    errors += _validate_rules(spec.get("ingress"), "ingress", "from")
    errors += _validate_rules(spec.get("egress"), "egress", "to")
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        errors.append(raw("FieldValueInvalid", "spec.policyTypes",
                          f"&[]networking.PolicyType{go_strings(types)[len('[]string'):]}",
                          "may not specify more than two policyTypes"))
        return errors
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            errors.append(FieldError.not_supported(f"spec.policyTypes[{i}]", kind, POLICY_TYPES))
    return errors
