"""Assemble a running API server from a data directory: store, allocator, registry, HTTP.

`open_apiserver` is what `tinykube up` and the test fixtures call. It locks the data directory
(`datadir`: one API server per directory, which is owner-only), opens (or creates) the
SQLite store, rebuilds the Service allocations from stored Services, creates the built-in
objects, prepares TLS credentials and a kubeconfig, and binds the listener. When it returns, the
server answers requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import ssl
import tempfile
from pathlib import Path

from tinykube import identities
from tinykube.api import resources
from tinykube.apiserver import (
    audit,
    bootstrap,
    bootstrap_tokens,
    certs,
    datadir,
    endpoint_leases,
    nodeauthz,
    openapi,
    openapi_v2,
    rbac_bootstrap,
    sa_tokens,
    static_tokens,
)
from tinykube.apiserver import crds as crd_controller
from tinykube.apiserver.access import AccessControl
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.app import APIServer
from tinykube.apiserver.features import Features
from tinykube.apiserver.handlers import ResourceHandler
from tinykube.apiserver.rbac import RBACAuthorizer, User
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR, DEFAULT_WATCH_HISTORY
from tinykube.store.cache import Store
from tinykube.store.etcd import EtcdConfig, EtcdStore, open_etcd_store
from tinykube.store.sqlite import SQLiteBackend

__all__ = ["APIServerOptions", "RunningAPIServer", "open_apiserver"]


@dataclasses.dataclass
class APIServerOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    service_cidr: str = DEFAULT_SERVICE_CIDR
    tls: bool = True
    durable: bool = False
    bookmark_interval: float = 5.0
    watch_history: int = DEFAULT_WATCH_HISTORY
    local_socket: bool = False  # also serve plain HTTP on a private unix socket
    # The address the `kubernetes` Service's endpoint names (default: `host`); the netns mode's
    # relay address, which pods reach and `host` (the host's loopback) they do not.
    advertise_address: str | None = None
    # Whether something enforces NetworkPolicies (`--network netns` with its nftables proxy);
    # if not, their writes answer a Warning saying so.
    enforces_network_policy: bool = False
    # Seconds between scrapes of the kubelets for metrics.k8s.io (`kubectl top`).
    metric_resolution: float = 15.0
    # The kubeconfig's cluster/context name ("tinykube-NAME" for `tinykube up --name NAME`).
    kubeconfig_name: str = "tinykube"
    # The audit log (`--audit-log-path`) and its policy (`--audit-policy-file`; none: Metadata).
    audit_log: Path | None = None
    audit_policy: Path | None = None
    # Users the API server makes static tokens for (`tokens.csv`): tinykube's own components.
    component_users: list[tuple[str, tuple[str, ...]]] = dataclasses.field(
        default_factory=lambda: list(identities.COMPONENTS.values()))
    # "" for SQLite in the data directory; `etcd://HOST:PORT[,...]` (or etcds://) for etcd,
    # where several API servers share the data directory's CA, certificates and tokens.
    store: str = ""
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    etcd_compaction_interval: float = 300.0
    lock_file: str = datadir.LOCK_FILE  # another name per API server sharing a directory
    # `--feature-gates` and `--runtime-config` (`features`): MutatingAdmissionPolicy's
    # admissionregistration.k8s.io/v1alpha1 is served only when both turn it on.
    features: Features = dataclasses.field(default_factory=Features)
    kubeconfig_file: str = ""  # "" for the data directory's kubeconfig
    # Build the OpenAPI documents in a thread as soon as the server is open; False: the caller
    # starts it (`RunningAPIServer.warm_documents`) once the cluster is ready, so that the
    # thread does not hold the GIL while the components' first requests wait (each of the
    # event loop's waits then costs up to a switch interval, 5 ms, to get it back).
    warm_at_open: bool = True


@dataclasses.dataclass
class RunningAPIServer:
    server: APIServer
    store: Store
    registry: Registry
    credentials: certs.Credentials
    lock: datadir.DataDirLock
    reconciler: asyncio.Task[None] | None = None  # the kubernetes endpoints, kept up to date
    scraper: asyncio.Task[None] | None = None  # metrics.k8s.io's figures, from the kubelets
    crds: crd_controller.CRDController | None = None  # serves what CRDs define
    crd_task: asyncio.Task[None] | None = None
    aggregator: asyncio.Task[None] | None = None  # aggregated ClusterRoles' rules
    mutating_policies: bool = False  # serves admissionregistration.k8s.io/v1alpha1
    # user name -> its static token, for the components with identities of their own
    component_tokens: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    def warm_documents(self) -> None:
        """Build the OpenAPI documents off the event loop now, so that the first kubectl that
        asks gets them from cache instead of waiting for them (a few hundred ms for the whole
        API)."""
        asyncio.get_running_loop().run_in_executor(None, warm_documents)

    @property
    def kubeconfig(self) -> Path:
        return self.credentials.kubeconfig

    @property
    def local_socket(self) -> Path | None:
        return self.server.unix_path

    async def stop_scraping(self) -> None:
        """Stop scraping the kubelets (before they stop, so that their going is not logged
        as a failed scrape)."""
        if self.scraper is not None:
            self.scraper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.scraper

    async def stop(self) -> None:
        await self.stop_scraping()
        for task in (self.reconciler, self.aggregator, self.crd_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.crds is not None:
            self.crds.stop_serving()
        await self.server.stop()
        if self.server.audit is not None:
            self.server.audit.close()
        if self.mutating_policies:
            resources.serve_mutating_policies(False)
        if isinstance(self.store, EtcdStore):
            await self.store.aclose()
        else:
            self.store.close()
        if self.server.unix_path is not None:
            shutil.rmtree(self.server.unix_path.parent, ignore_errors=True)
        self.lock.release()


UNIX_PATH_MAX = 107  # sun_path's 108 bytes on Linux, with its terminating NUL


def _socket_path() -> Path:
    """`api.sock` in a new private directory: under $TMPDIR, or /tmp when that path would be
    longer than a unix socket's (pytester and xdist give deep TMPDIRs; data dirs may be deep
    too)."""
    for base in (tempfile.gettempdir(), "/tmp"):
        if len(os.fsencode(base)) + len("/tinykube-XXXXXXXX/api.sock") <= UNIX_PATH_MAX:
            return Path(tempfile.mkdtemp(prefix="tinykube-", dir=base)) / "api.sock"
    raise OSError("no temporary directory is short enough for a unix socket")


def check_store_url(url: str) -> None:
    """Raise ValueError (saying why) if `url` is not a `--store` this server can open."""
    EtcdConfig.parse(url)


def _restore_allocations(store: Store, allocator: ServiceAllocator) -> None:
    services = resources.must("", "v1", "services")
    for entry in store.list(services.storage_key):
        allocator.restore(entry.obj.get("spec", {}))


async def open_apiserver(options: APIServerOptions) -> RunningAPIServer:
    """The running API server; `datadir.DataDirInUse` if another one has the data directory."""
    lock = datadir.open_data_dir(options.data_dir, options.lock_file)
    try:
        return await _open(options, lock)
    except BaseException:
        lock.release()
        raise


async def _open(options: APIServerOptions, lock: datadir.DataDirLock) -> RunningAPIServer:
    store = await _open_store(options)
    allocator = ServiceAllocator(options.service_cidr)
    _restore_allocations(store, allocator)
    if isinstance(store, EtcdStore):
        _share_allocations(store, allocator)
    registry = Registry(store, allocator)
    hosts = sorted({"localhost", "127.0.0.1", options.host, allocator.ips.nth(1),
                    *certs.SERVICE_NAMES})
    creds = certs.ensure_credentials(options.data_dir, hosts=hosts)
    handler = ResourceHandler(registry, bookmark_interval=options.bookmark_interval,
                              kubelet_token=creds.kubelet_token,
                              unenforced=() if options.enforces_network_policy else
                              ("NetworkPolicy",), metric_resolution=options.metric_resolution,
                              issuer=sa_tokens.Issuer(creds.service_account_key,
                                                      registry.clock))
    context = None
    if options.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(creds.server_cert, creds.server_key)
        # Client certificates are asked for, verified by the cluster CA, never required
        # (kube-apiserver's --client-ca-file): `access` takes CN and O from a verified one.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(creds.ca_cert)
        context.set_alpn_protocols(["http/1.1"])
    unix_path = _socket_path() if options.local_socket else None
    nodes = nodeauthz.NodeAuthorizer(store, rbac_bootstrap.node_rules)  # Node, then RBAC
    access = AccessControl(creds.token, handler.service_account_user,
                           RBACAuthorizer(store, first=nodes.authorize),
                           bootstrap_tokens.Authenticator(store, registry.clock),
                           kubelet_client_token=creds.kubelet_token)
    tokens_file = options.data_dir / "tokens.csv"  # --token-auth-file
    component_tokens = static_tokens.ensure(
        tokens_file, [User(name, groups) for name, groups in options.component_users])
    access.token_authenticators.insert(1, static_tokens.TokenFile(tokens_file).user)
    crd_controller.CRDController(registry).reconcile()  # stored CRDs are served from the start
    if options.features.mutating_policies:  # before bootstrap: it registers the APIService
        resources.serve_mutating_policies(True)
    audit_log = audit.AuditLog(options.audit_log, audit.load_policy(options.audit_policy)) \
        if options.audit_log is not None else None
    server = APIServer(handler, token=creds.token, host=options.host, port=options.port,
                       ssl_context=context, unix_path=unix_path, access=access,
                       audit_log=audit_log)
    await server.start()
    lock.record(server.url)
    # Synchronous, so it completes before the loop serves the first request.
    advertised = options.advertise_address or options.host  # where pods reach this server
    bootstrap.bootstrap(registry, api_host=advertised, api_port=server.port)
    rbac_bootstrap.reconcile(registry)
    kubeconfig = options.data_dir / options.kubeconfig_file if options.kubeconfig_file \
        else creds.kubeconfig
    certs.write_kubeconfig(kubeconfig, server=server.url, ca_cert=creds.ca_cert,
                           token=creds.token, name=options.kubeconfig_name)
    if isinstance(store, EtcdStore):
        await store.settle(0)  # the built-in objects are in etcd before the first request
        reconciler = asyncio.create_task(endpoint_leases.reconcile_forever(
            registry, api_host=advertised, api_port=server.port), name="endpoint-reconciler")
    else:
        reconciler = asyncio.create_task(bootstrap.reconcile_endpoints_forever(
            registry, api_host=advertised, api_port=server.port), name="endpoint-reconciler")
    scraper = asyncio.create_task(handler.metrics.run_forever(), name="metrics-scraper")
    crds = crd_controller.CRDController(registry)
    crd_task = asyncio.create_task(crds.run_forever(), name="crd-controller")
    aggregator = asyncio.create_task(rbac_bootstrap.aggregate_forever(registry),
                                     name="clusterrole-aggregation")
    running = RunningAPIServer(server, store, registry, creds, lock, reconciler, scraper, crds,
                               crd_task, aggregator, options.features.mutating_policies,
                               component_tokens)
    if options.warm_at_open:
        running.warm_documents()
    return running


async def _open_store(options: APIServerOptions) -> Store:
    if not options.store:
        return Store(SQLiteBackend(options.data_dir / "state.db", durable=options.durable),
                     history=options.watch_history)
    config = EtcdConfig.parse(options.store, ca_file=options.etcd_cafile,
                              cert_file=options.etcd_certfile, key_file=options.etcd_keyfile)
    return await open_etcd_store(config, history=options.watch_history,
                                 compaction_interval=options.etcd_compaction_interval)


def _share_allocations(store: EtcdStore, allocator: ServiceAllocator) -> None:
    """Allocations are etcd's (each address and port a key written with its Service): this
    server's allocator follows them as hints and starts its cursors at random places, as
    kube's bitmap allocator does, so that two servers seldom try the same address."""
    allocator.scatter()

    def hint(kind: str, item: str, held: bool) -> None:
        if kind == "ip" and allocator.ips.contains(item):
            (allocator.ips.reserve if held else allocator.ips.release)(item)
        elif kind == "port" and item.isdigit():
            (allocator.ports.reserve if held else allocator.ports.release)(int(item))
    store.on_range = hint


def warm_documents() -> None:
    """Build and cache every OpenAPI document (v3 per group-version, v2 in JSON and protobuf);
    discovery documents are cheap and built on first use."""
    openapi.index()
    for media_type in (openapi_v2.JSON, openapi_v2.PROTOBUF):
        openapi_v2.encoded(media_type)
