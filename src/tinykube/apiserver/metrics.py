"""`metrics.k8s.io/v1beta1`: what metrics-server serves, scraped from the kubelets.

A cluster runs metrics-server behind an APIService; `kubectl top` and the
HorizontalPodAutoscaler read it. tinykube's API server does its job itself:

- **Scraping**: every `resolution` seconds (metrics-server's `--metric-resolution`, 15 s by
  default) it asks the kubelet endpoint of every Node for `/metrics/resource` with the
  cluster's kubelet token, all nodes at once (at most `CONCURRENCY` at a time, each within
  `TIMEOUT`), and keeps the last two points of each node and container
  (`api.resourcemetrics.Storage`). A node that does not answer keeps its old points, and its
  failure is logged once, not at every period.
- **Serving**: `nodes` (cluster-scoped) and `pods` (namespaced), `get` and `list` only, as
  metrics-server: lists follow the Nodes and Pods in the store (label selectors, and the
  `metadata.name`/`metadata.namespace` field selectors), leaving out what has no usage yet
  (one scrape is not enough for a CPU rate; pods that run nothing, as `virtual` ones, never
  have one). A missing Pod or Node is the core `NotFound` (`pods "x" not found`); one without
  figures is `podmetrics.metrics.k8s.io "ns/x" not found`, as metrics-server answers. `watch`
  gets 405, as from a storage that cannot watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tinykube.api import errors, resourcemetrics, resources, selectors
from tinykube.api.meta import rfc3339
from tinykube.api.resourcemetrics import Storage
from tinykube.api.resources import Resource
from tinykube.apiserver import codec, kubelets
from tinykube.apiserver.params import parse_bool
from tinykube.apiserver.paths import Target
from tinykube.apiserver.registry import Registry

log = logging.getLogger(__name__)
RESOLUTION = 15.0  # seconds between scrapes (metrics-server's default manifest)
TIMEOUT = 10.0  # seconds for one node's scrape, at most
CONCURRENCY = 32  # nodes scraped at once
MAX_SCRAPE = 16 * 1024 * 1024  # bytes of one node's answer, at most
Obj = dict[str, Any]
_NODES = resources.must("", "v1", "nodes")
_PODS = resources.must("", "v1", "pods")
_SOURCES = {"NodeMetrics": _NODES, "PodMetrics": _PODS}
_GROUP_RESOURCE = {"NodeMetrics": "nodemetrics", "PodMetrics": "podmetrics"}


class ResourceMetrics:
    """Scrapes the kubelets and serves `metrics.k8s.io` from what it scraped."""

    def __init__(self, registry: Registry, kubelet_token: str, *,
                 resolution: float = RESOLUTION,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.headers = {"Authorization": f"Bearer {kubelet_token}"}
        self.resolution = resolution
        self.storage = Storage(resolution)
        self.clock = clock
        self._failing: set[str] = set()

    def __repr__(self) -> str:
        return f"ResourceMetrics(every {self.resolution} s, {self.storage!r})"

    # --- scraping ---------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Scrape every node every `resolution` seconds, on a fixed beat."""
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            loop = asyncio.get_running_loop()
            beat = loop.time()
            while True:
                try:
                    await self.scrape(session)
                except Exception:  # a bug must not end the scrapes for good
                    log.exception("a round of kubelet scrapes failed")
                beat += self.resolution
                await asyncio.sleep(max(0.0, beat - loop.time()))
                beat = max(beat, loop.time() - self.resolution)  # no burst after a stall

    async def scrape(self, session: aiohttp.ClientSession) -> None:
        """One round: every Node with a kubelet endpoint; forget the Nodes that are gone."""
        nodes = {e.obj["metadata"]["name"]: kubelets.endpoint(e.obj)
                 for e in self.registry.store.list(_NODES.storage_key)}
        for gone in self.storage.nodes() - nodes.keys():
            self.storage.forget(gone)
        await asyncio.gather(*(self._scrape_node(session, name, url)
                               for name, url in nodes.items() if url))

    async def _scrape_node(self, session: aiohttp.ClientSession, node: str, url: str) -> None:
        started = int(self.clock() * 1000)
        try:
            async with session.get(f"{url}/metrics/resource", headers=self.headers,
                                   timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as answer:
                if answer.status != 200:
                    raise ValueError(f"HTTP {answer.status}")
                body = await answer.content.read(MAX_SCRAPE)
            batch = resourcemetrics.decode(body.decode(), started)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            if node not in self._failing:
                log.warning("scraping the kubelet of node %s (%s) failed: %s", node, url, exc)
                self._failing.add(node)
            return
        if node in self._failing:
            log.info("scraping the kubelet of node %s works again", node)
            self._failing.discard(node)
        self.storage.store(node, batch)

    # --- serving ----------------------------------------------------------------------------

    async def serve(self, request: web.Request, target: Target) -> web.Response:
        res = target.res
        if request.method != "GET":
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource "
                f"({request.method})")
        if target.subresource:
            raise errors.NotFound.path()
        if target.is_collection and parse_bool(request.query.get("watch")):
            raise errors.MethodNotAllowed(
                f'watch is not supported on resources of kind "{res.qualified}"',
                details={"group": res.group, "kind": res.plural})
        now = rfc3339()
        if target.is_collection:
            items = self._list(request, res, target.namespace, now)
            body: Obj = resourcemetrics.metrics_list(res.kind, items)
        else:
            items = [self._get(res, target.namespace or "", target.name or "", now)]
            body = items[0]
        if codec.wants_table(request.headers.get("Accept", "")):
            body = codec.table(res, items, now=self.registry.clock(),
                               include_object=request.query.get("includeObject", ""))
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _metrics(self, kind: str, obj: Obj, now: str) -> Obj | None:
        meta = obj["metadata"]
        if kind == "NodeMetrics":
            node = self.storage.node(meta["name"])
            return None if node is None else resourcemetrics.node_metrics(obj, node, now)
        pod = self.storage.pod((meta["namespace"], meta["name"]))
        return None if pod is None else resourcemetrics.pod_metrics(obj, pod, now)

    def _list(self, request: web.Request, res: Resource, namespace: str | None,
              now: str) -> list[Obj]:
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fields = selectors.parse_fields(request.query.get("fieldSelector"))
        selectors.check_fields(res.kind, fields)

        def matches(obj: Obj) -> bool:
            meta = obj["metadata"]
            own = {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}}
            return selectors.match_labels(labels, meta.get("labels")) and \
                selectors.match_fields(fields, own)
        source = _SOURCES[res.kind]
        entries = self.registry.store.list(source.storage_key,
                                           namespace if res.namespaced else None, matches)
        objects = sorted((e.obj for e in entries), key=lambda o: (
            o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return [m for o in objects if (m := self._metrics(res.kind, o, now)) is not None]

    def _get(self, res: Resource, namespace: str, name: str, now: str) -> Obj:
        obj = self.registry.get(_SOURCES[res.kind], namespace, name).obj  # NotFound: pods "x"
        found = self._metrics(res.kind, obj, now)
        if found is None:
            key = f"{namespace}/{name}" if res.namespaced else name
            raise errors.NotFound.for_object(_GROUP_RESOURCE[res.kind], res.group, key)
        return found
