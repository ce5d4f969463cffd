"""ObjectMeta and label selectors, as apimachinery validates them.

Follows `ValidateObjectMeta`, `ValidateObjectMetaUpdate` and `ValidateLabelSelector`. Every kind
goes through `validate_meta` (name, namespace, labels, annotations) on create and
`validate_meta_update` (immutable name, namespace, uid, creationTimestamp) on update.
`selector_matches` (`api.selectors`'s, re-exported) is the lenient match used to compare a
workload's selector with its template's labels: a selector that does not parse has already
been reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.selectors import selector_matches as selector_matches  # re-exported
from tinykube.api.validation.names import (
    Errors,
    Obj,
    dns1123_label_errors,
    invalid_each,
    label_value_errors,
    qualified_name_errors,
)
from tinykube.api.validation.render import immutable

_ANNOTATIONS_LIMIT = 256 * 1024


def validate_labels(labels: Any, field: str) -> Errors:
    errors: Errors = []
    for key, value in (labels or {}).items():
        errors += invalid_each(field, key, qualified_name_errors(str(key)))
        errors += invalid_each(field, value, label_value_errors(str(value)))
    return errors


def validate_annotations(annotations: Any, field: str) -> Errors:
    annotations = annotations or {}
    errors: Errors = []
    for key in annotations:
        errors += invalid_each(field, key, qualified_name_errors(str(key).lower()))
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > _ANNOTATIONS_LIMIT:
        errors.append(FieldError.too_long(field, "", _ANNOTATIONS_LIMIT))
    return errors


NameCheck = Callable[[str], list[str]]


def validate_meta(obj: Obj, *, namespaced: bool, name_check: NameCheck,
                  path: str = "metadata") -> Errors:
    meta = obj.get("metadata") or {}
    errors: Errors = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        errors.append(FieldError.required(f"{path}.name", "name or generateName is required"))
    elif name:
        errors += invalid_each(f"{path}.name", name, name_check(name))
    namespace = meta.get("namespace") or ""
    if namespaced and not namespace:
        errors.append(FieldError.required(f"{path}.namespace"))
    elif namespaced:
        errors += invalid_each(f"{path}.namespace", namespace, dns1123_label_errors(namespace))
    elif namespace:
        errors.append(FieldError.forbidden(f"{path}.namespace", "not allowed on this type"))
    errors += validate_labels(meta.get("labels"), f"{path}.labels")
    errors += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    return errors


_IMMUTABLE_META = ("name", "namespace", "uid", "creationTimestamp")


def validate_meta_update(obj: Obj, old: Obj) -> Errors:
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    errors: Errors = []
    for key in _IMMUTABLE_META:
        new_value, old_value = meta.get(key) or "", old_meta.get(key) or ""
        skip_empty = key in ("uid", "creationTimestamp") and not new_value
        if new_value != old_value and not skip_empty:
            errors.append(immutable(f"metadata.{key}", new_value))
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
        errors += invalid_each(f"{path}.key", expr.get("key", ""),
                               qualified_name_errors(str(expr.get("key", ""))))
    return errors


