"""Node IPAM: one allocator hands every Node a pod range of the cluster's (`spec.podCIDR`).

As kube-controller-manager's nodeipam controller with its range allocator
(pkg/controller/nodeipam/ipam/range_allocator.go and cidrset): the cluster's pod range
(`--cluster-cidr`) is cut into /24s (`--node-cidr-mask-size`; the whole range if it is
smaller), and a Node without `spec.podCIDR` gets the next free one, written with the Node's
resourceVersion as precondition. Since the controllers run once (leader-elected), two nodes
joining at the same moment can never get one range.

- `CIDRSet` is the pure part: which ranges are taken and by whom. `allocate` goes round the
  range from after the last one it gave (cidrset's `nextCandidate`), so a range just released
  is not handed out again at once.
- Before the first sync, every cached Node's range is occupied (kube does it from a list at
  start). A Node that came with a range (`tinykube up`'s own nodes, `tinykube node
  --pod-cidr`) keeps it; one overlapping another Node's range gets a Warning
  `CIDRNotAvailable` event, as does a Node for which no range is left.
- A deleted Node's range is released.
- What this allocator gave is remembered by Node name until the cache shows it, so a sync that
  runs on a cache not yet updated writes the same range again instead of a second one.

The node agent of a joining node (`tinykube node`) creates its Node without a range and waits
for this controller's (`cli.nodeagent`), as a kubelet waits for its podCIDR.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)
NODES = resources.must("", "v1", "nodes")
NODE_MASK = 24  # kube-controller-manager's --node-cidr-mask-size for IPv4


class RangeFull(Exception):
    """No range of the cluster's is free."""


class CIDRSet:
    """The ranges of one cluster range, each free or held by an owner (a Node's name)."""

    def __init__(self, cluster_cidr: str, mask: int = NODE_MASK) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        self.mask = max(mask, self.network.prefixlen)
        self.size = 1 << (self.mask - self.network.prefixlen)
        self._block = 1 << (self.network.max_prefixlen - self.mask)  # addresses per range
        self.owners: dict[int, str] = {}  # range index -> owner
        self._next = 0

    def __repr__(self) -> str:
        return f"<CIDRSet {self.network} /{self.mask} {len(self.owners)} of {self.size} taken>"

    def cidr(self, index: int) -> str:
        start = int(self.network.network_address) + index * self._block
        return f"{ipaddress.ip_address(start)}/{self.mask}"

    def allocate(self, owner: str) -> str:
        """The next free range, now `owner`'s."""
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self.owners:
                self.owners[index] = owner
                self._next = (index + 1) % self.size
                return self.cidr(index)
        raise RangeFull(f"no free /{self.mask} left in {self.network}")

    def occupy(self, owner: str, cidr: str) -> set[str]:
        """Mark the ranges `cidr` covers (or lies in) as `owner`'s; the other owners already
        holding any of them, who keep theirs. A `cidr` outside the cluster range is ignored."""
        indices = self._indices(cidr)
        others = {self.owners[i] for i in indices if self.owners.get(i, owner) != owner}
        for index in indices:
            self.owners.setdefault(index, owner)
        return others

    def release(self, owner: str) -> None:
        """Free every range `owner` holds."""
        for index in [i for i, o in self.owners.items() if o == owner]:
            del self.owners[index]

    def held_by(self, owner: str) -> list[str]:
        return [self.cidr(i) for i, o in sorted(self.owners.items()) if o == owner]

    def _indices(self, cidr: str) -> range:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version != self.network.version or not net.overlaps(self.network):
            return range(0)
        base = int(self.network.network_address)
        first = max(int(net.network_address), base)
        last = min(int(net.broadcast_address), int(self.network.broadcast_address))
        return range((first - base) // self._block, (last - base) // self._block + 1)


def node_cidr(node: Mapping[str, Any]) -> str | None:
    return (node.get("spec") or {}).get("podCIDR") or None


class NodeIPAMController(Controller):
    name = "node-ipam"

    def __init__(self, client: RESTClient, cluster_cidr: str, *, mask: int = NODE_MASK) -> None:
        self.nodes = shared_informer(client, NODES)
        super().__init__(client, [self.nodes])
        self.cidrs = CIDRSet(cluster_cidr, mask)
        self.recorder = events.Recorder(client, "cidrAllocator")
        self._occupied = False
        self.nodes.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                                on_delete=self.enqueue)

    def _occupy_all(self) -> None:
        """Every cached Node's range, before the first allocation."""
        self._occupied = True
        for node in self.nodes.cache.list():
            if (cidr := node_cidr(node)) is not None:
                self.cidrs.occupy(node["metadata"]["name"], cidr)

    async def sync(self, key: str) -> None:
        if not self._occupied:
            self._occupy_all()
        node = self.nodes.cache.get(key)
        if node is None:
            self.cidrs.release(key)
            return
        if (cidr := node_cidr(node)) is not None:
            await self._occupy(node, cidr)
            return
        held = self.cidrs.held_by(key)
        try:
            cidr = held[0] if held else self.cidrs.allocate(key)
        except RangeFull as exc:
            await self.recorder.event(node, "Warning", "CIDRNotAvailable",
                                      f"Node {key} status is now: CIDRNotAvailable ({exc})")
            return
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                 "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        try:
            await self.client.patch(NODES, key, patch, patch_type="merge")
        except errors.NotFound:
            self.cidrs.release(key)
            return
        except errors.Conflict:  # the Node changed: sync again on the newer one, same range
            self.queue.add(key)
            return
        log.info("%s: node %s gets pod range %s", self.name, key, cidr)

    async def _occupy(self, node: Mapping[str, Any], cidr: str) -> None:
        """The Node has a range: it is its own (a different one this allocator held for it is
        released), and one overlapping another Node's is reported when first seen."""
        name = node["metadata"]["name"]
        held = self.cidrs.held_by(name)
        if held and cidr in held:
            return
        self.cidrs.release(name)
        if others := self.cidrs.occupy(name, cidr):
            await self.recorder.event(
                node, "Warning", "CIDRNotAvailable",
                f"Node {name}'s pod range {cidr} overlaps that of {', '.join(sorted(others))}")
