"""Tables of `metrics.k8s.io` (`kubectl get podmetrics`), as metrics-server converts them:
Name, then one column per resource (`cpu`, `memory`, sorted; a pod's summed over its
containers) and the Window its figures were measured over."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any

from tinykube.api import quantity
from tinykube.api.printers.base import Cell, Column, Printer, as_dict, as_list, get_path, name_of

_COLUMNS = (Column("Name", "Name of the resource", format="name"),
            Column("cpu", "", format="quantity"), Column("memory", "", format="quantity"),
            Column("Window", "", format="duration"))


def _sum(values: Iterable[Any]) -> str:
    total, form = Fraction(0), quantity.DECIMAL
    for value in values:
        parsed = quantity.parse(value)
        if parsed is not None:
            total, form = total + parsed[0], parsed[1]
    return quantity.canonical(total, form)


def _cells(usages: list[Mapping[str, Any]], obj: Mapping[str, Any]) -> list[Cell]:
    return [name_of(obj), _sum(u.get("cpu") for u in usages),
            _sum(u.get("memory") for u in usages), str(get_path(obj, "window") or "")]


def _node(obj: Mapping[str, Any], _now: datetime) -> list[Cell]:
    return _cells([as_dict(obj.get("usage"))], obj)


def _pod(obj: Mapping[str, Any], _now: datetime) -> list[Cell]:
    return _cells([as_dict(as_dict(c).get("usage")) for c in as_list(obj.get("containers"))],
                  obj)


METRICS_PRINTERS: dict[str, Printer] = {
    "NodeMetrics": Printer(_COLUMNS, _node),
    "PodMetrics": Printer(_COLUMNS, _pod),
}
