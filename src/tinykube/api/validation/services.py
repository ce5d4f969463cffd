"""Services (`ValidateService`, `ValidateServiceUpdate`).

Type, ports (names, duplicates by protocol and port, node ports), ExternalName rules, cluster
IPs, session affinity, IP families and traffic policies. On update the primary clusterIP is
immutable unless either side is ExternalName. IP checks accept loopback addresses on purpose
(see `names.check_non_special_ip`).
"""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.validation.meta import validate_labels
from tinykube.api.validation.names import (
    PROTOCOLS,
    Errors,
    Obj,
    check_ip,
    check_non_special_ip,
    check_one_of,
    check_port,
    check_port_num_or_name,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    invalid_each,
)
from tinykube.api.validation.render import go_service_port_key, go_strings, raw

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_SESSION_AFFINITIES = ["ClientIP", "None"]
_IP_FAMILIES = ["IPv4", "IPv6"]
_IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
_TRAFFIC_POLICIES = ["Cluster", "Local"]
_MAX_CLIENT_IP_TIMEOUT = 86400


def _cluster_ips(spec: Obj) -> list[str]:
    ips = spec.get("clusterIPs")
    if ips:
        return [str(ip) for ip in ips]
    return [spec["clusterIP"]] if spec.get("clusterIP") else []


def _validate_service_port(port: Obj, idx: str, *, require_name: bool,
                           seen_names: set[str]) -> Errors:
    errors: Errors = []
    name = port.get("name") or ""
    if require_name and not name:
        errors.append(FieldError.required(f"{idx}.name"))
    elif name:
        errors += invalid_each(f"{idx}.name", name, dns1123_label_errors(name))
        if name in seen_names:
            errors.append(FieldError.duplicate(f"{idx}.name", name))
        seen_names.add(name)
    errors += check_port(f"{idx}.port", port.get("port", 0))
    errors += check_one_of(f"{idx}.protocol", port.get("protocol"), PROTOCOLS)
    errors += check_port_num_or_name(f"{idx}.targetPort", port.get("targetPort", 0))
    return errors


def _validate_service_ports(spec: Obj) -> Errors:
    ports = spec.get("ports") or []
    errors: Errors = []
    names: set[str] = set()
    keys: set[tuple[Any, Any]] = set()
    node_port_keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        idx = f"spec.ports[{i}]"
        errors += _validate_service_port(port, idx, require_name=len(ports) > 1, seen_names=names)
        node_port = port.get("nodePort")
        if node_port and spec.get("type") == "ClusterIP":
            errors.append(FieldError.forbidden(f"{idx}.nodePort",
                                               "may not be used when `type` is 'ClusterIP'"))
        if node_port:
            if (port.get("protocol"), node_port) in node_port_keys:
                errors.append(FieldError.duplicate(f"{idx}.nodePort", node_port))
            node_port_keys.add((port.get("protocol"), node_port))
        key = (port.get("protocol"), port.get("port"))
        if key in keys:
            errors.append(raw("FieldValueDuplicate", idx, go_service_port_key(*key)))
        keys.add(key)
    return errors


def _validate_service_type(spec: Obj) -> Errors:
    svc_type, cluster_ips = spec.get("type"), _cluster_ips(spec)
    headless = bool(cluster_ips) and cluster_ips[0] == "None"
    errors = check_one_of("spec.type", svc_type, _SERVICE_TYPES)
    if svc_type in ("NodePort", "LoadBalancer") and headless:
        errors.append(FieldError.invalid("spec.clusterIPs[0]", "None",
                                         f"may not be set to 'None' for {svc_type} services"))
    if svc_type == "ExternalName":
        errors += _validate_external_name(spec)
    if not spec.get("ports") and not headless and svc_type != "ExternalName":
        errors.insert(0, FieldError.required("spec.ports"))
    return errors


def _validate_external_name(spec: Obj) -> Errors:
    errors: Errors = []
    if _cluster_ips(spec):
        errors.append(FieldError.forbidden("spec.clusterIPs",
                                           "may not be set for ExternalName services"))
    if spec.get("ipFamilies"):
        errors.append(FieldError.forbidden("spec.ipFamilies",
                                           "may not be set for ExternalName services"))
    if spec.get("ipFamilyPolicy"):
        errors.append(FieldError.forbidden("spec.ipFamilyPolicy",
                                           "may not be set for ExternalName services"))
    cname = str(spec.get("externalName") or "").removesuffix(".")
    if not cname:
        errors.append(FieldError.required("spec.externalName"))
    else:
        errors += invalid_each("spec.externalName", cname, dns1123_subdomain_errors(cname))
    return errors


def _validate_cluster_ips(spec: Obj) -> Errors:
    errors: Errors = []
    cluster_ips = _cluster_ips(spec)
    if spec.get("clusterIP") and spec.get("clusterIPs") and spec["clusterIP"] != cluster_ips[0]:
        errors.append(raw("FieldValueInvalid", "spec.clusterIPs", go_strings(cluster_ips),
                          "first value must match `clusterIP`"))
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            continue
        errors += check_ip(f"spec.clusterIPs[{i}]", ip)
    return errors


def _validate_session_affinity(spec: Obj) -> Errors:
    affinity = spec.get("sessionAffinity")
    errors = check_one_of("spec.sessionAffinity", affinity, _SESSION_AFFINITIES)
    config_path = "spec.sessionAffinityConfig"
    config = spec.get("sessionAffinityConfig")
    if affinity == "None" and config:
        errors.append(FieldError.forbidden(config_path,
                                           "must not be set when session affinity is None"))
    if affinity != "ClientIP":
        return errors
    client_ip = (config or {}).get("clientIP")
    if not client_ip:
        errors.append(FieldError.required(f"{config_path}.clientIP",
                                          "when session affinity type is ClientIP"))
        return errors
    timeout = client_ip.get("timeoutSeconds")
    if not isinstance(timeout, int) or not 0 < timeout <= _MAX_CLIENT_IP_TIMEOUT:
        errors.append(FieldError.invalid(
            f"{config_path}.clientIP.timeoutSeconds", timeout,
            f"must be greater than 0 and less than {_MAX_CLIENT_IP_TIMEOUT}"))
    return errors


def _validate_service_policies(spec: Obj) -> Errors:
    svc_type = spec.get("type")
    errors: Errors = []
    for i, family in enumerate(spec.get("ipFamilies") or []):
        errors += check_one_of(f"spec.ipFamilies[{i}]", family, _IP_FAMILIES)
        if family in (spec.get("ipFamilies") or [])[:i]:
            errors.append(FieldError.duplicate(f"spec.ipFamilies[{i}]", family))
    errors += check_one_of("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                           _IP_FAMILY_POLICIES, required=False)
    if svc_type != "ExternalName":
        errors += check_one_of("spec.internalTrafficPolicy", spec.get("internalTrafficPolicy"),
                               _TRAFFIC_POLICIES)
    externally_accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    external_policy = spec.get("externalTrafficPolicy")
    if externally_accessible:
        errors += check_one_of("spec.externalTrafficPolicy", external_policy, _TRAFFIC_POLICIES)
    elif external_policy:
        errors.append(FieldError.invalid("spec.externalTrafficPolicy", external_policy,
                                         "may only be set for externally-accessible services"))
    return errors


def validate_service(svc: Obj) -> Errors:
    spec = svc.get("spec") or {}
    errors = _validate_service_type(spec)
    errors += _validate_service_ports(spec)
    if spec.get("selector"):
        errors += validate_labels(spec["selector"], "spec.selector")
    errors += _validate_session_affinity(spec)
    errors += _validate_cluster_ips(spec)
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errors += check_non_special_ip(f"spec.externalIPs[{i}]", ip)
    errors += _validate_service_policies(spec)
    return errors


def validate_service_update(svc: Obj, old: Obj) -> Errors:
    """Primary clusterIP is immutable unless either side is ExternalName (upstream rule)."""
    spec, old_spec = svc.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    new_ips, old_ips = _cluster_ips(spec), _cluster_ips(old_spec)
    if not old_ips or (new_ips[:1] == ["None"] and old_ips[:1] == ["None"]):
        return []
    rendered = go_strings(new_ips)
    if not new_ips:
        return [raw("FieldValueInvalid", "spec.clusterIPs[0]", rendered,
                    "primary clusterIP can not be unset")]
    errors: Errors = []
    for i, (new_ip, old_ip) in enumerate(zip(new_ips, old_ips, strict=False)):
        if new_ip != old_ip and (i == 0 or len(new_ips) == len(old_ips)):
            errors.append(raw("FieldValueInvalid", f"spec.clusterIPs[{i}]", rendered,
                              "may not change once set"))
    return errors
