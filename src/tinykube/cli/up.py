"""`tinykube up`: run a whole cluster on this machine (API server, nodes, controllers, DNS, proxy).

The API server runs in this process and the rest in one child process (see `cluster`). The
child is started first thing, before this process imports the API server, so that the two
start-ups overlap: only light modules are imported at the top of this file.

It prints the line to paste (`export KUBECONFIG=...`) only after every component is running,
stops cleanly on Ctrl-C or SIGTERM, and keeps all objects in the data directory for the next run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tinykube.api import quantity
from tinykube.launch import (
    raise_open_files_limit,
    spawn_components,
    spawn_rootless_components,
    take_early,
    tune_gc,
)
from tinykube.network.plan import API_RELAY_ADDRESS
from tinykube.settings import (
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_WATCH_HISTORY,
    DEFAULT_WATCH_HISTORY_BYTES,
    NETNS_POD_CIDR,
    NETNS_SERVICE_CIDR,
)

if TYPE_CHECKING:
    from tinykube import cluster
    from tinykube.apiserver.features import Features


def default_data_dir(name: str | None = None) -> Path:
    """$XDG_DATA_HOME/tinykube, or tinykube-NAME for `--name NAME`."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / (f"tinykube-{name}" if name else "tinykube")


def split_listen(listen: str, option: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {listen!r}", param_hint=option)
    return host, int(port)


def parse_nodes(nodes: str | None, labels: tuple[str, ...]) -> list[cluster.NodeSpec]:
    from tinykube import cluster

    names = [n.strip() for n in (nodes or socket.gethostname().lower()).split(",") if n.strip()]
    specs = {name: cluster.NodeSpec(name) for name in names}
    for item in labels:
        node, _, label = item.partition(":")
        key, sep, value = label.partition("=")
        if node not in specs or not sep or not key:
            raise click.BadParameter(f"expected NODE:KEY=VALUE for a node of --nodes, got "
                                     f"{item!r}", param_hint="--node-label")
        specs[node].labels[key] = value
    return list(specs.values())


async def _run(options: cluster.ClusterOptions, process: subprocess.Popen[bytes] | None,
               runtime_line: str) -> None:
    from tinykube import cluster
    from tinykube.apiserver.datadir import DataDirInUse

    try:
        running = await cluster.start_cluster(options, announce=click.echo, process=process)
    except DataDirInUse as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(
            f"could not start: {exc}. Is another tinykube running? Pick another address with "
            "--listen (and --dns-listen), or stop the other one.") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(runtime_line)
    click.echo(f"tinykube API server ready at {running.api.url} "
               f"(data in {options.api.data_dir})")
    click.echo(f"export KUBECONFIG={running.api.kubeconfig}")
    sys.stdout.flush()
    failure = await cluster.run_until_stopped(running, stop)
    if failure is not None:
        raise click.ClickException(f"stopped because the {failure} (the log above says why); "
                                   "the data is kept: run `tinykube up` again")
    click.echo("tinykube stopped", err=True)


def readable_resolv_conf(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """`--resolv-conf`: "" or a file the kubelet can read (it refuses to form pods' DNS
    otherwise)."""
    from tinykube.kubelet import dnsconfig
    try:
        dnsconfig.read_host(value)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def check_audit_policy(path: Path) -> None:
    """Refuse a policy kube-apiserver would refuse, before anything starts."""
    import yaml

    from tinykube.apiserver import audit

    try:
        audit.load_policy(path)
    except (yaml.YAMLError, audit.PolicyError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="--audit-policy-file") from None


def feature_options(function: click.decorators.FC) -> click.decorators.FC:
    """`--feature-gates` and `--runtime-config`, shared by `tinykube up` and `apiserver`."""
    for option in reversed((
            click.option("--feature-gates", default="", metavar="KEY=BOOL,...",
                         help="kube-apiserver's feature gates; tinykube knows "
                         "MutatingAdmissionPolicy (default false)."),
            click.option("--runtime-config", default="", metavar="GROUP/VERSION=BOOL,...",
                         help="API versions to serve beyond the default ones: "
                         "admissionregistration.k8s.io/v1alpha1=true (with the "
                         "MutatingAdmissionPolicy gate) serves MutatingAdmissionPolicy."))):
        function = option(function)
    return function


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              show_default="$XDG_DATA_HOME/tinykube, or tinykube-NAME with --name",
              help="Where state, certificates and the kubeconfig live.")
@click.option("--name", default=None, callback=lambda _c, _p, v: check_name(v),
              help="A cluster beside others: its own data dir, free ports (API server and "
              "DNS on 127.0.0.1), and cluster/context/user tinykube-NAME in the kubeconfig.")
@click.option("--detach", is_flag=True, help="Run in the background (output in up.log in "
              "the data dir); return once ready, printing the export line.")
@click.option("--listen", default=None, show_default="127.0.0.1:6443; 127.0.0.1:0 with --name",
              help="API server address (HOST:PORT; port 0 picks a free one).")
@click.option("--network", type=click.Choice(["host", "netns"]), default="host",
              show_default=True,
              help="host: pods and Services on the host's loopback; netns: every node "
              "and pod in its own network namespace, pods on 10.244.0.0/16, Services on "
              "10.96.0.0/12, DNS at 10.96.0.10 (reach them with `tinykube node exec`); not "
              "as root, inside a user namespace of its own.")
@click.option("--service-cidr", default=None, show_default=f"{DEFAULT_SERVICE_CIDR}; "
              f"{NETNS_SERVICE_CIDR} with --network netns",
              help="Range for Service cluster IPs.")
@click.option("--pod-cidr", default=None, show_default=f"{DEFAULT_POD_CIDR}; "
              f"{NETNS_POD_CIDR} with --network netns",
              help="Cluster pod range; each node gets a /24 of it.")
@click.option("--nodes", default=None, help="Comma-separated virtual node names "
              "(default: one node named after this host).")
@click.option("--node-label", "node_labels", multiple=True, metavar="NODE:KEY=VALUE",
              help="A label for a node of --nodes (repeatable).")
@click.option("--dns-listen", default=None, metavar="HOST:PORT",
              help="Cluster DNS address (default: the kube-dns Service IP, port 53, or port "
              "10053 when 53 cannot be bound).")
@click.option("--no-dns", is_flag=True, help="Do not run the cluster DNS.")
@click.option("--dns-workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes answering cluster DNS on its address (SO_REUSEPORT), each with "
              "its own informers: one per core to use.")
@click.option("--ui-listen", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT",
              help="The live map, DNS query log and traces (`tinykube ui`); port 0: a free one.")
@click.option("--no-ui", is_flag=True, help="Do not serve the live map (nor the DNS log, traces).")
@click.option("--proxy/--no-proxy", default=True, show_default=True,
              help="Run the service proxy (host mode: the userspace one, cluster IPs and "
              "NodePorts on loopback; --network netns: nftables rules in every node).")
@click.option("--default-runtime", type=click.Choice(["virtual", "process", "container"]),
              default=None, show_default="container with --network netns when runc is "
              "installed, else virtual", help="Runtime of pods without a runtimeClassName.")
@click.option("--registry-mirror", "registry_mirrors", multiple=True,
              metavar="[REGISTRY=]HOST[:PORT]|URL",
              help="Try this mirror before the registry (default registry: docker.io); "
              "repeatable, tried in order.")
@click.option("--resolv-conf", default="/etc/resolv.conf", show_default=True, metavar="FILE",
              callback=readable_resolv_conf,
              help="The resolver file pods' DNS config starts from (the kubelet's flag: its "
              "search domains follow the cluster's, dnsPolicy Default copies it; \"\": none).")
@click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST[:PORT]",
              help="Pull from this registry over plain HTTP (loopback ones always are).")
@click.option("--image-cache-size", default=None, metavar="QUANTITY",
              help="Bytes the image cache may take (`10Gi`) before the image GC thresholds "
              "apply to it (default: the data directory's filesystem, as the kubelet).")
@click.option("--image-gc-high-threshold", type=click.IntRange(0, 100), default=85,
              show_default=True, help="Percent of the image cache's capacity at which image "
              "garbage collection starts.")
@click.option("--image-gc-low-threshold", type=click.IntRange(0, 100), default=80,
              show_default=True, help="Percent of the capacity it frees down to.")
@click.option("--minimum-image-ttl-duration", default="2m", show_default=True,
              metavar="DURATION", help="How long after its pull an unused image may be "
              "garbage collected.")
@click.option("--virtual-job-seconds", type=click.FloatRange(0), default=1.0,
              show_default=True,
              help="How long a virtual pod owned by a Job runs before it succeeds (virtual "
              "pods of other owners run until deleted).")
@click.option("--insecure-http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option("--watch-history", type=click.IntRange(100), default=DEFAULT_WATCH_HISTORY,
              show_default=True,
              help="Watch events kept for clients resuming a watch (older ones get 410 Gone "
              "and relist); each holds a whole object, and the history keeps at most "
              f"{DEFAULT_WATCH_HISTORY_BYTES >> 20} MiB of them (encoded).")
@click.option("--metric-resolution", default="15s", show_default=True, metavar="DURATION",
              help="How often the API server scrapes the kubelets for metrics.k8s.io "
              "(`kubectl top`), as metrics-server's flag: `15s`, `500ms`, `1m`; figures "
              "appear after two scrapes.")
@click.option("--horizontal-pod-autoscaler-sync-period", "hpa_sync_period", default="15s",
              show_default=True, metavar="DURATION",
              help="How often the HorizontalPodAutoscaler controller syncs each HPA.")
@click.option("--node-monitor-grace-period", default="40s", show_default=True,
              metavar="DURATION",
              help="How long a node may go without renewing its Lease before it is marked "
              "Unknown (NodeStatusUnknown) and tainted unreachable.")
@click.option("--leader-elect-lease-duration", default="15s", show_default=True,
              metavar="DURATION", help="Controllers and scheduler run while holding a Lease "
              "(another `tinykube controllers` is a candidate too): how long candidates wait "
              "for a silent leader. With --leader-elect-renew-deadline (10s) and "
              "--leader-elect-retry-period (2s), as kube-controller-manager's.")
@click.option("--leader-elect-renew-deadline", default="10s", show_default=True,
              metavar="DURATION", help="How long the leader tries to renew before it stops.")
@click.option("--leader-elect-retry-period", default="2s", show_default=True,
              metavar="DURATION", help="How often candidates try and the leader renews.")
@click.option("--audit-log", "--audit-log-path", "audit_log", default=None, metavar="PATH",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the API server's audit Events (audit.k8s.io/v1, JSON lines) here.")
@click.option("--audit-policy-file", default=None, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The audit Policy (audit.k8s.io/v1) choosing each request's level; without "
              "one every request is logged at Metadata.")
@click.option("--durable", is_flag=True,
              help="fsync every write (survives power loss, not only a crash).")
@click.option("--test-clock", is_flag=True,
              help="Run every component on a test clock that stands still until "
              "`tinykube clock advance SECONDS` (or POST /tinykube/v1/clock/advance) moves it "
              "(probes, back-offs, CronJobs, Job deadlines and TTLs, leases, timestamps).")
@click.option("--single-process", is_flag=True,
              help="Run nodes, controllers, DNS and proxy in the API server's process instead "
              "of a child process (uses one core; easier to profile).")
@click.option("--store", default="", help="Keep the cluster in etcd: "
              "etcd://HOST:PORT[,HOST:PORT...] (etcds:// with --etcd-*); default SQLite in "
              "the data directory. More API servers join with `tinykube apiserver`.")
@click.option("--etcd-cafile", type=click.Path(path_type=Path, exists=True), default=None,
              help="CA certificate of the etcd members (etcds://).")
@click.option("--etcd-certfile", type=click.Path(path_type=Path, exists=True), default=None,
              help="Client certificate for etcd (etcds://).")
@click.option("--etcd-keyfile", type=click.Path(path_type=Path, exists=True), default=None,
              help="Client key for etcd (etcds://).")
@feature_options
@click.option("-v", "--verbose", count=True, help="More logging.")
def command(store: str, etcd_cafile: Path | None, etcd_certfile: Path | None,
            etcd_keyfile: Path | None, data_dir: Path | None, name: str | None, detach: bool,
            listen: str | None,
            network: str, service_cidr: str | None,
            pod_cidr: str | None, nodes: str | None,
            node_labels: tuple[str, ...], dns_listen: str | None, no_dns: bool,
            dns_workers: int, proxy: bool, default_runtime: str | None,
            registry_mirrors: tuple[str, ...],
            insecure_registries: tuple[str, ...], resolv_conf: str,
            image_cache_size: str | None,
            image_gc_high_threshold: int, image_gc_low_threshold: int,
            minimum_image_ttl_duration: str, virtual_job_seconds: float,
            insecure_http: bool, watch_history: int, metric_resolution: str,
            hpa_sync_period: str, node_monitor_grace_period: str,
            leader_elect_lease_duration: str, leader_elect_renew_deadline: str,
            leader_elect_retry_period: str, audit_log: Path | None,
            audit_policy_file: Path | None, durable: bool,
            test_clock: bool, single_process: bool, feature_gates: str, runtime_config: str,
            verbose: int, ui_listen: str = "127.0.0.1:0", no_ui: bool = False) -> None:
    """Start tinykube on this machine."""
    features = parse_features(feature_gates, runtime_config)
    data_dir = data_dir or default_data_dir(name)
    if detach:
        run_detached(data_dir)
        return
    if name:
        listen = listen or "127.0.0.1:0"
        if not dns_listen and network == "host":
            from tinykube.testing import free_port
            dns_listen = f"127.0.0.1:{free_port()}"
    listen = listen or "127.0.0.1:6443"
    logging.basicConfig(level=logging.WARNING - 10 * verbose,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = split_listen(listen, "--listen")
    resolution = parse_duration(metric_resolution, "--metric-resolution")
    hpa_period = parse_duration(hpa_sync_period, "--horizontal-pod-autoscaler-sync-period")
    grace = parse_duration(node_monitor_grace_period, "--node-monitor-grace-period")
    dns_address = split_listen(dns_listen, "--dns-listen") if dns_listen else None
    if not no_ui:
        split_listen(ui_listen, "--ui-listen")  # a bad address is a usage error here
    raise_open_files_limit()  # before the child starts: it inherits the limit
    if network == "netns":
        check_netns_mode(dns_address, proxy, single_process)
    check_dns_workers(dns_workers, network, test_clock)
    netns = network == "netns"
    rootless = netns and os.geteuid() != 0  # in a user namespace of its own (network.userns)
    service_cidr = service_cidr or (NETNS_SERVICE_CIDR if netns else DEFAULT_SERVICE_CIDR)
    pod_cidr = pod_cidr or (NETNS_POD_CIDR if netns else DEFAULT_POD_CIDR)
    default_runtime, why = choose_default_runtime(default_runtime, network)
    mirrors = parse_mirrors(registry_mirrors)
    cache_size = parse_size(image_cache_size, "--image-cache-size") if image_cache_size else None
    if image_gc_low_threshold > image_gc_high_threshold:
        raise click.BadParameter(f"{image_gc_low_threshold} is above --image-gc-high-threshold "
                                 f"({image_gc_high_threshold})",
                                 param_hint="--image-gc-low-threshold")
    image_min_age = parse_duration(minimum_image_ttl_duration, "--minimum-image-ttl-duration")
    process = None
    host_sockets = None
    early = take_early()  # started by `launch.spawn_early` for the same arguments
    if rootless:
        if early is not None:
            early.kill()
            early.wait()
        process, host_sockets = spawn_rootless_components()
    elif not single_process:
        process = early or spawn_components()
    try:  # the checks that import more than a little, with the child's imports under way
        from tinykube.cli.controllers import leader_timing

        leader_election = leader_timing(leader_elect_lease_duration,
                                        leader_elect_renew_deadline, leader_elect_retry_period)
        if audit_policy_file is not None:
            check_audit_policy(audit_policy_file)
        options = _options(data_dir, host, port, service_cidr, pod_cidr, nodes, node_labels,
                           dns_address, no_dns, proxy, default_runtime, insecure_http,
                           watch_history, durable, single_process, verbose)
        options.network = network
        options.ui_listen = "" if no_ui else ui_listen
        if store:
            from tinykube.cli.apiserver import check_store
            check_store(store)
            options.api.store = store
            options.api.etcd_cafile, options.api.etcd_certfile = etcd_cafile, etcd_certfile
            options.api.etcd_keyfile = etcd_keyfile
        options.api.kubeconfig_name = f"tinykube-{name}" if name else "tinykube"
        options.host_sockets = host_sockets
        options.holder_pid = process.pid if rootless and process is not None else None
        options.api.metric_resolution = resolution
        options.api.features = features
        options.api.audit_log, options.api.audit_policy = audit_log, audit_policy_file
        options.virtual_job_seconds = virtual_job_seconds
        options.hpa_sync_period, options.node_monitor_grace_period = hpa_period, grace
        options.leader_election = leader_election
        options.insecure_registries = list(insecure_registries)
        options.registry_mirrors = mirrors
        options.resolv_conf = resolv_conf
        options.image_cache_size = cache_size
        options.image_gc_high, options.image_gc_low = (image_gc_high_threshold,
                                                       image_gc_low_threshold)
        options.image_min_age = image_min_age
        options.test_clock = test_clock
        if options.dns is not None and dns_workers > 1:
            options.dns = dataclasses.replace(options.dns, workers=dns_workers)
        if netns:  # the nftables proxy in every node; pods reach the API through a relay
            options.api.advertise_address = API_RELAY_ADDRESS
            options.api.enforces_network_policy = proxy  # the nftables proxy enforces them
            if options.dns is not None:
                options.dns = dataclasses.replace(options.dns, fallback_port=None,
                                                  metrics=None)
    except BaseException:
        if process is not None:
            process.kill()
            process.wait()
        raise
    from tinykube import cluster

    tune_gc()
    cluster.run_forever(lambda: _run(options, process, f"default runtime: {default_runtime} "
                                     f"({why})"))


def parse_features(feature_gates: str, runtime_config: str) -> Features:
    """The flags' values, or a usage error with kube's message."""
    from tinykube.apiserver import features

    try:
        gates = features.parse_feature_gates(feature_gates)
    except features.FlagError as exc:
        raise click.BadParameter(str(exc), param_hint="--feature-gates") from None
    if not runtime_config:
        return features.Features(gates)
    from tinykube.api import resources

    served = frozenset(r.group_version for r in resources.ALL)
    try:
        config = features.parse_runtime_config(runtime_config, served)
    except features.FlagError as exc:
        raise click.BadParameter(str(exc), param_hint="--runtime-config") from None
    return features.Features(gates, config)


def check_name(name: str | None) -> str | None:
    """A cluster name: a DNS label (it becomes part of a directory and of kubeconfig names)."""
    import re

    if name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name):
        raise click.BadParameter(f"{name!r}: lowercase letters, digits and '-' (a DNS label)",
                                 param_hint="--name")
    return name


def run_detached(data_dir: Path) -> None:
    """Start this same `tinykube up` (without --detach) in the background and wait for it."""
    from tinykube import background

    argv = sys.argv[sys.argv.index("up") + 1:]
    args = [a for a in argv if a != "--detach"]
    try:
        started = background.start(data_dir, args, timeout=120, new_session=True)
    except background.NotReady as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"tinykube running in the background (PID {started.pid}, log "
               f"{started.log}); stop it with `tinykube down"
               f"{detached_selector(data_dir)}`")
    click.echo(f"API server at {started.api_url}")
    if started.dns_address:
        click.echo(f"cluster DNS at {started.dns_address[0]}:{started.dns_address[1]}")
    observe = data_dir / "observe.json"  # observe.app writes it once the live map is served
    if observe.exists():
        click.echo(f"live map at {json.loads(observe.read_text())['url']} (`tinykube ui`)")
    click.echo(f"export KUBECONFIG={started.kubeconfig}")


def detached_selector(data_dir: Path) -> str:
    """The arguments that name this cluster for status/logs/down: `--name N`, `--data-dir D`
    or nothing for the default."""
    default = default_data_dir()
    if data_dir == default:
        return ""
    if data_dir.parent == default.parent and data_dir.name.startswith("tinykube-"):
        return f" --name {data_dir.name.removeprefix('tinykube-')}"
    return f" --data-dir {data_dir}"


def choose_default_runtime(given: str | None, network: str) -> tuple[str, str]:
    """The runtime of pods without a runtimeClassName, and why."""
    runc = shutil.which("runc") is not None
    if network == "netns" and os.geteuid() != 0 and given is None:
        return "process", ("rootless --network netns: process pods run in the user namespace; "
                           "runc containers are not run rootless")
    if given is not None:
        if given == "container" and not (runc and os.geteuid() == 0):
            raise click.UsageError("--default-runtime container runs images with runc as "
                                   "root: install the runc package and run as root")
        return given, "--default-runtime"
    if network != "netns":
        return "virtual", ("--network host: pods share the host's network, so images that "
                           "listen on the same port would collide; give pods runtimeClassName "
                           "container or process to run them")
    if not runc:
        return "virtual", "runc is not installed (install the runc package to run images)"
    return "container", "runc is installed and --network netns gives every pod its own network"


def parse_mirrors(values: tuple[str, ...]) -> dict[str, list[str]]:
    """`[REGISTRY=]MIRROR` flags -> registry -> mirrors in order (docker.io by default)."""
    mirrors: dict[str, list[str]] = {}
    for value in values:
        registry, sep, mirror = value.partition("=")
        if not sep or "://" in registry:
            registry, mirror = "docker.io", value
        if not mirror:
            raise click.BadParameter(f"{value!r}: no mirror", param_hint="--registry-mirror")
        mirrors.setdefault(registry, []).append(mirror)
    return mirrors


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_duration(text: str, flag: str) -> float:
    """Seconds of a Go-style duration (`15s`, `500ms`, `1m`; a bare number is seconds), at
    least 0.1 s."""
    number = text.rstrip("hms")
    unit = text[len(number):]
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except (KeyError, ValueError):
        raise click.BadParameter(f"{text!r} is not a duration such as 15s, 500ms or 1m",
                                 param_hint=flag) from None
    if seconds < 0.1:
        raise click.BadParameter(f"{text!r} is shorter than 100ms", param_hint=flag)
    return seconds


def parse_size(text: str, flag: str) -> int:
    """Bytes of a quantity (`10Gi`, `500M`, `1073741824`)."""
    parsed = quantity.parse(text)
    if parsed is None or parsed[0] <= 0:
        raise click.BadParameter(f"{text!r} is not a size such as 10Gi or 500M",
                                 param_hint=flag)
    return int(parsed[0])


def check_dns_workers(workers: int, network: str, test_clock: bool) -> None:
    """`--dns-workers` runs further `tinykube dns` processes on the host's address: not in
    the netns mode (one process makes the sockets in every node namespace), and not on a test
    clock (the workers keep the wall clock)."""
    if workers > 1 and network == "netns":
        raise click.UsageError("--dns-workers applies to the host network only: in --network "
                               "netns one DNS process listens in every node namespace")
    if workers > 1 and test_clock:
        raise click.UsageError("--dns-workers does not go with --test-clock: the further DNS "
                               "processes keep the wall clock")


def check_netns_mode(dns_address: tuple[str, int] | None, proxy: bool,
                     single_process: bool = False) -> None:
    """Refuse `--network netns` where it cannot work, saying what is missing."""
    if os.geteuid() != 0:
        check_rootless(proxy, single_process)
    elif shutil.which("ip") is None:
        raise click.UsageError("--network netns needs iproute2's `ip` command: install the "
                               "iproute2 package")
    elif proxy and shutil.which("nft") is None:
        raise click.UsageError("--network netns programs Services with nftables: install the "
                               "nftables package (and conntrack), or pass --no-proxy")
    if dns_address is not None:
        raise click.UsageError("--dns-listen does not apply to --network netns: the cluster "
                               "DNS listens on the kube-dns Service IP in every node namespace")


def check_rootless(proxy: bool, single_process: bool) -> None:
    """Refuse rootless `--network netns` where this user cannot make its namespaces."""
    from tinykube.network import userns

    if single_process:
        raise click.UsageError("--single-process cannot be used with rootless --network netns: "
                               "the API server stays on the host's loopback while the nodes run "
                               "in a user namespace, so they are two processes")
    missing = userns.missing(proxy)
    if missing is not None:
        raise click.UsageError(f"--network netns as an unprivileged user builds the pod network "
                               f"in a user namespace, and here {missing}. Run `tinykube up` as "
                               "root, or use the default --network host")


def _options(data_dir: Path, host: str, port: int, service_cidr: str, pod_cidr: str,
             nodes: str | None, node_labels: tuple[str, ...],
             dns_address: tuple[str, int] | None, no_dns: bool, proxy: bool,
             default_runtime: str, insecure_http: bool, watch_history: int, durable: bool,
             single_process: bool, verbose: int) -> cluster.ClusterOptions:
    from tinykube import cluster
    from tinykube.apiserver.allocators import IPAllocator
    from tinykube.apiserver.server import APIServerOptions
    from tinykube.dns.options import DNSOptions

    api = APIServerOptions(data_dir=data_dir, host=host, port=port, service_cidr=service_cidr,
                           tls=not insecure_http, durable=durable,
                           watch_history=watch_history)
    dns: DNSOptions | None = None
    if not no_dns:
        dns_ip = IPAllocator(service_cidr).nth(10)
        if dns_address:
            dns = DNSOptions(listen=dns_address, fallback_port=None)
        else:
            dns = DNSOptions(listen=(dns_ip, 53), fallback_port=10053, metrics=(dns_ip, 9153))
    return cluster.ClusterOptions(api=api, nodes=parse_nodes(nodes, node_labels),
                                  pod_cidr=pod_cidr, dns=dns, proxy=proxy,
                                  default_runtime=default_runtime,
                                  single_process=single_process, verbose=verbose)
