"""The building blocks every printer shares: columns, the `Printer` record and safe accessors.

Objects are plain JSON dicts in their served (v1) shape and may miss any field, so cells are
read through tolerant accessors (`get_path`, `name_of`, `age_of`, `as_int`, `as_list`,
`as_dict`) that fall back to an empty value instead of raising. Column descriptions for NAME
and AGE are the ObjectMeta swagger docs kube-apiserver sends; the rest are short free text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tinykube.api import selectors
from tinykube.api.printers.duration import translate_timestamp

Obj = dict[str, Any]
Cell = str | int | float | bool | None
RowFn = Callable[[Mapping[str, Any], datetime], list[Cell]]

NONE = "<none>"


UNSET = "<unset>"


# --- descriptions (ObjectMeta swagger docs; the rest are short free text) ----------------------

DESC_NAME = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
DESC_CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\n"
    "Populated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_DESC_CONTAINERS = "Names of each container in the template."
_DESC_IMAGES = "Images referenced by each container in the template."


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    description: str
    type: str = "string"
    format: str = ""
    priority: int = 0

    def definition(self) -> Obj:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


NAME_COLUMN = Column("Name", DESC_NAME, format="name")
AGE_COLUMN = Column("Age", DESC_CREATED)


@dataclasses.dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    cells: RowFn


def get_path(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def name_of(obj: Mapping[str, Any]) -> str:
    return str(get_path(obj, "metadata", "name") or "")


def age_of(obj: Mapping[str, Any], now: datetime) -> str:
    return translate_timestamp(get_path(obj, "metadata", "creationTimestamp"), now)


def as_int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: `k=v` sorted by key, `<none>` when empty."""
    pairs = sorted(as_dict(labels).items())
    return ",".join(f"{k}={v}" for k, v in pairs) or NONE


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: the selector string, `<none>` when it selects everything."""
    return selectors.to_string(as_dict(selector)) or NONE


def wide(name: str, description: str) -> Column:
    return Column(name, description, priority=1)


CONTAINERS_COLUMN = wide("Containers", _DESC_CONTAINERS)
IMAGES_COLUMN = wide("Images", _DESC_IMAGES)
