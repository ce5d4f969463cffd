"""Custom resource creates beside ConfigMap creates, on the API server alone.

    PYTHONPATH=src python3 bench/cel/creates.py [--objects 2000] [--clients 16]

Issue 14's benchmark: a CRD with a 20-field schema, 2 CEL rules and defaults; `--objects`
custom resources and as many ConfigMaps are POSTed by `--clients` keep-alive connections,
ConfigMaps first, then the custom resources, then ConfigMaps again (their mean is the
baseline). Target: CR creates/s >= 0.5x ConfigMap creates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

import run as api  # bench/api/run.py: server start-up and client

GROUP = "bench.example.com"
FIELDS = {f"field{i:02d}": {"type": "string", "maxLength": 64} for i in range(16)}
SCHEMA = {"type": "object", "properties": {"spec": {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "self.minReplicas <= self.replicas", "message": "minReplicas above replicas"},
        {"rule": "self.tags.all(t, t.size() <= 32)", "message": "a tag is too long"}],
    "properties": {**FIELDS, "replicas": {"type": "integer", "default": 1},
                   "minReplicas": {"type": "integer", "default": 0},
                   "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                   "tags": {"type": "array", "items": {"type": "string"}}}}}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": f"widgets.{GROUP}"},
       "spec": {"group": GROUP, "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": SCHEMA}}]}}


def widget(index: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget",
            "metadata": {"name": f"w-{index:05d}"},
            "spec": {**{name: f"value-{index}" for name in FIELDS}, "replicas": 3,
                     "tags": ["a", "b", "c"]}}


def configmap(index: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{index:05d}"},
            "data": {name: f"value-{index}" for name in FIELDS}}


async def creates(client: api.Client, path: str, make: Callable[[int], dict[str, Any]],
                  count: int, clients: int, offset: int) -> float:
    indexes = iter(range(offset, offset + count))

    async def worker() -> None:
        for index in indexes:
            await client.post(path, make(index))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return count / (time.perf_counter() - started)


async def bench(server: api.Server, count: int, clients: int) -> None:
    client = api.Client(server, clients)
    try:
        await client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the CRD is served
            try:
                await client.get_bytes(f"/apis/{GROUP}/v1/namespaces/default/widgets")
                break
            except RuntimeError:
                await asyncio.sleep(0.05)
        cms = "/api/v1/namespaces/default/configmaps"
        first = await creates(client, cms, configmap, count, clients, 0)
        crs = await creates(client, f"/apis/{GROUP}/v1/namespaces/default/widgets", widget,
                            count, clients, 0)
        second = await creates(client, cms, configmap, count, clients, count)
    finally:
        await client.close()
    baseline = (first + second) / 2
    api.report(f"ConfigMap creates, {clients} clients", f"{baseline:,.0f}/s "
               f"({first:,.0f}, {second:,.0f})", "baseline", None)
    api.report("CR creates (20 fields, 2 rules, defaults)",
               f"{crs:,.0f}/s = {crs / baseline:.2f}x", ">= 0.5x", crs >= 0.5 * baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-cel-") as work:
        server = api.start_apiserver(Path(work) / "data")
        try:
            api.run(lambda: bench(server, args.objects, args.clients))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
