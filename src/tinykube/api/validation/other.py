"""The remaining kinds: ConfigMap and Secret (data), EndpointSlice and Endpoints (discovery).

ConfigMap and Secret keys must be config keys, unique across `data` and `binaryData`, their
values at most 1 MiB in all, and their data is frozen once `immutable` is set; a Secret's type
is immutable. EndpointSlice addresses are checked against the slice's (immutable) address type;
Endpoints addresses must be non-special IPs. Kinds without a validator here (Namespace, Node,
Lease, Event, ...) get only the ObjectMeta checks.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.validation.names import (
    PROTOCOLS,
    Errors,
    Obj,
    check_non_special_ip,
    check_one_of,
    check_port,
    config_key_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    invalid_each,
    parse_ip,
)
from tinykube.api.validation.render import immutable

MAX_DATA_BYTES = 1024 * 1024  # `MaxSecretSize`, which limits ConfigMaps too


def _decoded_size(value: Any) -> int:
    """Bytes of a base64 value (a Secret's `data`, a ConfigMap's `binaryData`)."""
    text = str(value)
    try:
        return len(base64.b64decode(text))
    except (binascii.Error, ValueError):
        return len(text) * 3 // 4


def validate_data_keys(obj: Obj) -> Errors:
    """Config keys, unique across `data` and `binaryData`."""
    errors: Errors = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    for section, values in (("data", data), ("binaryData", binary)):
        for key in values:
            errors += invalid_each(f"{section}[{key}]", key, config_key_errors(str(key)))
    for key in binary:
        if key in data:
            errors.append(FieldError.invalid(f"data[{key}]", key,
                                             "duplicate of key present in binaryData"))
    return errors


def validate_configmap(obj: Obj) -> Errors:
    """Keys, and at most 1 MiB of `data` and `binaryData` values, reported on the whole
    object (whose path Go prints as `[]`)."""
    size = sum(len(str(v).encode()) for v in (obj.get("data") or {}).values())
    size += sum(_decoded_size(v) for v in (obj.get("binaryData") or {}).values())
    errors = validate_data_keys(obj)
    if size > MAX_DATA_BYTES:
        errors.append(FieldError.too_long("[]", "", MAX_DATA_BYTES))
    return errors


def validate_secret(obj: Obj) -> Errors:
    """Keys, and at most 1 MiB of (decoded) `data` values, reported on `data`."""
    size = sum(_decoded_size(v) for v in (obj.get("data") or {}).values())
    errors = validate_data_keys(obj)
    if size > MAX_DATA_BYTES:
        errors.append(FieldError.too_long("data", "", MAX_DATA_BYTES))
    return errors


def validate_immutable_data(obj: Obj, old: Obj) -> Errors:
    if not old.get("immutable"):
        return []
    detail = "field is immutable when `immutable` is set"
    errors: Errors = []
    if not obj.get("immutable"):
        errors.append(FieldError.forbidden("immutable", detail))
    for section in ("data", "binaryData"):
        if (obj.get(section) or {}) != (old.get(section) or {}):
            errors.append(FieldError.forbidden(section, detail))
    return errors


def validate_secret_update(secret: Obj, old: Obj) -> Errors:
    errors = validate_immutable_data(secret, old)
    if secret.get("type") != old.get("type"):
        errors.insert(0, immutable("type", secret.get("type")))
    return errors


_ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _validate_slice_address(address: Any, address_type: str, field: str) -> Errors:
    if address_type == "FQDN":
        return invalid_each(field, address, dns1123_subdomain_errors(str(address)))
    ip = parse_ip(address)
    wanted = 4 if address_type == "IPv4" else 6
    if ip is None or ip.version != wanted:
        return [FieldError.invalid(field, address, f"must be a valid {address_type} address")]
    return []


def validate_endpointslice(slice_: Obj) -> Errors:
    address_type = slice_.get("addressType")
    errors = check_one_of("addressType", address_type, _ADDRESS_TYPES)
    for i, endpoint in enumerate(slice_.get("endpoints") or []):
        addresses = endpoint.get("addresses") or []
        if not addresses:
            errors.append(FieldError.required(f"endpoints[{i}].addresses",
                                              "must contain at least 1 address"))
        for j, address in enumerate(addresses):
            if address_type in _ADDRESS_TYPES:
                errors += _validate_slice_address(address, str(address_type),
                                                  f"endpoints[{i}].addresses[{j}]")
        hostname = endpoint.get("hostname")
        if hostname:
            errors += invalid_each(f"endpoints[{i}].hostname", hostname,
                                   dns1123_label_errors(hostname))
    errors += _validate_slice_ports(slice_.get("ports") or [])
    return errors


def _validate_slice_ports(ports: list[Obj]) -> Errors:
    errors: Errors = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if name:
            errors += invalid_each(f"ports[{i}].name", name, dns1123_label_errors(name))
        if name in names:
            errors.append(FieldError.duplicate(f"ports[{i}].name", name))
        names.add(name)
        if port.get("port") is not None:
            errors += check_port(f"ports[{i}].port", port["port"])
        errors += check_one_of(f"ports[{i}].protocol", port.get("protocol"), PROTOCOLS)
    return errors


def validate_endpointslice_update(slice_: Obj, old: Obj) -> Errors:
    if slice_.get("addressType") != old.get("addressType"):
        return [immutable("addressType", slice_.get("addressType"))]
    return []


def validate_endpoints(endpoints: Obj) -> Errors:
    errors: Errors = []
    for i, subset in enumerate(endpoints.get("subsets") or []):
        path = f"subsets[{i}]"
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(subset.get(key) or []):
                errors += check_non_special_ip(f"{path}.{key}[{j}].ip", address.get("ip"))
                if address.get("hostname"):
                    errors += invalid_each(f"{path}.{key}[{j}].hostname", address["hostname"],
                                           dns1123_label_errors(address["hostname"]))
        ports = subset.get("ports") or []
        for j, port in enumerate(ports):
            errors += _validate_endpoint_port(port, f"{path}.ports[{j}]",
                                              require_name=len(ports) > 1)
    return errors


def _validate_endpoint_port(port: Obj, path: str, *, require_name: bool) -> Errors:
    name = port.get("name") or ""
    errors: Errors = []
    if require_name and not name:
        errors.append(FieldError.required(f"{path}.name"))
    elif name:
        errors += invalid_each(f"{path}.name", name, dns1123_label_errors(name))
    errors += check_port(f"{path}.port", port.get("port", 0))
    errors += check_one_of(f"{path}.protocol", port.get("protocol"), PROTOCOLS)
    return errors
