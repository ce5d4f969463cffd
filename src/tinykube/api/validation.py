"""Validation of served kinds, worded as kube-apiserver words it.

`validate(kind, obj, old)` returns a list of `FieldError`s (empty means valid) for a create
(`old is None`) or an update. Objects are JSON-like dicts in their storage version and are
expected to be defaulted already (`api.defaults`), as upstream validates after defaulting: a
missing `spec.type` is therefore reported as `Required value`, just as upstream would.

Messages follow `pkg/apis/core/validation`, `pkg/apis/apps/validation` and apimachinery's
`util/validation` (names, labels, ports, IPs) so that kubectl prints the familiar lines. Where
upstream shows a Go value that is not a scalar (a label map, a selector, a `ServicePort` key) it
renders it with `%#v`; `_go` does the same and the error is built with the rendered value
already inside its detail (`_raw`), because `FieldError` renders non-scalars as JSON.

Deliberately left to the caller: generateName, `resourceVersion` on create (a storage error
upstream, not a field error), carrying allocated/system fields from the old object into an
update (uid, creationTimestamp, clusterIP); empty values of those are not reported as changes.

Sections: Go rendering and name/label primitives, then metadata, then one block per kind, then
the `_VALIDATORS` table that `validate` dispatches on.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tinykube.api import resources, selectors
from tinykube.api.errors import BadRequest, FieldError

Obj = dict[str, Any]
Errors = list[FieldError]

# --- Go value rendering (as `%#v`) -----------------------------------------------------------


def _go_str(value: Any) -> str:
    return json.dumps(str(value))


def _go_map(value: Mapping[str, Any] | None) -> str:
    if value is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{_go_str(k)}:{_go_str(v)}" for k, v in sorted(value.items()))
    return "map[string]string{" + items + "}"


def _go_strings(values: Iterable[Any] | None) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_str(v) for v in values) + "}"


def _go_selector(sel: Mapping[str, Any] | None) -> str:
    sel = sel or {}
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered_exprs = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = [
            f"v1.LabelSelectorRequirement{{Key:{_go_str(e.get('key', ''))}, "
            f"Operator:{_go_str(e.get('operator', ''))}, Values:{_go_strings(e.get('values'))}}}"
            for e in exprs
        ]
        rendered_exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return (
        f"v1.LabelSelector{{MatchLabels:{_go_map(sel.get('matchLabels'))}, "
        f"MatchExpressions:{rendered_exprs}}}"
    )


def _go_service_port_key(protocol: Any, port: Any) -> str:
    return (
        f'core.ServicePort{{Name:"", Protocol:{_go_str(protocol)}, AppProtocol:(*string)(nil), '
        f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )


def _raw(error_type: str, field: str, rendered: str, detail: str = "") -> FieldError:
    """A field error whose bad value is already rendered Go-style (shown unquoted)."""
    return FieldError(error_type, field, f"{rendered}: {detail}" if detail else rendered)


def _immutable(field: str, value: Any) -> FieldError:
    return FieldError.invalid(field, value, "field is immutable")


# --- names, labels, ports, IPs (apimachinery util/validation) --------------------------------

def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = "".join(("" if i == 0 else " or ") + f"'{ex}', " for i, ex in enumerate(examples))
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = rf"{_DNS1123_LABEL_FMT}(\.{_DNS1123_LABEL_FMT})*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
_ENV_NAME_MSG = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_NON_NEGATIVE_MSG = "must be greater than or equal to 0"


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile(f"^{fmt}$")


_DNS1123_LABEL_RE = _full(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = _full(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = _full(_DNS1035_LABEL_FMT)
_QNAME_RE = _full(_QNAME_FMT)
_LABEL_VALUE_RE = _full(_LABEL_VALUE_FMT)
_CONFIG_KEY_RE = _full(_CONFIG_KEY_FMT)
_PERCENT_RE = _full(_PERCENT_FMT)
_PORT_NAME_CHARS_RE = re.compile(r"^[-a-z0-9]+$")


def dns1123_label_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            msgs.append("must not contain dots")
        else:
            msgs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return msgs


def dns1123_subdomain_errors(value: str) -> list[str]:
    msgs = [_max_len(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        msgs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return msgs


def dns1035_label_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL_RE.match(value):
        msgs.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return msgs


def qualified_name_errors(value: str) -> list[str]:
    parts = value.split("/")
    msgs: list[str] = []
    if len(parts) > 2:
        name_msg = _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        return [f"a qualified name {name_msg} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs.extend(f"prefix part {m}" for m in dns1123_subdomain_errors(prefix))
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append(f"name part {_max_len(63)}")
    if not _QNAME_RE.match(name):
        name_msg = _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        msgs.append(f"name part {name_msg}")
    return msgs


def label_value_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        examples = ("MyValue", "my_value", "12345")
        msgs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, *examples))
    return msgs


def port_name_errors(value: str) -> list[str]:
    """IANA_SVC_NAME rules (apimachinery `IsValidPortName`)."""
    msgs = ["must be no more than 15 characters"] if len(value) > 15 else []
    if not _PORT_NAME_CHARS_RE.match(value):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        msgs.append("must contain at least one letter (a-z)")
    if "--" in value:
        msgs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    return msgs


def config_key_errors(value: str) -> list[str]:
    msgs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY_RE.match(value):
        examples = ("key.name", "KEY_NAME", "key-name")
        msgs.append(_regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, *examples))
    if value == ".":
        msgs.append("must not be '.'")
    elif value == "..":
        msgs.append("must not be '..'")
    elif value.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def _is_port_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _invalid_each(field: str, value: Any, msgs: Iterable[str]) -> Errors:
    return [FieldError.invalid(field, value, m) for m in msgs]


def _check_port(field: str, value: Any) -> Errors:
    return [] if _is_port_number(value) else [FieldError.invalid(field, value, _PORT_RANGE_MSG)]


def _check_non_negative(field: str, value: Any) -> Errors:
    if isinstance(value, int) and value < 0:
        return [FieldError.invalid(field, value, _NON_NEGATIVE_MSG)]
    return []


def _check_one_of(field: str, value: Any, valid: list[str], *, required: bool = True) -> Errors:
    """Required when empty (if `required`), `Unsupported value` when not in `valid`."""
    if value in (None, ""):
        return [FieldError.required(field)] if required else []
    if value not in valid:
        return [FieldError.not_supported(field, value, sorted(valid))]
    return []


def _check_ip(field: str, value: Any) -> Errors:
    if _parse_ip(value) is None:
        return [FieldError.invalid(field, value, _IP_MSG)]
    return []


def _check_non_special_ip(field: str, value: str) -> Errors:
    """Reject the unspecified and link-local ranges (upstream `validateNonSpecialIP`).

    Deliberate difference: upstream also refuses the loopback range, but tinykube's host
    network mode puts cluster IPs, pod IPs and external IPs in 127.0.0.0/8 (every 127.x
    address routes to `lo`), so loopback addresses are accepted here.
    """
    ip = _parse_ip(value)
    if ip is None:
        return [FieldError.invalid(field, value, _IP_MSG)]
    if ip.is_unspecified:
        return [FieldError.invalid(field, value, f"may not be unspecified ({value})")]
    if ip.is_link_local:
        return [FieldError.invalid(
            field, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")]
    if ip.is_multicast and (ip in ipaddress.ip_network("224.0.0.0/24")
                            or ip in ipaddress.ip_network("ff02::/16")):
        return [FieldError.invalid(
            field, value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")]
    return []


def _check_port_num_or_name(field: str, value: Any) -> Errors:
    if isinstance(value, str):
        return _invalid_each(field, value, port_name_errors(value))
    return _check_port(field, value)


# --- metadata (apimachinery ValidateObjectMeta / ValidateObjectMetaUpdate) --------------------

_ANNOTATIONS_LIMIT = 256 * 1024


def validate_labels(labels: Any, field: str) -> Errors:
    errors: Errors = []
    for key, value in (labels or {}).items():
        errors += _invalid_each(field, key, qualified_name_errors(str(key)))
        errors += _invalid_each(field, value, label_value_errors(str(value)))
    return errors


def validate_annotations(annotations: Any, field: str) -> Errors:
    annotations = annotations or {}
    errors: Errors = []
    for key in annotations:
        errors += _invalid_each(field, key, qualified_name_errors(str(key).lower()))
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > _ANNOTATIONS_LIMIT:
        errors.append(FieldError("FieldValueTooLong", field,
                                 f"must have at most {_ANNOTATIONS_LIMIT} bytes"))
    return errors


NameCheck = Callable[[str], list[str]]


def _validate_meta(obj: Obj, *, namespaced: bool, name_check: NameCheck,
                   path: str = "metadata") -> Errors:
    meta = obj.get("metadata") or {}
    errors: Errors = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        errors.append(FieldError.required(f"{path}.name", "name or generateName is required"))
    elif name:
        errors += _invalid_each(f"{path}.name", name, name_check(name))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errors.append(FieldError.required(f"{path}.namespace"))
    elif namespaced:
        errors += _invalid_each(f"{path}.namespace", namespace, dns1123_label_errors(namespace))
    elif namespace:
        errors.append(FieldError.forbidden(f"{path}.namespace", "not allowed on this type"))
    errors += validate_labels(meta.get("labels"), f"{path}.labels")
    errors += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    return errors


_IMMUTABLE_META = ("name", "namespace", "uid", "creationTimestamp")


def _validate_meta_update(obj: Obj, old: Obj) -> Errors:
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    errors: Errors = []
    for key in _IMMUTABLE_META:
        new_value, old_value = meta.get(key) or "", old_meta.get(key) or ""
        skip_empty = key in ("uid", "creationTimestamp") and not new_value
        if new_value != old_value and not skip_empty:
            errors.append(_immutable(f"metadata.{key}", new_value))
    return errors


# --- label selectors -------------------------------------------------------------------------

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Obj, field: str) -> Errors:
    errors = validate_labels(sel.get("matchLabels"), f"{field}.matchLabels")
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        path = f"{field}.matchExpressions[{i}]"
        operator, values = expr.get("operator"), expr.get("values") or []
        if operator in ("In", "NotIn") and not values:
            errors.append(FieldError.required(
                f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist") and values:
            errors.append(FieldError.forbidden(
                f"{path}.values",
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        elif operator not in _SELECTOR_OPERATORS:
            errors.append(FieldError.invalid(f"{path}.operator", operator,
                                             "not a valid selector operator"))
        errors += _invalid_each(f"{path}.key", expr.get("key", ""),
                                qualified_name_errors(str(expr.get("key", ""))))
    return errors


def _selector_matches(sel: Obj, labels: Mapping[str, str] | None) -> bool:
    try:
        parsed = selectors.from_label_selector(sel)
    except (BadRequest, KeyError):
        return True  # already reported by validate_label_selector
    return selectors.match_labels(parsed, labels)


# --- pod spec --------------------------------------------------------------------------------

_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_RESTART_POLICIES = ["Always", "Never", "OnFailure"]
_DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_TERMINATION_MESSAGE_POLICIES = ["FallbackToLogsOnError", "File"]
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate",
                    "File", "FileOrCreate", "Socket"]
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)


def _validate_container_ports(ports: list[Obj], path: str) -> Errors:
    errors: Errors = []
    seen_names: set[str] = set()
    for i, port in enumerate(ports):
        idx = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = port_name_errors(name)
            if msgs:
                errors += _invalid_each(f"{idx}.name", name, msgs)
            elif name in seen_names:
                errors.append(FieldError.duplicate(f"{idx}.name", name))
            seen_names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errors.append(FieldError.required(f"{idx}.containerPort"))
        else:
            errors += _check_port(f"{idx}.containerPort", container_port)
        if port.get("hostPort"):
            errors += _check_port(f"{idx}.hostPort", port["hostPort"])
        errors += _check_one_of(f"{idx}.protocol", port.get("protocol"), _PROTOCOLS)
    return errors


def _validate_env(env: list[Obj], path: str) -> Errors:
    errors: Errors = []
    for i, var in enumerate(env):
        name = var.get("name") or ""
        if not name:
            errors.append(FieldError.required(f"{path}[{i}].name"))
        elif "=" in name or not all(" " <= ch <= "~" for ch in name):
            errors.append(FieldError.invalid(f"{path}[{i}].name", name, _ENV_NAME_MSG))
    return errors


def _validate_probe(probe: Obj, path: str, *, liveness_like: bool) -> Errors:
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    errors: Errors = []
    if not handlers:
        errors.append(FieldError.required(path, "must specify a handler type"))
    for extra in handlers[1:]:
        errors.append(FieldError.forbidden(f"{path}.{extra}",
                                           "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                "successThreshold", "failureThreshold"):
        errors += _check_non_negative(f"{path}.{key}", probe.get(key))
    success = probe.get("successThreshold")
    if liveness_like and isinstance(success, int) and success != 1:
        errors.append(FieldError.invalid(f"{path}.successThreshold", success, "must be 1"))
    return errors


def _validate_volume_mounts(container: Obj, path: str, volume_names: set[str]) -> Errors:
    errors: Errors = []
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or []):
        idx = f"{path}.volumeMounts[{i}]"
        name, mount_path = mount.get("name") or "", mount.get("mountPath") or ""
        if not name:
            errors.append(FieldError.required(f"{idx}.name"))
        elif name not in volume_names:
            errors.append(FieldError("FieldValueNotFound", f"{idx}.name", "", name, True))
        if not mount_path:
            errors.append(FieldError.required(f"{idx}.mountPath"))
        elif mount_path in mount_paths:
            errors.append(FieldError.invalid(f"{idx}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
    return errors


def _validate_container(container: Obj, path: str, volume_names: set[str]) -> Errors:
    errors: Errors = []
    image = container.get("image") or ""
    if not image:
        errors.append(FieldError.required(f"{path}.image"))
    elif image != image.strip():
        errors.append(FieldError.invalid(f"{path}.image", image,
                                         "must not have leading or trailing whitespace"))
    errors += _validate_container_ports(container.get("ports") or [], f"{path}.ports")
    errors += _validate_env(container.get("env") or [], f"{path}.env")
    errors += _validate_volume_mounts(container, path, volume_names)
    for key, liveness_like in (("livenessProbe", True), ("readinessProbe", False),
                               ("startupProbe", True)):
        if isinstance(container.get(key), dict):
            errors += _validate_probe(container[key], f"{path}.{key}", liveness_like=liveness_like)
    errors += _check_one_of(f"{path}.imagePullPolicy", container.get("imagePullPolicy"),
                            _PULL_POLICIES)
    errors += _check_one_of(f"{path}.terminationMessagePolicy",
                            container.get("terminationMessagePolicy"),
                            _TERMINATION_MESSAGE_POLICIES)
    return errors


def _validate_containers(containers: list[Obj], path: str, volume_names: set[str],
                         seen_names: set[str]) -> Errors:
    errors: Errors = []
    for i, container in enumerate(containers):
        idx = f"{path}[{i}]"
        name = container.get("name") or ""
        if not name:
            errors.append(FieldError.required(f"{idx}.name"))
        else:
            errors += _invalid_each(f"{idx}.name", name, dns1123_label_errors(name))
            if name in seen_names:
                errors.append(FieldError.duplicate(f"{idx}.name", name))
            seen_names.add(name)
        errors += _validate_container(container, idx, volume_names)
    return errors


def _validate_volume_source(volume: Obj, idx: str) -> Errors:
    sources = [s for s in _VOLUME_SOURCES if volume.get(s) is not None]
    if not sources:
        return [FieldError.required(idx, "must specify a volume type")]
    errors = [FieldError.forbidden(f"{idx}.{s}", "may not specify more than 1 volume type")
              for s in sources[1:]]
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        if not host_path.get("path"):
            errors.append(FieldError.required(f"{idx}.hostPath.path"))
        errors += _check_one_of(f"{idx}.hostPath.type", host_path.get("type"), _HOST_PATH_TYPES,
                                required=False)
    return errors


def _validate_volumes(volumes: list[Obj], path: str) -> tuple[Errors, set[str]]:
    errors: Errors = []
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        idx = f"{path}[{i}]"
        name = volume.get("name") or ""
        if not name:
            errors.append(FieldError.required(f"{idx}.name"))
        else:
            errors += _invalid_each(f"{idx}.name", name, dns1123_label_errors(name))
            if name in names:
                errors.append(FieldError.duplicate(f"{idx}.name", name))
            names.add(name)
        errors += _validate_volume_source(volume, idx)
    return errors, names


def validate_pod_spec(spec: Obj, path: str) -> Errors:
    """`ValidatePodSpec`: containers, volumes and the enumerated pod-level fields."""
    errors, volume_names = _validate_volumes(spec.get("volumes") or [], f"{path}.volumes")
    containers = spec.get("containers") or []
    container_names: set[str] = set()
    if not containers:
        errors.append(FieldError.required(f"{path}.containers"))
    errors += _validate_containers(containers, f"{path}.containers", volume_names,
                                   container_names)
    errors += _validate_containers(spec.get("initContainers") or [], f"{path}.initContainers",
                                   volume_names, container_names)
    errors += _check_one_of(f"{path}.restartPolicy", spec.get("restartPolicy"), _RESTART_POLICIES)
    errors += _check_one_of(f"{path}.dnsPolicy", spec.get("dnsPolicy"), _DNS_POLICIES)
    errors += _check_non_negative(f"{path}.terminationGracePeriodSeconds",
                                  spec.get("terminationGracePeriodSeconds"))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errors.append(FieldError.invalid(f"{path}.activeDeadlineSeconds", deadline,
                                         "must be between 1 and 2147483647, inclusive"))
    for i, gate in enumerate(spec.get("readinessGates") or []):
        condition = gate.get("conditionType") or ""
        errors += _invalid_each(f"{path}.readinessGates[{i}].conditionType", condition,
                                qualified_name_errors(condition))
    return errors


def _validate_template(spec: Obj, path: str) -> Errors:
    """A workload's pod template: metadata labels/annotations and the pod spec."""
    template = spec.get("template")
    if not isinstance(template, dict):
        return [FieldError.required(path)]
    meta = template.get("metadata") or {}
    errors = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errors += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    errors += validate_pod_spec(template.get("spec") or {}, f"{path}.spec")
    template_spec = template.get("spec") or {}
    restart_policy = template_spec.get("restartPolicy")
    if restart_policy and restart_policy != "Always":
        errors.append(FieldError.not_supported(f"{path}.spec.restartPolicy", restart_policy,
                                               ["Always"]))
    if template_spec.get("activeDeadlineSeconds") is not None:
        errors.append(FieldError.invalid(f"{path}.spec.activeDeadlineSeconds",
                                         template_spec["activeDeadlineSeconds"],
                                         "must not be specified"))
    return errors


# --- Pod -------------------------------------------------------------------------------------

_POD_UPDATABLE = ",".join((
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
))


def _validate_pod(pod: Obj) -> Errors:
    return validate_pod_spec(pod.get("spec") or {}, "spec")


def _munge_pod_spec(spec: Obj, old_spec: Obj) -> Obj:
    """`spec` with every field a pod update may change copied from `old_spec`."""
    munged: Obj = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        old_images = [c.get("image") for c in old_spec.get(key) or []]
        for container, image in zip(munged.get(key) or [], old_images, strict=False):
            container["image"] = image
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_tolerations = old_spec.get("tolerations") or []
    new_tolerations = munged.get("tolerations") or []
    if all(t in new_tolerations for t in old_tolerations):
        munged["tolerations"] = old_spec.get("tolerations")
        if "tolerations" not in old_spec:
            munged.pop("tolerations", None)
    if not old_spec.get("nodeName") and munged.get("nodeName"):
        munged.pop("nodeName")  # binding: nodeName may be set once
    return munged


def _validate_pod_update(pod: Obj, old: Obj) -> Errors:
    spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
    munged = _munge_pod_spec(spec, old_spec)
    if munged == old_spec:
        return []
    changed = sorted(k for k in set(munged) | set(old_spec) if munged.get(k) != old_spec.get(k))
    summary = "\n".join(f"  spec.{key}" for key in changed)
    return [FieldError.forbidden(
        "spec", f"pod updates may not change fields other than {_POD_UPDATABLE}\n{summary}")]


# --- Service ---------------------------------------------------------------------------------

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
        errors += _invalid_each(f"{idx}.name", name, dns1123_label_errors(name))
        if name in seen_names:
            errors.append(FieldError.duplicate(f"{idx}.name", name))
        seen_names.add(name)
    errors += _check_port(f"{idx}.port", port.get("port", 0))
    errors += _check_one_of(f"{idx}.protocol", port.get("protocol"), _PROTOCOLS)
    errors += _check_port_num_or_name(f"{idx}.targetPort", port.get("targetPort", 0))
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
            errors.append(_raw("FieldValueDuplicate", idx, _go_service_port_key(*key)))
        keys.add(key)
    return errors


def _validate_service_type(spec: Obj) -> Errors:
    svc_type, cluster_ips = spec.get("type"), _cluster_ips(spec)
    headless = bool(cluster_ips) and cluster_ips[0] == "None"
    errors = _check_one_of("spec.type", svc_type, _SERVICE_TYPES)
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
        errors += _invalid_each("spec.externalName", cname, dns1123_subdomain_errors(cname))
    return errors


def _validate_cluster_ips(spec: Obj) -> Errors:
    errors: Errors = []
    cluster_ips = _cluster_ips(spec)
    if spec.get("clusterIP") and spec.get("clusterIPs") and spec["clusterIP"] != cluster_ips[0]:
        errors.append(_raw("FieldValueInvalid", "spec.clusterIPs", _go_strings(cluster_ips),
                           "first value must match `clusterIP`"))
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            continue
        errors += _check_ip(f"spec.clusterIPs[{i}]", ip)
    return errors


def _validate_session_affinity(spec: Obj) -> Errors:
    affinity = spec.get("sessionAffinity")
    errors = _check_one_of("spec.sessionAffinity", affinity, _SESSION_AFFINITIES)
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
        errors += _check_one_of(f"spec.ipFamilies[{i}]", family, _IP_FAMILIES)
        if family in (spec.get("ipFamilies") or [])[:i]:
            errors.append(FieldError.duplicate(f"spec.ipFamilies[{i}]", family))
    errors += _check_one_of("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                            _IP_FAMILY_POLICIES, required=False)
    if svc_type != "ExternalName":
        errors += _check_one_of("spec.internalTrafficPolicy", spec.get("internalTrafficPolicy"),
                                _TRAFFIC_POLICIES)
    externally_accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    external_policy = spec.get("externalTrafficPolicy")
    if externally_accessible:
        errors += _check_one_of("spec.externalTrafficPolicy", external_policy, _TRAFFIC_POLICIES)
    elif external_policy:
        errors.append(FieldError.invalid("spec.externalTrafficPolicy", external_policy,
                                         "may only be set for externally-accessible services"))
    return errors


def _validate_service(svc: Obj) -> Errors:
    spec = svc.get("spec") or {}
    errors = _validate_service_type(spec)
    errors += _validate_service_ports(spec)
    if spec.get("selector"):
        errors += validate_labels(spec["selector"], "spec.selector")
    errors += _validate_session_affinity(spec)
    errors += _validate_cluster_ips(spec)
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errors += _check_non_special_ip(f"spec.externalIPs[{i}]", ip)
    errors += _validate_service_policies(spec)
    return errors


def _validate_service_update(svc: Obj, old: Obj) -> Errors:
    """Primary clusterIP is immutable unless either side is ExternalName (upstream rule)."""
    spec, old_spec = svc.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    new_ips, old_ips = _cluster_ips(spec), _cluster_ips(old_spec)
    if not old_ips or (new_ips[:1] == ["None"] and old_ips[:1] == ["None"]):
        return []
    rendered = _go_strings(new_ips)
    if not new_ips:
        return [_raw("FieldValueInvalid", "spec.clusterIPs[0]", rendered,
                     "primary clusterIP can not be unset")]
    errors: Errors = []
    for i, (new_ip, old_ip) in enumerate(zip(new_ips, old_ips, strict=False)):
        if new_ip != old_ip and (i == 0 or len(new_ips) == len(old_ips)):
            errors.append(_raw("FieldValueInvalid", f"spec.clusterIPs[{i}]", rendered,
                               "may not change once set"))
    return errors


# --- apps/v1 ---------------------------------------------------------------------------------

def _validate_selector_and_template(spec: Obj, kind_word: str) -> Errors:
    selector = spec.get("selector")
    errors = _check_non_negative("spec.replicas", spec.get("replicas"))
    selector_errors: Errors = []
    if not isinstance(selector, dict):
        errors.append(FieldError.required("spec.selector"))
    else:
        selector_errors = validate_label_selector(selector, "spec.selector")
        errors += selector_errors
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errors.append(_raw("FieldValueInvalid", "spec.selector", _go_selector(selector),
                               f"empty selector is invalid for {kind_word}"))
    template = spec.get("template")
    if isinstance(selector, dict) and isinstance(template, dict) and not selector_errors and (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        labels = (template.get("metadata") or {}).get("labels")
        if not _selector_matches(selector, labels):
            errors.append(_raw("FieldValueInvalid", "spec.template.metadata.labels",
                               _go_map(labels or {}),
                               "`selector` does not match template `labels`"))
    errors += _validate_template(spec, "spec.template")
    return errors


def _validate_sts_update_strategy(strategy: Obj) -> Errors:
    strategy_type, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if not strategy_type:
        return [FieldError.required("spec.updateStrategy")]
    if strategy_type == "OnDelete" and rolling is not None:
        partition = rolling.get("partition", 0)
        rendered = (f"apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, "
                    "MaxUnavailable:(*intstr.IntOrString)(nil)}")
        return [_raw("FieldValueInvalid", "spec.updateStrategy.rollingUpdate", rendered,
                     "only allowed for updateStrategy 'RollingUpdate'")]
    if strategy_type == "RollingUpdate":
        return _check_non_negative("spec.updateStrategy.rollingUpdate.partition",
                                   (rolling or {}).get("partition"))
    if strategy_type != "OnDelete":
        rendered = (f"apps.StatefulSetUpdateStrategy{{Type:{_go_str(strategy_type)}, "
                    "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}")
        return [_raw("FieldValueInvalid", "spec.updateStrategy", rendered,
                     "must be 'RollingUpdate' or 'OnDelete'")]
    return []


def _validate_statefulset(sts: Obj) -> Errors:
    spec = sts.get("spec") or {}
    errors: Errors = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        errors.append(FieldError.required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errors.append(FieldError.invalid("spec.podManagementPolicy", policy,
                                         "must be 'OrderedReady' or 'Parallel'"))
    errors += _validate_sts_update_strategy(spec.get("updateStrategy") or {})
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for key in ("whenDeleted", "whenScaled"):
        value = retention.get(key)
        if value and value not in ("Retain", "Delete"):
            errors.append(FieldError.not_supported(
                f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, ["Retain", "Delete"]))
    errors += _check_non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errors += _validate_selector_and_template(spec, "statefulset")
    return errors


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
_STS_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def _validate_statefulset_update(sts: Obj, old: Obj) -> Errors:
    spec, old_spec = sts.get("spec") or {}, old.get("spec") or {}
    frozen_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
    frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
    if frozen_new != frozen_old:
        return [FieldError.forbidden("spec", _STS_FORBIDDEN)]
    return []


def _int_or_percent_value(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _PERCENT_RE.match(value):
        return int(value[:-1])
    return None


def _validate_int_or_percent(value: Any, field: str) -> Errors:
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            return [_raw("FieldValueInvalid", field, value,
                         _regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%"))]
        return []
    return _check_non_negative(field, value)


def _validate_rolling_update(rolling: Obj, path: str) -> Errors:
    max_unavailable, max_surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errors = _validate_int_or_percent(max_unavailable, f"{path}.maxUnavailable")
    errors += _validate_int_or_percent(max_surge, f"{path}.maxSurge")
    if _int_or_percent_value(max_unavailable) == 0 and _int_or_percent_value(max_surge) == 0:
        errors.append(_raw("FieldValueInvalid", f"{path}.maxUnavailable", str(max_unavailable),
                           "may not be 0 when `maxSurge` is 0"))
    if isinstance(max_unavailable, str) and (_int_or_percent_value(max_unavailable) or 0) > 100:
        errors.append(_raw("FieldValueInvalid", f"{path}.maxUnavailable", max_unavailable,
                           "must not be greater than 100%"))
    return errors


def _validate_deployment_strategy(strategy: Obj) -> Errors:
    strategy_type, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if strategy_type == "Recreate":
        if rolling is not None:
            return [FieldError.forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if strategy_type == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [FieldError.required("spec.strategy.rollingUpdate",
                                        "this should be defaulted and never be nil")]
        return _validate_rolling_update(rolling, "spec.strategy.rollingUpdate")
    rendered_rolling = "(*apps.RollingUpdateDeployment)(nil)" if rolling is None else \
        "(*apps.RollingUpdateDeployment)(0xc000000000)"
    rendered = (f"apps.DeploymentStrategy{{Type:{_go_str(strategy_type or '')}, "
                f"RollingUpdate:{rendered_rolling}}}")
    detail = 'supported values: "Recreate", "RollingUpdate"'
    return [_raw("FieldValueNotSupported", "spec.strategy", rendered, detail)]


def _validate_deployment(deploy: Obj) -> Errors:
    spec = deploy.get("spec") or {}
    errors = _validate_selector_and_template(spec, "deployment")
    errors += _validate_deployment_strategy(spec.get("strategy") or {})
    for key in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        errors += _check_non_negative(f"spec.{key}", spec.get(key))
    deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if isinstance(deadline, int) and deadline <= min_ready:
        errors.append(FieldError.invalid("spec.progressDeadlineSeconds", deadline,
                                         "must be greater than minReadySeconds"))
    return errors


def _validate_replicaset(rs: Obj) -> Errors:
    spec = rs.get("spec") or {}
    errors = _validate_selector_and_template(spec, "deployment")  # upstream's wording, sic
    errors += _check_non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return errors


def _validate_selector_update(obj: Obj, old: Obj) -> Errors:
    selector = (obj.get("spec") or {}).get("selector")
    if selector != (old.get("spec") or {}).get("selector"):
        return [_raw("FieldValueInvalid", "spec.selector", _go_selector(selector),
                     "field is immutable")]
    return []


# --- data-holding and discovery kinds ----------------------------------------------------------

def _validate_data_keys(obj: Obj) -> Errors:
    errors: Errors = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    for section, values in (("data", data), ("binaryData", binary)):
        for key in values:
            errors += _invalid_each(f"{section}[{key}]", key, config_key_errors(str(key)))
    for key in binary:
        if key in data:
            errors.append(FieldError.invalid(f"data[{key}]", key,
                                             "duplicate of key present in binaryData"))
    return errors


def _validate_immutable_data(obj: Obj, old: Obj) -> Errors:
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


def _validate_secret_update(secret: Obj, old: Obj) -> Errors:
    errors = _validate_immutable_data(secret, old)
    if secret.get("type") != old.get("type"):
        errors.insert(0, _immutable("type", secret.get("type")))
    return errors


_ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _validate_slice_address(address: Any, address_type: str, field: str) -> Errors:
    if address_type == "FQDN":
        return _invalid_each(field, address, dns1123_subdomain_errors(str(address)))
    ip = _parse_ip(address)
    wanted = 4 if address_type == "IPv4" else 6
    if ip is None or ip.version != wanted:
        return [FieldError.invalid(field, address, f"must be a valid {address_type} address")]
    return []


def _validate_endpointslice(slice_: Obj) -> Errors:
    address_type = slice_.get("addressType")
    errors = _check_one_of("addressType", address_type, _ADDRESS_TYPES)
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
            errors += _invalid_each(f"endpoints[{i}].hostname", hostname,
                                    dns1123_label_errors(hostname))
    errors += _validate_slice_ports(slice_.get("ports") or [])
    return errors


def _validate_slice_ports(ports: list[Obj]) -> Errors:
    errors: Errors = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if name:
            errors += _invalid_each(f"ports[{i}].name", name, dns1123_label_errors(name))
        if name in names:
            errors.append(FieldError.duplicate(f"ports[{i}].name", name))
        names.add(name)
        if port.get("port") is not None:
            errors += _check_port(f"ports[{i}].port", port["port"])
        errors += _check_one_of(f"ports[{i}].protocol", port.get("protocol"), _PROTOCOLS)
    return errors


def _validate_endpointslice_update(slice_: Obj, old: Obj) -> Errors:
    if slice_.get("addressType") != old.get("addressType"):
        return [_immutable("addressType", slice_.get("addressType"))]
    return []


def _validate_endpoints(endpoints: Obj) -> Errors:
    errors: Errors = []
    for i, subset in enumerate(endpoints.get("subsets") or []):
        path = f"subsets[{i}]"
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(subset.get(key) or []):
                errors += _check_non_special_ip(f"{path}.{key}[{j}].ip", address.get("ip"))
                if address.get("hostname"):
                    errors += _invalid_each(f"{path}.{key}[{j}].hostname", address["hostname"],
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
        errors += _invalid_each(f"{path}.name", name, dns1123_label_errors(name))
    errors += _check_port(f"{path}.port", port.get("port", 0))
    errors += _check_one_of(f"{path}.protocol", port.get("protocol"), _PROTOCOLS)
    return errors


# --- dispatch --------------------------------------------------------------------------------

Validator = Callable[[Obj], Errors]
UpdateValidator = Callable[[Obj, Obj], Errors]

_NAME_CHECKS: dict[str, NameCheck] = {
    "Service": dns1035_label_errors,
    "Namespace": dns1123_label_errors,
}

_VALIDATORS: dict[str, Validator] = {
    "Pod": _validate_pod,
    "Service": _validate_service,
    "StatefulSet": _validate_statefulset,
    "Deployment": _validate_deployment,
    "ReplicaSet": _validate_replicaset,
    "ConfigMap": _validate_data_keys,
    "Secret": _validate_data_keys,
    "EndpointSlice": _validate_endpointslice,
    "Endpoints": _validate_endpoints,
}

_UPDATE_VALIDATORS: dict[str, UpdateValidator] = {
    "Pod": _validate_pod_update,
    "Service": _validate_service_update,
    "StatefulSet": _validate_statefulset_update,
    "Deployment": _validate_selector_update,
    "ReplicaSet": _validate_selector_update,
    "ConfigMap": _validate_immutable_data,
    "Secret": _validate_secret_update,
    "EndpointSlice": _validate_endpointslice_update,
}


def _is_namespaced(kind: str) -> bool:
    for resource in resources.preferred():
        if resource.kind == kind:
            return resource.namespaced
    return True


def validate(kind: str, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """Field errors for creating (`old is None`) or updating a defaulted `kind` object."""
    errors: Errors = []
    if old is not None:
        errors += _validate_meta_update(obj, old)
        update_check = _UPDATE_VALIDATORS.get(kind)
        if update_check is not None:
            errors += update_check(obj, old)
    errors += _validate_meta(obj, namespaced=_is_namespaced(kind),
                             name_check=_NAME_CHECKS.get(kind, dns1123_subdomain_errors))
    check = _VALIDATORS.get(kind)
    if check is not None:
        errors += check(obj)
    return _dedupe(errors)


def _dedupe(errors: Errors) -> Errors:
    """Drop repeated messages, as `field.ErrorList.ToAggregate` does."""
    seen: set[str] = set()
    unique: Errors = []
    for error in errors:
        text = str(error)
        if text not in seen:
            seen.add(text)
            unique.append(error)
    return unique
