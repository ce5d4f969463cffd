"""networking.k8s.io/v1 Ingress (`pkg/apis/networking/validation`).

An Ingress needs rules or a default backend; each HTTP path needs a `pathType` (Exact, Prefix
or ImplementationSpecific; the first two need an absolute path) and a backend that is either a
service (with a port name or number) or a resource. No ingress controller runs in tinykube: an
Ingress is stored and listed, and its status stays empty.
"""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.validation.names import Errors, Obj, check_port_num_or_name
from tinykube.api.validation.render import raw

_PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]


def _validate_backend(backend: Any, path: str) -> Errors:
    backend = backend if isinstance(backend, dict) else {}
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [FieldError.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return []
    if service is None:
        return [FieldError.invalid(path, "", "resource or service backend is required")]
    errors: Errors = []
    if not service.get("name"):
        errors.append(FieldError.required(f"{path}.service.name"))
    port = service.get("port") or {}
    if port.get("name") and port.get("number"):
        errors.append(FieldError.invalid(f"{path}.service.port", port.get("name"),
                                         "cannot set both port name & port number"))
    elif port.get("name"):
        errors += check_port_num_or_name(f"{path}.service.port.name", port["name"])
    elif port.get("number") is not None:
        errors += check_port_num_or_name(f"{path}.service.port.number", port["number"])
    else:
        errors.append(FieldError.invalid(f"{path}.service.port", "",
                                         "port name or number is required"))
    return errors


def _validate_path(item: Any, path: str) -> Errors:
    item = item if isinstance(item, dict) else {}
    path_type, value = item.get("pathType"), item.get("path") or ""
    errors: Errors = []
    if not path_type:
        errors.append(FieldError.required(f"{path}.pathType", "pathType must be specified"))
    elif path_type not in _PATH_TYPES:
        errors.append(FieldError.not_supported(f"{path}.pathType", path_type, _PATH_TYPES))
    elif path_type in ("Exact", "Prefix") and not value.startswith("/"):
        errors.append(FieldError.invalid(f"{path}.path", value, "must be an absolute path"))
    errors += _validate_backend(item.get("backend"), f"{path}.backend")
    return errors


def validate_ingress(ing: Obj) -> Errors:
    spec = ing.get("spec") or {}
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        rendered = "[]networking.IngressRule(nil)" if spec.get("rules") is None else \
            "[]networking.IngressRule{}"
        return [raw("FieldValueInvalid", "spec.rules", rendered,
                    "either `defaultBackend` or `rules` must be specified")]
    errors: Errors = []
    if spec.get("defaultBackend") is not None:
        errors += _validate_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        paths = ((rule or {}).get("http") or {}).get("paths") or []
        for j, item in enumerate(paths):
            errors += _validate_path(item, f"spec.rules[{i}].http.paths[{j}]")
    return errors
