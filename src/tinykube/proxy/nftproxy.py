"""The service proxy of `--network netns`: the `nftables` renderer applied in every node.

`NftNode` programs one node's network namespace (`ip netns exec NS nft -f -`, so the host's
own ruleset is never touched: every command names a namespace the cluster made). Its first load
replaces the table in one transaction; every later sync sends only `nftables.update_script`
(element adds and deletes, a few chains), which the trial measured at 5-18 ms at 10,000
Services. A failed update is followed by a full load at once, and a failed full load is retried
by the controller every `retry_interval`. After an update, UDP conntrack entries that still
point at removed endpoints (or were made while a port had none) are deleted with `conntrack
-D` (conntrack-tools), as kube-proxy does: UDP has no connection end, so an old entry would
keep sending a client's datagrams to a dead pod.

`NftSyncer` is the `syncer.ProxyController`'s target: each sync (debounced, level-triggered,
as the userspace proxy's) builds `ports.service_ports` from the informer caches once and
renders and applies it in every node concurrently. With `policy_inputs` (what
`start_nft_proxy` wires to its NetworkPolicy, Pod and Namespace informers), each node also gets
its `netpol` table, a second `NftNode` on the same namespace: same full load and element
updates, its own transaction, so a policy table nft refuses never holds back the Services.
With a `relay` (`noderelay.NodePortRelay`, the host's `127.0.0.1:<nodePort>` listeners) each
sync then brings the relay in step from the same caches, and its bind failures and refusals are
the sync's result, which the controller reports as Events on the Services.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tinykube.api import resources
from tinykube.client.rest import RESTClient
from tinykube.proxy import netpol, nftables
from tinykube.proxy.nftables import NodeConfig, Ruleset
from tinykube.proxy.ports import ServicePort, service_ports
from tinykube.proxy.syncer import (
    BindFailureHandler,
    Plan,
    ProxyController,
    RefusalHandler,
    Syncer,
    SyncResult,
)

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]


class NftError(RuntimeError):
    """`nft` refused a transaction; the message has its error output."""


async def run_in(netns: str, argv: Sequence[str], script: str = "") -> tuple[int, str]:
    """Run `argv` inside the named network namespace; (exit code, stderr)."""
    # No stdin pipe without a script: a command that exits at once (conntrack) would close
    # it before the write, which uvloop reports as an error.
    stdin = asyncio.subprocess.PIPE if script else asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, *argv, stdin=stdin,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate(script.encode() if script else None)
    assert process.returncode is not None
    return process.returncode, err.decode(errors="replace").strip()


def conntrack_args(destination: str, port: int, endpoint: str) -> list[str]:
    """`conntrack -D` for UDP entries to `destination:port` ("" : any local address, a node
    port) that were DNATed to `endpoint` ("" : any)."""
    argv = ["conntrack", "-D", "-p", "udp"]
    if destination:
        argv += ["--orig-dst", destination]
    argv += ["--orig-port-dst", str(port)]
    if endpoint:
        argv += ["--reply-src", endpoint]
    return argv


@dataclass
class NodeStats:
    full_loads: int = 0
    updates: int = 0
    last_seconds: float = 0.0  # wall time of the last nft run
    flushed: int = 0  # conntrack deletions run
    warned: bool = False  # that conntrack is missing


class NftNode:
    """One node's table: what is applied there, and how to change it. `full_script` makes
    the transaction that replaces the table (the service table's, or `netpol`'s)."""

    def __init__(self, config: NodeConfig, netns: str,
                 full_script: Callable[[Ruleset], str] = nftables.full_script) -> None:
        self.config = config
        self.netns = netns
        self.full_script = full_script
        self.applied: Ruleset | None = None
        self.stats = NodeStats()

    def __repr__(self) -> str:
        return f"NftNode({self.config.node}, {self.netns}, {self.stats})"

    async def nft(self, script: str) -> None:
        began = time.monotonic()
        code, err = await run_in(self.netns, ["nft", "-f", "-"], script)
        self.stats.last_seconds = time.monotonic() - began
        if code != 0:
            raise NftError(f"nft in {self.netns} failed ({code}): {err}")

    async def apply(self, rules: Ruleset) -> None:
        """Make the node's table `rules` (see the module docstring); raises NftError."""
        previous = self.applied
        if previous is not None:
            script = nftables.update_script(previous, rules)
            if not script:
                return
            try:
                await self.nft(script)
                self.stats.updates += 1
            except NftError as error:
                log.warning("%s; replacing the whole table", error)
                self.applied = None
        if self.applied is None:  # the first load, or the update failed
            await self.nft(self.full_script(rules))
            self.stats.full_loads += 1
        self.applied = rules
        if previous is not None:
            await self.flush_udp(nftables.stale_udp(previous, rules))

    async def flush_udp(self, stale: Iterable[tuple[str, int, str]]) -> None:
        stale = list(stale)
        if stale and shutil.which("conntrack") is None:
            if not self.stats.warned:
                log.warning("conntrack (conntrack-tools) is not installed: UDP flows to "
                            "removed endpoints are not flushed")
                self.stats.warned = True
            return
        for destination, port, endpoint in stale:
            code, err = await run_in(self.netns, conntrack_args(destination, port, endpoint))
            self.stats.flushed += 1
            if code not in (0, 1):  # 1: nothing matched
                log.warning("conntrack in %s: %s", self.netns, err)

    async def remove(self) -> None:
        """Delete the table (the namespace usually goes right after)."""
        with contextlib.suppress(OSError):
            await run_in(self.netns, ["nft", "-f", "-"],
                         f"add table ip {self.config.table}\n"
                         f"delete table ip {self.config.table}\n")
        self.applied = None


@dataclass(frozen=True)
class PolicyInputs:
    """What the policy tables are rendered from (the informer caches' objects)."""

    policies: Iterable[Obj]
    pods: Iterable[Obj]
    namespaces: Iterable[Obj]


POLICY_RESOURCES = (resources.must("networking.k8s.io", "v1", "networkpolicies"),
                    resources.must("", "v1", "pods"), resources.must("", "v1", "namespaces"))


class NftSyncer:
    """Renders the service ports (and, with `policy_inputs`, the NetworkPolicies) for every
    node and applies them (`ProxyController` target); then brings the relay, if any, in step."""

    def __init__(self, nodes: Sequence[NftNode], relay: Syncer | None = None, *,
                 policy_inputs: Callable[[], PolicyInputs] | None = None) -> None:
        self.nodes = list(nodes)
        self.relay = relay
        self.policy_inputs = policy_inputs
        self.policy_nodes = [
            NftNode(dataclasses.replace(n.config, table=netpol.TABLE), n.netns,
                    netpol.full_script) for n in self.nodes]
        self.failed: dict[str, BaseException] = {}  # node -> why its last apply failed

    def __repr__(self) -> str:
        return f"NftSyncer({len(self.nodes)} nodes, failed={sorted(self.failed)}, {self.relay!r})"

    @property
    def wants_retry(self) -> bool:
        return bool(self.failed) or (self.relay is not None and self.relay.wants_retry)

    async def sync(self, services: Iterable[Obj], slices: Iterable[Obj]) -> SyncResult:
        services, slices = list(services), list(slices)
        await self._apply(services, service_ports(services, slices))
        if self.relay is not None:
            return await self.relay.sync(services, slices)
        return SyncResult(Plan(), {}, [])

    async def _apply(self, services: list[Obj], ports: list[ServicePort]) -> None:
        applies = [(node, nftables.render(ports, node.config)) for node in self.nodes]
        if self.policy_inputs is not None:
            applies += self._policy_rulesets(services, self.policy_inputs())
        outcomes = await asyncio.gather(*(node.apply(rules) for node, rules in applies),
                                        return_exceptions=True)
        failed: dict[str, BaseException] = {}
        for (node, _), outcome in zip(applies, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            key = f"{node.config.node}" if node.config.table == nftables.TABLE else \
                f"{node.config.node} ({node.config.table})"
            if isinstance(outcome, BaseException):  # retried: one node never stops the rest
                if key not in self.failed:
                    log.error("nftables in node %s: %s", key, outcome,
                              exc_info=not isinstance(outcome, NftError))
                failed[key] = outcome
        self.failed = failed

    def _policy_rulesets(self, services: list[Obj], inputs: PolicyInputs
                         ) -> list[tuple[NftNode, Ruleset]]:
        policies = netpol.policies_of(inputs.policies)
        pods = netpol.pods_of(inputs.pods)
        namespaces = netpol.namespace_labels(inputs.namespaces)
        applies = []
        for node in self.policy_nodes:
            served = node.config.served
            dns = netpol.dns_peer(services, served[0]) if served else None
            applies.append((node, netpol.render(policies, pods, namespaces, node.config, dns)))
        return applies

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        await asyncio.gather(*(node.remove() for node in self.nodes + self.policy_nodes))


@dataclass
class RunningNftProxy:
    controller: ProxyController[NftSyncer]
    syncer: NftSyncer
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)  # its failure was reported
        await self.syncer.close()


async def start_nft_proxy(client: RESTClient, nodes: Sequence[NftNode], *,
                          relay: Syncer | None = None,
                          on_bind_failure: BindFailureHandler | None = None,
                          on_refusal: RefusalHandler | None = None,
                          min_interval: float = 0.05, retry_interval: float = 5.0
                          ) -> RunningNftProxy:
    """Start the informers and return after the first sync has programmed every node (and
    the relay, if any, listens: its failures go to the callbacks, as the userspace proxy's)."""
    syncer = NftSyncer(nodes, relay)
    controller = ProxyController(client, syncer, min_interval=min_interval,
                                 retry_interval=retry_interval,
                                 on_bind_failure=on_bind_failure, on_refusal=on_refusal,
                                 extra=POLICY_RESOURCES)
    informers = controller.informers
    syncer.policy_inputs = lambda: PolicyInputs(
        informers["networkpolicies"].cache.list(), informers["pods"].cache.list(),
        informers["namespaces"].cache.list())
    running = RunningNftProxy(controller, syncer,
                              asyncio.create_task(controller.run(), name="nftables proxy"))
    synced = asyncio.create_task(controller.synced.wait())
    await asyncio.wait({synced, running.task}, return_when=asyncio.FIRST_COMPLETED)
    if not synced.done():
        synced.cancel()
        await running.close()
        running.task.result()
    if syncer.failed:
        await running.close()
        raise next(iter(syncer.failed.values()))
    return running
