"""What a pod asks of its node: kube's `resource.PodRequests`, as exact quantities.

A pod's request for a resource is the larger of
- what runs at the end: the sum over its app containers plus its sidecars (init containers with
  `restartPolicy: Always`, which keep running), and
- the peak of its init phase: each plain init container's request plus the sidecars started
  before it (init containers run one at a time, sidecars stay up once started),
plus `spec.overhead` (the RuntimeClass's cost). A container without a request for a resource
asks none of it (a limit alone was already copied into requests at defaulting, as kube does).

Values are `Fraction`s of the base unit (cores for `cpu`, bytes for `memory`), so sums are exact
and compare with a node's allocatable without rounding. The scheduler's NodeResourcesFit filter
and, through the same function, quota accounting use this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from tinykube.api import quantity

Obj = Mapping[str, Any]
Amounts = dict[str, Fraction]


def amounts(values: object) -> Amounts:
    """A `ResourceList` (`{"cpu": "500m"}`) as exact values; malformed entries are left out
    (validation refuses them before anything is stored)."""
    out: Amounts = {}
    for name, text in (values.items() if isinstance(values, Mapping) else ()):
        parsed = quantity.parse(text)
        if parsed is not None:
            out[str(name)] = parsed[0]
    return out


def _add(total: Amounts, more: Amounts) -> Amounts:
    return {name: total.get(name, Fraction(0)) + more.get(name, Fraction(0))
            for name in total.keys() | more.keys()}


def _max(one: Amounts, other: Amounts) -> Amounts:
    return {name: max(one.get(name, Fraction(0)), other.get(name, Fraction(0)))
            for name in one.keys() | other.keys()}


def _requests(container: Obj) -> Amounts:
    return amounts((container.get("resources") or {}).get("requests"))


def _containers(spec: Obj, field: str) -> Iterable[Obj]:
    return (c for c in spec.get(field) or [] if isinstance(c, Mapping))


def pod_requests(pod: Obj) -> Amounts:
    """The pod's effective request per resource (see the module docstring)."""
    spec = pod.get("spec") or {}
    running: Amounts = {}
    for container in _containers(spec, "containers"):
        running = _add(running, _requests(container))
    sidecars: Amounts = {}
    init_peak: Amounts = {}
    for container in _containers(spec, "initContainers"):
        if container.get("restartPolicy") == "Always":
            sidecars = _add(sidecars, _requests(container))
            init_peak = _max(init_peak, sidecars)
        else:
            init_peak = _max(init_peak, _add(sidecars, _requests(container)))
    return _add(_max(_add(running, sidecars), init_peak), amounts(spec.get("overhead")))
