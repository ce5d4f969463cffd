"""The benchmark zone (performance.md A.0) as API objects, zone records, and two query mixes.

1,000 ClusterIP services `svc-N` (SRV `_http._tcp`), 100 headless services `hl-N` of 10 ready
StatefulSet pods `web-K`, in namespace `default` of `cluster.local`; namespace `web` is empty.

`queries` (the hit mix, seed 42): 50 % svc A, 10 % headless A, 10 % pod A, 10 % SRV,
10 % NXDOMAIN, 10 % AAAA NODATA; a few thousand distinct questions, so a cache holds them all.

`bust_queries` (the cache-busting mix): every name but the partial service names is new, so no
cache can hold them. Half are random NXDOMAIN names, `<random>.cluster.local` and
`<random>.svc.cluster.local` (A). The other half is the search-path storm (36 % external names,
14 % partial service names), the queries a pod's resolver sends with kubelet's resolv.conf
(`search <ns>.svc.cluster.local svc.cluster.local cluster.local <host domain>`, `options
ndots:5`): a name with fewer than 5 dots is tried with each search domain in turn, A and AAAA
for each (glibc sends both), until one answers; then the name as given. `storm()` lists them:

  * an external name `h<random>.example.com` from a pod in `default` or `web`: its
    `.<ns>.svc.cluster.local`, `.svc.cluster.local` and `.cluster.local` forms, A and AAAA:
    six NXDOMAIN. The host domain and the bare name come next; those are outside the cluster
    zone (forwarded upstream in a cluster, REFUSED by both servers here), so the mix leaves
    them out: they measure the upstream, not the cluster DNS.
  * `svc-N.default.svc.cluster.local` without the trailing dot (4 dots) from a pod in
    `default`: `...cluster.local.default.svc.cluster.local`, `...cluster.local.svc.cluster.local`
    and `...cluster.local.cluster.local`, A and AAAA (six NXDOMAIN; then the host domain, left
    out), then the name as given: A (the answer) and AAAA (NODATA).
  * `svc-N.default` (a Service in another namespace) from a pod in `web`:
    `svc-N.default.web.svc.cluster.local` A and AAAA (NXDOMAIN), then
    `svc-N.default.svc.cluster.local` A (the answer) and AAAA (NODATA).
"""

from __future__ import annotations

import random
from typing import Any

ZONE = "cluster.local"
SUFFIX = f"default.svc.{ZONE}"
SERVICES, HEADLESS, PODS = 1000, 100, 10
NAMESPACES = ("default", "web")
HOST_DOMAIN = "example.internal"  # the node's own search domain (outside the zone)


def cluster_ip(n: int) -> str:
    return f"10.96.{n // 250}.{n % 250 + 1}"


def pod_ip(h: int, k: int) -> str:
    return f"10.244.{h}.{k + 1}"


def api_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [{"kind": "Namespace", "metadata": {"name": ns}}
                                     for ns in NAMESPACES]
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


def search_list(namespace: str) -> list[str]:
    """kubelet's search list for a pod in `namespace` (ClusterFirst), host domain last."""
    return [f"{namespace}.svc.{ZONE}", f"svc.{ZONE}", ZONE, HOST_DOMAIN]


def storm(name: str, namespace: str, answered: set[str]) -> list[str]:
    """The in-zone queries a pod's resolver sends for `name` (ndots:5): each search domain in
    turn, A then AAAA, stopping after the first candidate in `answered`; names outside the
    cluster zone (the host domain, the bare name) are left out."""
    lines = []
    candidates = search_list(namespace) if name.count(".") < 5 else []
    for domain in candidates:
        fqdn = f"{name}.{domain}"
        if not fqdn.endswith(ZONE):
            break
        lines += [f"{fqdn} A", f"{fqdn} AAAA"]
        if fqdn in answered:
            return lines
    if name.endswith(ZONE):  # a full name without the trailing dot: asked as given at last
        lines += [f"{name} A", f"{name} AAAA"]
    return lines


def bust_queries(count: int, seed: int) -> list[str]:
    """The cache-busting mix (module docstring): `count` queries, new names for each `seed`."""
    rng = random.Random(seed)
    services = {name for name, _ in a_records()}
    lines: list[str] = []
    index = 0
    while len(lines) < count:
        index += 1
        unique = f"{seed:x}x{index:x}{rng.getrandbits(24):06x}"
        roll = rng.random()
        if roll < 0.42:  # of the queries: 24 % each random name, 24 %, 14 %, 14 % the storms
            lines.append(f"q{unique}.{ZONE} A")
        elif roll < 0.84:
            lines.append(f"q{unique}.svc.{ZONE} A")
        elif roll < 0.91:
            lines += storm(f"h{unique}.example.com", rng.choice(NAMESPACES), services)
        elif roll < 0.94:
            lines += storm(f"svc-{rng.randrange(SERVICES)}.{SUFFIX}", "default", services)
        else:
            lines += storm(f"svc-{rng.randrange(SERVICES)}.default", "web", services)
    return lines[:count]
