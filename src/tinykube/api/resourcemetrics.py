"""The resource metrics pipeline, as metrics-server runs it: kubelet figures in, usage out.

A kubelet's `/metrics/resource` (Prometheus text, `promtext`) holds cumulative counters and
gauges, each with the time it was read:

    node_cpu_usage_seconds_total 1234.5 1700000000123        (core-seconds since boot)
    node_memory_working_set_bytes 1.6e+09 1700000000123
    container_cpu_usage_seconds_total{container="c",namespace="ns",pod="p"} 0.25 1700000000120
    container_memory_working_set_bytes{container="c",namespace="ns",pod="p"} 5.2e+07 ...
    container_start_time_seconds{container="c",namespace="ns",pod="p"} 1.6999e+09
    pod_cpu_usage_seconds_total / pod_memory_working_set_bytes{namespace,pod}, resource_scrape_error

`decode` reads one scrape into a `Batch` of `Point`s (what metrics-server's decoder keeps:
node and container points; incomplete ones, with a zero CPU or memory figure, are dropped, a
pod with one such container entirely). `Storage` keeps the last two points of each node and
container, as metrics-server's storage does, and `usage` turns two points into what the
`metrics.k8s.io` API serves:

- CPU is a rate: (cpu_last - cpu_prev) / (t_last - t_prev), in nanocores; the `window` is
  t_last - t_prev, so one scrape is never enough. A container younger than the scrape period
  (but at least 10 s old) is measured from its start instead, with a CPU figure of 0 there.
- memory is the last working set (usage less inactive file pages), never a rate.

A restarted container (its start time not before the last point) starts over. Quantities are
printed as metrics-server prints them: CPU in `n` scaled to the largest exact suffix, memory
as a binary quantity (`50Mi`, `51204Ki`). The names of the Prometheus series live here, so the
node side (which writes them) and the API server (which reads them) agree.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from tinykube.api import promtext, quantity

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
# Series of the kubelet's resource metrics endpoint (its collectors/resource_metrics.go).
NODE_CPU = "node_cpu_usage_seconds_total"
NODE_MEMORY = "node_memory_working_set_bytes"
CONTAINER_CPU = "container_cpu_usage_seconds_total"
CONTAINER_MEMORY = "container_memory_working_set_bytes"
CONTAINER_START = "container_start_time_seconds"
POD_CPU = "pod_cpu_usage_seconds_total"
POD_MEMORY = "pod_memory_working_set_bytes"
SCRAPE_ERROR = "resource_scrape_error"
FRESH_CONTAINER_MIN = 10_000  # ms: younger containers wait for a second scrape

PodKey = tuple[str, str]  # (namespace, name)


@dataclasses.dataclass(frozen=True)
class Point:
    """One reading: when (ms since the epoch), cumulative CPU (ns), working set (bytes)."""
    timestamp: int
    cpu: int
    memory: int
    start: int = 0  # ms since the epoch; 0: not known


@dataclasses.dataclass
class Batch:
    node: Point | None = None
    pods: dict[PodKey, dict[str, Point]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Usage:
    cpu: int  # nanocores
    memory: int  # bytes
    timestamp: int  # ms
    window: int  # ms


# --- decoding ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Partial:
    timestamp: int = 0
    cpu: int = 0
    memory: int = 0
    start: int = 0

    def point(self) -> Point | None:
        if not self.timestamp or not self.cpu or not self.memory:
            return None
        return Point(self.timestamp, self.cpu, self.memory, self.start)


def _apply(partial: _Partial, sample: promtext.Sample, default_ms: int) -> None:
    stamp = sample.timestamp_ms or default_ms
    if sample.name in (NODE_CPU, CONTAINER_CPU):
        partial.cpu, partial.timestamp = int(sample.value * 1e9), stamp
    elif sample.name in (NODE_MEMORY, CONTAINER_MEMORY):
        partial.memory, partial.timestamp = int(sample.value), stamp
    elif sample.name == CONTAINER_START:
        partial.start = int(sample.value * 1000)


def decode(text: str, default_ms: int) -> Batch:
    """The node and container points of one scrape (promtext.ParseError if malformed);
    `default_ms` stands in for samples without a timestamp."""
    node = _Partial()
    containers: dict[PodKey, dict[str, _Partial]] = {}
    for sample in promtext.parse(text):
        if sample.name in (NODE_CPU, NODE_MEMORY):
            _apply(node, sample, default_ms)
        elif sample.name in (CONTAINER_CPU, CONTAINER_MEMORY, CONTAINER_START):
            labels = sample.labels
            key = (labels.get("namespace", ""), labels.get("pod", ""))
            partial = containers.setdefault(key, {}).setdefault(labels.get("container", ""),
                                                                _Partial())
            _apply(partial, sample, default_ms)
    batch = Batch(node=node.point())
    for key, partials in containers.items():
        points = {name: p.point() for name, p in partials.items()}
        if all(p is not None for p in points.values()):
            batch.pods[key] = {name: p for name, p in points.items() if p is not None}
    return batch


# --- two points -> usage ----------------------------------------------------------------------


def usage(last: Point, prev: Point) -> Usage | None:
    """The usage between two points of one node or container (None: they do not make one)."""
    window = last.timestamp - prev.timestamp
    if window <= 0 or last.cpu < prev.cpu or last.start < prev.start:
        return None
    rate = (last.cpu - prev.cpu) * 1000 // window  # ns per s = nanocores
    return Usage(cpu=rate, memory=last.memory, timestamp=last.timestamp, window=window)


def _previous(new: Point, last: Point | None, prev: Point | None, resolution_ms: int,
              *, container: bool) -> Point | None:
    """The point to measure `new` from, after metrics-server's storage rules."""
    age = new.timestamp - new.start
    if container and new.start and FRESH_CONTAINER_MIN <= age < resolution_ms:
        return dataclasses.replace(new, timestamp=new.start, cpu=0)
    if last is None or new.start >= last.timestamp:  # unseen, or restarted since
        return None
    if new.timestamp > last.timestamp:
        return last
    if prev is not None and prev.timestamp < new.timestamp:
        return prev
    return None


@dataclasses.dataclass
class _NodeState:
    last: Batch
    prev_node: Point | None
    prev_pods: dict[PodKey, dict[str, Point]]


class Storage:
    """The last two points of every node and container, per node; `resolution` is the
    scrape period in seconds."""

    def __init__(self, resolution: float) -> None:
        self.resolution_ms = int(resolution * 1000)
        self._nodes: dict[str, _NodeState] = {}
        self._pod_node: dict[PodKey, str] = {}

    def __repr__(self) -> str:
        return f"Storage(nodes={len(self._nodes)}, pods={len(self._pod_node)})"

    def store(self, node: str, batch: Batch) -> None:
        """Keep a node's new scrape; its pods not in it are forgotten."""
        old = self._nodes.get(node)
        last = old.last if old else Batch()
        prev_node = None
        if batch.node is not None:
            prev_node = _previous(batch.node, last.node, old.prev_node if old else None,
                                  self.resolution_ms, container=False)
        prev_pods: dict[PodKey, dict[str, Point]] = {}
        for key, containers in batch.pods.items():
            old_last, old_prev = last.pods.get(key, {}), old.prev_pods.get(key, {}) if old \
                else {}
            prevs = {name: p for name, point in containers.items()
                     if (p := _previous(point, old_last.get(name), old_prev.get(name),
                                        self.resolution_ms, container=True)) is not None}
            if prevs:
                prev_pods[key] = prevs
        for key in last.pods:
            if self._pod_node.get(key) == node:
                del self._pod_node[key]
        self._pod_node.update(dict.fromkeys(batch.pods, node))
        self._nodes[node] = _NodeState(batch, prev_node, prev_pods)

    def nodes(self) -> set[str]:
        return set(self._nodes)

    def forget(self, node: str) -> None:
        state = self._nodes.pop(node, None)
        for key in state.last.pods if state else ():
            if self._pod_node.get(key) == node:
                del self._pod_node[key]

    def node(self, name: str) -> Usage | None:
        state = self._nodes.get(name)
        if state is None or state.last.node is None or state.prev_node is None:
            return None
        return usage(state.last.node, state.prev_node)

    def pod(self, key: PodKey) -> dict[str, Usage] | None:
        """Every container's usage, or None unless each container of the pod has one."""
        state = self._nodes.get(self._pod_node.get(key, ""))
        if state is None:
            return None
        last, prev = state.last.pods.get(key, {}), state.prev_pods.get(key, {})
        if not last or last.keys() - prev.keys():
            return None
        usages = {name: u for name, point in last.items()
                  if (u := usage(point, prev[name])) is not None}
        return usages or None


# --- API objects ------------------------------------------------------------------------------


def cpu_quantity(nanocores: int) -> str:
    return quantity.canonical(Fraction(nanocores, 10**9), quantity.DECIMAL)


def memory_quantity(size: int) -> str:
    return quantity.canonical(Fraction(size), quantity.BINARY)


def go_duration(ms: int) -> str:
    """A millisecond duration as Go's `time.Duration.String()` prints it (`15.012s`,
    `1m5s`, `0s`), which is how `metav1.Duration` marshals."""
    if ms == 0:
        return "0s"
    hours, rest = divmod(abs(ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".")
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return ("-" if ms < 0 else "") + text + f"{seconds}s"


def _time(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _resources(figures: Usage) -> dict[str, str]:
    return {"cpu": cpu_quantity(figures.cpu), "memory": memory_quantity(figures.memory)}


def _metadata(obj: Mapping[str, Any], now: str) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    out: dict[str, Any] = {"name": meta.get("name", "")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    out["creationTimestamp"] = now
    if meta.get("labels"):
        out["labels"] = dict(meta["labels"])
    return out


def node_metrics(node: Mapping[str, Any], figures: Usage, now: str) -> dict[str, Any]:
    """The `NodeMetrics` of a Node object."""
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION,
            "metadata": _metadata(node, now), "timestamp": _time(figures.timestamp),
            "window": go_duration(figures.window), "usage": _resources(figures)}


def pod_metrics(pod: Mapping[str, Any], containers: Mapping[str, Usage],
                now: str) -> dict[str, Any]:
    """The `PodMetrics` of a Pod object: its containers in spec order; the pod's timestamp
    and window are those of its earliest container point, as metrics-server reports them."""
    names = [c.get("name") for c in pod.get("spec", {}).get("containers", [])]
    order = sorted(containers, key=lambda n: (names.index(n) if n in names else len(names), n))
    earliest = min(containers.values(), key=lambda u: u.timestamp)
    return {"kind": "PodMetrics", "apiVersion": API_VERSION,
            "metadata": _metadata(pod, now), "timestamp": _time(earliest.timestamp),
            "window": go_duration(earliest.window),
            "containers": [{"name": n, "usage": _resources(containers[n])} for n in order]}


def metrics_list(kind: str, items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": API_VERSION, "metadata": {},
            "items": list(items)}
