"""A pod's DNS configuration, formed as the kubelet's `pkg/kubelet/network/dns/dns.go` forms it.

The base is the node's resolver file (the kubelet's `--resolv-conf`, default /etc/resolv.conf;
"" means none): its `nameserver`s, its last `search` line (trailing dots dropped, `.` skipped)
and its `options`. Then per `dnsPolicy`:

* `ClusterFirst` (not hostNetwork) and `ClusterFirstWithHostNet`: the cluster DNS is the only
  nameserver, the search list is `<ns>.svc.<domain> svc.<domain> <domain>` followed by the
  host's search domains (duplicates omitted), options `ndots:5`. Without a cluster DNS the pod
  falls back to `Default`, with kube's `MissingClusterDNS` event.
* `Default` (and `ClusterFirst` with hostNetwork): the host's file as it is; with
  `--resolv-conf ""` the nameserver is 127.0.0.1 and the search list `.`.
* `None`: empty.

`spec.dnsConfig` is appended (nameservers, searches without duplicates; options merged by name,
the pod's winning). Last, kube's limits (1.32: `validation.MaxDNSNameservers` 3,
`MaxDNSSearchPaths` 32, `MaxDNSSearchListChars` 2048, and no search domain over 253 chars): what
exceeds them is cut, with kube's `DNSConfigForming` warning event naming the applied line.
Everything here is pure: the caller reads the file once and records the events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Obj = Mapping[str, Any]
CLUSTER_DOMAIN = "cluster.local"
DEFAULT_RESOLV_CONF = "/etc/resolv.conf"
MAX_NAMESERVERS, MAX_SEARCH_PATHS, MAX_SEARCH_CHARS, MAX_DOMAIN = 3, 32, 2048, 253
MAX_FILE_BYTES = 10 * 1024 * 1024  # the kubelet refuses a larger resolv.conf


@dataclasses.dataclass
class DNSConfig:
    """The three lines of a resolv.conf (options as `name` or `name:value`)."""

    servers: list[str] = dataclasses.field(default_factory=list)
    searches: list[str] = dataclasses.field(default_factory=list)
    options: list[str] = dataclasses.field(default_factory=list)

    def render(self) -> str:
        lines = [f"search {' '.join(self.searches)}"] if self.searches else []
        lines += [f"nameserver {s}" for s in self.servers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n" if lines else ""


@dataclasses.dataclass(frozen=True)
class HostResolver:
    """The node's resolver file as the kubelet read it (`path` "" : none configured)."""

    path: str = DEFAULT_RESOLV_CONF
    config: DNSConfig = dataclasses.field(default_factory=DNSConfig)


def parse(text: str) -> DNSConfig:
    """nameservers, search domains and options of a resolv.conf text (kubelet's parseResolvConf)."""
    config = DNSConfig()
    for raw in text.splitlines():
        if raw[:1] in ("#", ";"):
            continue
        fields = raw.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            config.servers.append(fields[1])
        elif fields[0] == "search":
            config.searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            config.options = merge_options(config.options, [_option(o) for o in fields[1:]])
    return config


def read_host(path: str) -> HostResolver:
    """The node's resolver (`--resolv-conf`); "" : none. Raises OSError/ValueError as the
    kubelet fails to start on an unreadable or oversized file."""
    if not path:
        return HostResolver("", DNSConfig())
    file = Path(path)
    if file.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"resolv.conf {path} is larger than {MAX_FILE_BYTES} bytes")
    return HostResolver(path, parse(file.read_text(errors="replace")))


def _option(text: str) -> tuple[str, str | None]:
    name, sep, value = text.partition(":")
    return name, value if sep else None


def merge_options(existing: list[str], extra: list[tuple[str, str | None]]) -> list[str]:
    """kubelet's mergeDNSOptions: by name, later ones winning (kept in first-seen order)."""
    merged: dict[str, str | None] = dict(_option(o) for o in existing)
    for name, value in extra:
        merged[name] = value
    return [name if not value else f"{name}:{value}" for name, value in merged.items()]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def dns_type(spec: Obj) -> str:
    """kubelet's getPodDNSType: "cluster", "host" or "none"."""
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst"
                                               and not spec.get("hostNetwork")):
        return "cluster"
    return "host"


def pod_dns(pod: Obj, cluster_dns: str | None, host: HostResolver,
            domain: str = CLUSTER_DOMAIN) -> tuple[DNSConfig, list[tuple[str, str]]]:
    """The pod's DNS config and the warning events (reason, message) forming it gave."""
    spec = pod.get("spec", {})
    base = dataclasses.replace(host.config, servers=list(host.config.servers),
                               searches=list(host.config.searches),
                               options=list(host.config.options))
    events: list[tuple[str, str]] = []
    kind = dns_type(spec)
    if kind == "none":
        base = DNSConfig()
    elif kind == "cluster" and cluster_dns is not None:
        namespace = pod["metadata"].get("namespace", "default")
        base.servers = [cluster_dns]
        base.searches = _unique([f"{namespace}.svc.{domain}", f"svc.{domain}", domain,
                                 *base.searches])
        base.options = ["ndots:5"]
    else:
        if kind == "cluster":
            events.append(("MissingClusterDNS", "kubelet does not have ClusterDNS IP configured"
                           ' and cannot create Pod using "ClusterFirst" policy. Falling back '
                           'to "Default" policy.'))
        if not host.path:
            base.servers, base.searches = ["127.0.0.1"], ["."]
    config = spec.get("dnsConfig")
    if config:
        base.servers = _unique([*base.servers, *(config.get("nameservers") or [])])
        base.searches = _unique([*base.searches, *(config.get("searches") or [])])
        base.options = merge_options(base.options, [(o["name"], o.get("value"))
                                                    for o in config.get("options") or []])
    return base, events + fit_limits(base)


def fit_limits(config: DNSConfig) -> list[tuple[str, str]]:
    """Cut `config` to kube's limits (kubelet's formDNSConfigFitsLimits), in place."""
    events = []
    if len(config.servers) > MAX_NAMESERVERS:
        config.servers = config.servers[:MAX_NAMESERVERS]
        events.append(("DNSConfigForming", "Nameserver limits were exceeded, some nameservers "
                       "have been omitted, the applied nameserver line is: "
                       + " ".join(config.servers)))
    searches = config.searches[:MAX_SEARCH_PATHS]
    exceeded = len(config.searches) > MAX_SEARCH_PATHS
    kept = [s for s in searches if len(s) <= MAX_DOMAIN]
    exceeded = exceeded or len(kept) < len(searches)
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
        exceeded = True
    config.searches = kept
    if exceeded:
        events.append(("DNSConfigForming", "Search Line limits were exceeded, some search paths"
                       " have been omitted, the applied search line is: " + " ".join(kept)))
    return events
