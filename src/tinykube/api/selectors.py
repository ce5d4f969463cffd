"""Label and field selectors: parse once, match many objects.

Label selectors follow apimachinery's grammar: a comma-separated list of requirements, each one of
`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists) and `!k` (does not exist).
Field selectors support `=`, `==` and `!=` on the fields kube-apiserver indexes for each kind
(`metadata.name`, `metadata.namespace`, plus the per-kind ones below). Terms are a set: kubectl
sends them in random order (kubectl-compat.md §0.16).

Both parse into a tuple of `Requirement`s whose `matches(values)` takes a lookup function, so the
same code matches labels (a dict) and fields (a getter per field path).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from tinykube.api.errors import BadRequest

_OPS_IN_ORDER = ("!=", "==", "=")
_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, lookup: Callable[[str], str | None]) -> bool:
        value = lookup(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "!":
            return value is None
        if self.op == "=":
            return value is not None and value in self.values
        if self.op == "in":
            return value is not None and value in self.values
        if self.op == "!=":
            return value is None or value not in self.values
        return value is None or value not in self.values  # notin


Selector = tuple[Requirement, ...]


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


def _parse_term(term: str, *, allow_sets: bool) -> Requirement:
    match = _SET_RE.match(term)
    if match and allow_sets:
        key, op, raw = match.groups()
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        return Requirement(key, op, values)
    for op in _OPS_IN_ORDER:
        if op in term:
            key, _, value = term.partition(op)
            key, value = key.strip(), value.strip()
            if not key:
                break
            return Requirement(key, "!=" if op == "!=" else "=", frozenset([value]))
    if allow_sets:
        if term.startswith("!") and term[1:].strip():
            return Requirement(term[1:].strip(), "!")
        if term and " " not in term and "(" not in term:
            return Requirement(term, "exists")
    raise BadRequest(f"unable to parse requirement: found '{term}', "
                     "expected: '=', '!=', '==', 'in', notin'")


def parse_labels(text: str | None) -> Selector:
    """Parse a `labelSelector` query value (empty or None selects everything)."""
    if not text:
        return ()
    return tuple(_parse_term(t, allow_sets=True) for t in _split_terms(text))


def parse_fields(text: str | None) -> Selector:
    """Parse a `fieldSelector` query value (only `=`, `==`, `!=`)."""
    if not text:
        return ()
    return tuple(_parse_term(t, allow_sets=False) for t in _split_terms(text))


def match_labels(selector: Selector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels.get) for req in selector)


def from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """Convert a `metav1.LabelSelector` (matchLabels + matchExpressions) into requirements."""
    if not sel:
        return ()
    reqs = [Requirement(k, "=", frozenset([v])) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""), "in")
        reqs.append(Requirement(expr["key"], op, frozenset(expr.get("values") or [])))
    return tuple(reqs)


def to_string(sel: Mapping[str, Any] | None) -> str:
    """Render a `metav1.LabelSelector` as the string form (`app=nginx,tier in (a,b)`)."""
    parts: list[str] = []
    for req in sorted(from_label_selector(sel), key=lambda r: r.key):
        if req.op == "=":
            parts.append(f"{req.key}={next(iter(req.values))}")
        elif req.op in ("in", "notin"):
            parts.append(f"{req.key} {req.op} ({','.join(sorted(req.values))})")
        elif req.op == "exists":
            parts.append(req.key)
        else:
            parts.append(f"!{req.key}")
    return ",".join(parts)


# --- field selectors -------------------------------------------------------------------------

def _get(obj: Mapping[str, Any], path: str) -> str | None:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    if node is None:
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
# Fields kube-apiserver accepts per kind (pkg/registry/*/strategy.go GetAttrs).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "Service": ("spec.clusterIP", "spec.type"),
}

_DEFAULTS = {"spec.hostNetwork": "false", "spec.unschedulable": "false"}


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    if path == "source":
        return _get(obj, "source.component")
    value = _get(obj, path)
    if value is None:
        # Absent fields compare as their zero value, as Go structs do.
        return _DEFAULTS.get(path, "")
    return value


# Cluster-scoped kinds whose field conversion lists metadata.name but not metadata.namespace.
_NAME_ONLY = frozenset({"Namespace", "Node"})


def check_fields(kind: str, selector: Selector, selectable: tuple[str, ...] = ()) -> None:
    """Refuse a field the kind does not support, with kube-apiserver's wording: kinds with
    their own field conversion say "field label not supported"; the rest use the default
    conversion, which names the two fields every kind has (and a custom resource's
    `selectableFields`)."""
    own = KIND_FIELDS.get(kind)
    common = (("metadata.name",) if kind in _NAME_ONLY else _COMMON_FIELDS) + selectable
    for req in selector:
        if own is None and req.key not in common:
            raise BadRequest(f'"{req.key}" is not a known field selector: only '
                             + ", ".join(f'"{f}"' for f in common))
        if own is not None and req.key not in common + own:
            raise BadRequest(f"field label not supported: {req.key}")


def match_fields(selector: Selector, obj: Mapping[str, Any]) -> bool:
    return all(req.matches(lambda path: field_value(obj, path)) for req in selector)


def selector_matches(sel: Mapping[str, Any], labels: Mapping[str, str] | None) -> bool:
    """A LabelSelector object's match of `labels`, lenient: a selector that does not parse
    matches (validation has reported it). Here rather than in `api.validation` so that a
    controller that matches (`controllers.volumematch`) does not import all of validation
    (~35 ms of `tinykube up`'s child process start)."""
    try:
        parsed = from_label_selector(sel)
    except (BadRequest, KeyError):
        return True  # already reported by validate_label_selector
    return match_labels(parsed, labels)
