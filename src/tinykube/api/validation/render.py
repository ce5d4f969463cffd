"""Go value rendering for error details, as upstream's `%#v` prints them.

Where upstream shows a Go value that is not a scalar (a label map, a selector, a `ServicePort`
key) it renders it with `%#v`; the `go_*` functions do the same and the error is built with the
rendered value already inside its detail (`raw`), because `FieldError` renders non-scalars as
JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tinykube.api.errors import FieldError


def go_str(value: Any) -> str:
    return json.dumps(str(value))


def go_map(value: Mapping[str, Any] | None) -> str:
    if value is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_str(k)}:{go_str(v)}" for k, v in sorted(value.items()))
    return "map[string]string{" + items + "}"


def go_strings(values: Iterable[Any] | None) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_str(v) for v in values) + "}"


def go_selector(sel: Mapping[str, Any] | None) -> str:
    sel = sel or {}
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered_exprs = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = [
            f"v1.LabelSelectorRequirement{{Key:{go_str(e.get('key', ''))}, "
            f"Operator:{go_str(e.get('operator', ''))}, Values:{go_strings(e.get('values'))}}}"
            for e in exprs
        ]
        rendered_exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return (
        f"v1.LabelSelector{{MatchLabels:{go_map(sel.get('matchLabels'))}, "
        f"MatchExpressions:{rendered_exprs}}}"
    )


def go_service_port_key(protocol: Any, port: Any) -> str:
    return (
        f'core.ServicePort{{Name:"", Protocol:{go_str(protocol)}, AppProtocol:(*string)(nil), '
        f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )


def raw(error_type: str, field: str, rendered: str, detail: str = "") -> FieldError:
    """A field error whose bad value is already rendered Go-style (shown unquoted)."""
    return FieldError(error_type, field, f"{rendered}: {detail}" if detail else rendered)


def immutable(field: str, value: Any) -> FieldError:
    return FieldError.invalid(field, value, "field is immutable")
