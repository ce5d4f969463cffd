"""The options of the components process (`components`): what `tinykube up` sends its child as
one JSON line, and the nodes it runs. Light on purpose (dataclasses and the DNS options only), so
that the API server's process can build them without importing the components themselves."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tinykube.dns.options import DNSOptions


@dataclasses.dataclass
class NodeSpec:
    name: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ComponentOptions:
    kubeconfig: Path
    data_dir: Path
    host_ip: str  # the nodes' InternalIP (the API server's address)
    nodes: list[NodeSpec]
    pod_cidr: str
    dns: DNSOptions | None
    proxy: bool
    default_runtime: str
    # The bearer token the API server shows the kubelet endpoints; kept out of reprs and logs.
    kubelet_token: str = dataclasses.field(repr=False)
    verbose: int = 0
    api_socket: str | None = None  # the API server's local unix socket (plain HTTP), if any
    network: str = "host"  # "netns": every node and pod in its own network namespace
    service_cidr: str = ""  # the cluster IP range (the netns mode's nftables rules need it)
    virtual_job_seconds: float = 1.0  # how long a Job's virtual pod runs before it succeeds
    insecure_registries: list[str] = dataclasses.field(default_factory=list)
    registry_mirrors: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    resolv_conf: str = "/etc/resolv.conf"  # the kubelet's --resolv-conf ("": none)
    hpa_sync_period: float = 15.0  # --horizontal-pod-autoscaler-sync-period, seconds
    node_monitor_grace_period: float = 40.0  # --node-monitor-grace-period, seconds
    controllers: bool = True  # False: only the nodes (a node agent joining a cluster)
    # Controllers and scheduler each run while holding their Lease (`client.leaderelection`):
    # lease duration, renew deadline, retry period in seconds; the candidate's identity (None:
    # this host and the data directory, stable across restarts of one `tinykube up`).
    leader_elect: bool = True
    leader_election: list[float] = dataclasses.field(default_factory=lambda: [15.0, 10.0, 2.0])
    leader_identity: str | None = None
    # netns mode, a node joining another cluster's underlay (`tinykube node --network netns`):
    # that underlay's namespace and this node's address on it
    underlay_netns: str | None = None
    node_address: str | None = None
    cluster_cidr: str = ""  # the whole pod range, when `pod_cidr` is only this node's
    # rootless netns mode: this process's end of `network.hostsockets` (a file descriptor)
    host_sockets: int | None = None
    holder_pid: int | None = None  # rootless: the launcher's pid (`tinykube node exec` enters)
    ui_listen: str = "127.0.0.1:0"  # the observer's HTTP endpoint (live map, logs); "": none
    image_cache_size: int | None = None  # image GC's capacity (None: the filesystem's size)
    image_gc_high: int = 85  # image GC thresholds, percent of the capacity
    image_gc_low: int = 80
    image_min_age: float = 120.0  # seconds before a pulled image may be collected
    test_clock: float | None = None  # `--test-clock`: the test clock's start (epoch seconds)
    # component -> its own bearer token (`identities`); a component not here uses the
    # kubeconfig's credential
    identities: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> ComponentOptions:
        raw = json.loads(text)
        dns = raw["dns"]
        if dns is not None:
            dns = DNSOptions(**{**dns, "listen": tuple(dns["listen"]),
                                "metrics": dns["metrics"] and tuple(dns["metrics"]),
                                "netns": tuple(dns["netns"]),
                                "upstream": dns["upstream"] and
                                [tuple(u) for u in dns["upstream"]]})
        return cls(**{**raw, "kubeconfig": Path(raw["kubeconfig"]),
                      "data_dir": Path(raw["data_dir"]), "dns": dns,
                      "nodes": [NodeSpec(**node) for node in raw["nodes"]]})
