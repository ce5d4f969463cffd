"""The kubelet's resource metrics endpoint, `/metrics/resource`: what metrics-server scrapes.

The Prometheus text a kubelet writes (its `collectors/resource_metrics.go`), with the same
series, labels, HELP texts and a timestamp (ms) on every reading:

- `container_cpu_usage_seconds_total`, `container_memory_working_set_bytes` and
  `container_start_time_seconds` {container, namespace, pod} for every running container that
  has cgroups (`Cgroups.usage`: by pod uid and container name, so the process runtime's
  containers and those an OCI runtime puts in the same cgroups are read alike); virtual pods
  run nothing and have none, so they are left out, as a kubelet leaves out what it cannot read;
- `pod_cpu_usage_seconds_total` and `pod_memory_working_set_bytes` {namespace, pod}: the sums
  of the pod's running containers;
- `node_cpu_usage_seconds_total` and `node_memory_working_set_bytes` from the host's `/proc`:
  non-idle CPU time of `/proc/stat` (user, nice, system, irq, softirq, steal), and MemTotal -
  MemFree - Inactive(file) of `/proc/meminfo`, what cAdvisor's root cgroup working set
  amounts to. Every node of one host reports the host's figures;
- `resource_scrape_error`: 1 when the node's own figures could not be read.

prometheus_client writes the exposition (the child process has it loaded already for the DNS
metrics). Reading is done in a thread from a snapshot of the containers taken on the loop.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from tinykube.api import resourcemetrics as names
from tinykube.kubelet.cgroups import Cgroups

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system (idle iowait) irq softirq steal


@dataclasses.dataclass(frozen=True)
class Container:
    """A running container to read: its pod's identity and its start (epoch seconds)."""
    namespace: str
    pod: str
    uid: str
    name: str
    started: float | None = None


def node_cpu_seconds(stat: str) -> float:
    """Busy CPU time since boot, in core-seconds, from `/proc/stat`'s `cpu` line."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:]]
            return sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks)) / _CLOCK_TICKS
    raise ValueError("/proc/stat has no cpu line")


def node_working_set(meminfo: str) -> int:
    """MemTotal - MemFree - Inactive(file) in bytes, from `/proc/meminfo` (kB values)."""
    values = {}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0]) * 1024
    return max(0, values["MemTotal"] - values["MemFree"] - values.get("Inactive(file)", 0))


def running_containers(pods: Iterable[Mapping[str, Any]]) -> list[Container]:
    """The running containers (and sidecars) of `pods`, from their statuses."""
    found = []
    for pod in pods:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        for state in [*status.get("initContainerStatuses", []),
                      *status.get("containerStatuses", [])]:
            running = (state.get("state") or {}).get("running")
            if running is None:
                continue
            started = running.get("startedAt")
            found.append(Container(
                meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""),
                state.get("name", ""),
                datetime.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
                if started else None))
    return found


class _Families:
    """A prometheus_client collector of families made beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _family(kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, help_text: str,
            labels: list[str] | None = None) -> Any:
    return kind(name, f"[STABLE] {help_text}", labels=labels)


def render(containers: Iterable[Container], cgroups: Cgroups,
           proc: Path = Path("/proc")) -> bytes:
    """The `/metrics/resource` exposition, read now."""
    labels = ["container", "namespace", "pod"]
    cpu = _family(CounterMetricFamily, names.CONTAINER_CPU,
                  "Cumulative cpu time consumed by the container in core-seconds", labels)
    memory = _family(GaugeMetricFamily, names.CONTAINER_MEMORY,
                     "Current working set of the container in bytes", labels)
    start = _family(GaugeMetricFamily, names.CONTAINER_START,
                    "Start time of the container since unix epoch in seconds", labels)
    pod_cpu = _family(CounterMetricFamily, names.POD_CPU,
                      "Cumulative cpu time consumed by the pod in core-seconds",
                      ["namespace", "pod"])
    pod_memory = _family(GaugeMetricFamily, names.POD_MEMORY,
                         "Current working set of the pod in bytes", ["namespace", "pod"])
    pods: dict[tuple[str, str], list[float]] = {}
    for container in containers:
        figures = cgroups.usage(container.uid, container.name)
        if figures is None:
            continue
        now = time.time()
        values = [container.name, container.namespace, container.pod]
        cpu.add_metric(values, figures[0] / 1e9, timestamp=now)
        memory.add_metric(values, figures[1], timestamp=now)
        if container.started:
            start.add_metric(values, container.started)
        total = pods.setdefault((container.namespace, container.pod), [0.0, 0.0, now])
        total[0] += figures[0] / 1e9
        total[1] += figures[1]
    for (namespace, pod), (pod_seconds, pod_bytes, stamp) in pods.items():
        pod_cpu.add_metric([namespace, pod], pod_seconds, timestamp=stamp)
        pod_memory.add_metric([namespace, pod], pod_bytes, timestamp=stamp)
    node_cpu, node_memory, error = _node_families(proc)
    # in name order, as a kubelet's registry writes them
    families = [cpu, memory, start, node_cpu, node_memory, pod_cpu, pod_memory, error]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _node_families(proc: Path) -> list[Metric]:
    node_cpu = _family(CounterMetricFamily, names.NODE_CPU,
                       "Cumulative cpu time consumed by the node in core-seconds")
    node_memory = _family(GaugeMetricFamily, names.NODE_MEMORY,
                          "Current working set of the node in bytes")
    error = _family(GaugeMetricFamily, names.SCRAPE_ERROR,
                    "1 if there was an error while getting container metrics, 0 otherwise")
    try:
        now = time.time()
        node_cpu.add_metric([], node_cpu_seconds((proc / "stat").read_text()), timestamp=now)
        node_memory.add_metric([], node_working_set((proc / "meminfo").read_text()),
                               timestamp=now)
        error.add_metric([], 0)
    except (OSError, ValueError, KeyError):
        error.add_metric([], 1)
    return [node_cpu, node_memory, error]
