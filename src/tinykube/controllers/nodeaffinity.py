"""Node selector terms (`NodeSelectorTerm`) against a node's labels, as the scheduler and the
volume binder read them: a term matches when all its `matchExpressions` and `matchFields` do
(an empty term matches no node), a selector when any term does (an empty list of terms
matches every node)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]


def match_expression(labels: Mapping[str, str], expr: Obj) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def terms_match(labels: Mapping[str, str], terms: Sequence[Obj],
                fields: Mapping[str, str] | None = None) -> bool:
    """Whether any term matches; `fields` are the node's selectable fields (`metadata.name`)
    for `matchFields`, as DaemonSet pods are pinned."""
    if not terms:
        return True
    return any(_term_matches(labels, fields or {}, term) for term in terms)


def _term_matches(labels: Mapping[str, str], fields: Mapping[str, str], term: Obj) -> bool:
    expressions, field_terms = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not field_terms:
        return False  # an empty term matches no node, as upstream
    return (all(match_expression(labels, e) for e in expressions)
            and all(match_expression(fields, f) for f in field_terms))


def node_labels(node: Obj) -> Mapping[str, str]:
    return node.get("metadata", {}).get("labels") or {}
