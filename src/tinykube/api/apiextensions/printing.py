"""The Table of a custom resource: `additionalPrinterColumns`, as kube's CRD table convertor.

Columns are NAME, then the CRD version's columns in order (each with its type, format,
description and priority); a version without columns gets NAME and AGE
(`.metadata.creationTimestamp`, a date). Cells evaluate each column's JSONPath (the simple
subset CRDs use: `.spec.replicas`, `.status.conditions[0].type`, `.metadata.labels['a/b']`,
optionally wrapped in `{}`): a `string` cell is the value's text (JSON for lists and
objects), a `date` cell an age ("5m"), the other types the value if it is of that type; a path
that finds nothing, or a value of another type, gives an empty cell (`nil`), which kubectl
prints as `<none>`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tinykube.api.apiextensions.model import CustomKind
from tinykube.api.printers.base import DESC_CREATED, NAME_COLUMN, Cell, Column, Printer, name_of
from tinykube.api.printers.duration import translate_timestamp

_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
        "description": DESC_CREATED}


def _steps(path: str) -> list[str | int] | None:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    steps: list[str | int] = []
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return None
        name, index, quoted, double = match.groups()
        steps.append(int(index) if index is not None else (name or quoted or double or ""))
        position = match.end()
    return steps


def evaluate(path: str, obj: Any) -> Any:
    """The value at a simple JSONPath, or None."""
    steps = _steps(path)
    if steps is None:
        return None
    node = obj
    for step in steps:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
        else:
            node = node.get(step) if isinstance(node, Mapping) else None
        if node is None:
            return None
    return node


def _cell(column: Mapping[str, Any], obj: Mapping[str, Any], now: datetime) -> Cell:
    """kube's tableconvertor: a `string` column prints the value as JSONPath prints it (text
    for a string, JSON otherwise); the other types keep a value of their type, else nil."""
    value = evaluate(str(column.get("jsonPath", "")), obj)
    if value is None:
        return None
    kind = column.get("type", "string")
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if kind == "date":
        return translate_timestamp(value, now) if isinstance(value, str) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind == "integer":
        return int(value) if float(value).is_integer() else None
    return value  # number


@functools.lru_cache(maxsize=256)
def _printer(columns_json: str) -> Printer:
    defined = json.loads(columns_json) or [_AGE]
    columns = (NAME_COLUMN, *(Column(str(c.get("name", "")), str(c.get("description", "")),
                                     type=str(c.get("type", "string")),
                                     format=str(c.get("format", "")),
                                     priority=int(c.get("priority", 0) or 0))
                              for c in defined))

    def cells(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
        return [name_of(obj), *(_cell(c, obj, now) for c in defined)]

    return Printer(columns, cells)


def printer(custom: CustomKind) -> Printer:
    return _printer(json.dumps(list(custom.columns), sort_keys=True))
