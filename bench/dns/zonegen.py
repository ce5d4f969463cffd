"""The benchmark zone (performance.md A.0) as API objects, zone records, and a query mix.

1,000 ClusterIP services `svc-N` (SRV `_http._tcp`), 100 headless services `hl-N` of 10 ready
StatefulSet pods `web-K`, in namespace `default` of `cluster.local`. Queries (seed 42):
50 % svc A, 10 % headless A, 10 % pod A, 10 % SRV, 10 % NXDOMAIN, 10 % AAAA NODATA.
"""

from __future__ import annotations

import random
from typing import Any

ZONE = "cluster.local"
SUFFIX = f"default.svc.{ZONE}"
SERVICES, HEADLESS, PODS = 1000, 100, 10


def cluster_ip(n: int) -> str:
    return f"10.96.{n // 250}.{n % 250 + 1}"


def pod_ip(h: int, k: int) -> str:
    return f"10.244.{h}.{k + 1}"


def api_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [{"kind": "Namespace", "metadata": {"name": "default"}}]
    for n in range(SERVICES):
        objects.append({"kind": "Service", "metadata": {"name": f"svc-{n}", "namespace": "default"},
                        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip(n),
                                 "clusterIPs": [cluster_ip(n)],
                                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    for h in range(HEADLESS):
        objects.append({"kind": "Service", "metadata": {"name": f"hl-{h}", "namespace": "default"},
                        "spec": {"type": "ClusterIP", "clusterIP": "None",
                                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        objects.append(headless_slice(h, PODS))
    return objects


def headless_slice(h: int, ready: int, total: int = PODS) -> dict[str, Any]:
    endpoints = [{"addresses": [pod_ip(h, k)], "hostname": f"web-{k}",
                  "conditions": {"ready": k < ready}} for k in range(total)]
    return {"kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"hl-{h}-abcde", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": f"hl-{h}"}},
            "endpoints": endpoints, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}


def a_records() -> list[tuple[str, str]]:
    records = [(f"svc-{n}.{SUFFIX}", cluster_ip(n)) for n in range(SERVICES)]
    for h in range(HEADLESS):
        for k in range(PODS):
            records.append((f"hl-{h}.{SUFFIX}", pod_ip(h, k)))
            records.append((f"web-{k}.hl-{h}.{SUFFIX}", pod_ip(h, k)))
    return records


def srv_records() -> list[tuple[str, str]]:
    return [(f"_http._tcp.svc-{n}.{SUFFIX}", f"svc-{n}.{SUFFIX}") for n in range(SERVICES)]


def queries(count: int = 100_000, seed: int = 42) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        roll, n = rng.random(), rng.randrange(SERVICES)
        h, k = rng.randrange(HEADLESS), rng.randrange(PODS)
        if roll < 0.5:
            lines.append(f"svc-{n}.{SUFFIX} A")
        elif roll < 0.6:
            lines.append(f"hl-{h}.{SUFFIX} A")
        elif roll < 0.7:
            lines.append(f"web-{k}.hl-{h}.{SUFFIX} A")
        elif roll < 0.8:
            lines.append(f"_http._tcp.svc-{n}.{SUFFIX} SRV")
        elif roll < 0.9:
            lines.append(f"nosvc-{n}.{SUFFIX} A")
        else:
            lines.append(f"svc-{n}.{SUFFIX} AAAA")
    return lines
