"""Routes to every other node's pods, from the Nodes (flannel's host-gw backend, in miniature).

In `--network netns` the nodes of one `tinykube up` get their routes from the plan; a node that
joins from elsewhere (`tinykube node --network netns`) is not in it. So every netns-mode
process runs this controller: it watches the Nodes and, in each node namespace it owns, keeps
one route per other Node's `spec.podCIDR` via that Node's InternalIP when that address is on
the underlay (`plan.routes_to_nodes`), and removes the routes it made for Nodes that are gone.
Its own nodes' ranges are the plan's and never taken from the Nodes (a Node left from an
earlier run with other `--nodes` may name a stale range).
Every event maps to the one key `routes`; the sync recomputes everything (level-triggered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from tinykube.api import resources
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.network import netns
from tinykube.network.plan import NodeNetwork, routes_to_nodes

log = logging.getLogger(__name__)
KEY = "routes"


def node_facts(node: Mapping[str, Any]) -> tuple[str, str, str]:
    """(name, podCIDR, InternalIP) of a Node."""
    address = next((a.get("address", "") for a in
                    (node.get("status") or {}).get("addresses") or []
                    if a.get("type") == "InternalIP"), "")
    return (node["metadata"]["name"], str((node.get("spec") or {}).get("podCIDR") or ""),
            str(address))


def desired_routes(node: NodeNetwork, ours: list[NodeNetwork],
                   nodes: list[tuple[str, str, str]]) -> dict[str, str]:
    """The routes `node` (one of `ours`, this process's nodes) should have: its plan's, and
    one to each other host's Node range that is not a range of the plan (`nodes` as
    `node_facts`)."""
    names = {n.name for n in ours}
    planned = {n.pod_cidr for n in ours} | {cidr for n in ours for cidr, _ in n.routes}
    found = routes_to_nodes([f for f in nodes if f[0] not in names], node.name)
    return {**dict(node.routes), **{c: h for c, h in found.items() if c not in planned}}


class NodeRoutes(Controller):
    name = "node-routes"

    def __init__(self, client: RESTClient, nodes: list[NodeNetwork]) -> None:
        self.nodes_informer = shared_informer(client, resources.must("", "v1", "nodes"))
        super().__init__(client, [self.nodes_informer])
        self.ours = nodes
        self.applied: dict[str, dict[str, str]] = {n.name: dict(n.routes) for n in nodes}
        self.nodes_informer.add_handlers(on_add=self._changed,
                                         on_update=lambda _o, n: self._changed(n),
                                         on_delete=self._changed)

    def _changed(self, _node: Mapping[str, Any]) -> None:
        self.queue.add(KEY)

    async def sync(self, key: str) -> None:
        facts = [node_facts(n) for n in self.nodes_informer.cache.list()]
        for node in self.ours:
            wanted = desired_routes(node, self.ours, facts)
            had = self.applied.get(node.name, {})
            if wanted == had:
                continue
            gone = set(had) - set(wanted)
            changed = {c: h for c, h in wanted.items() if had.get(c) != h}
            log.info("%s: routes in %s: %s, removed %s", self.name, node.name, changed, gone)
            await asyncio.to_thread(netns.replace_routes, node, changed, gone)
            self.applied[node.name] = wanted
