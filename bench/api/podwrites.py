"""What each of a pod's writes costs the API server, in CPU per request (issue 18).

    python bench/api/podwrites.py [--pods 2000] [--clients 32] [--rounds 3] [--no-watch]

`bench/scale` counts about six requests per virtual pod that starts (the ReplicaSet's create,
the scheduler's binding and Event, the node agent's status patch and Event, the ReplicaSet's
Event) besides the writes a Service's pods share. This bench sends the same kinds, one kind at
a time, to the API server alone (bench/api/serve.py, over HTTPS as in bench/api), and prints
the server's CPU time (user + system, from /proc) per request of each kind: a figure the
machine's load distorts far less than wall time, so a change to the write path can be measured
on a shared machine. Each round uses a namespace of its own; the median over rounds is printed.

Kinds, `--pods` of each per round, `--clients` in flight:
  create    a pod from a Deployment's template (labels, one container with a port);
  binding   `pods/NAME/binding` to a node (the node need not exist, as in kube);
  status    the node agent's strategic-merge status patch of a virtual pod's start
            (phase Running, its conditions, a container status, pod and host IPs);
  event     a core/v1 Event about the pod, as the scheduler's `Scheduled`.

With a watch open (the default, `--no-watch` to leave it out), every write is also encoded and
sent to one client watching all pods and one watching all events, as the components process's
shared informers watch them under `tinykube up`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Client, Server, default_account, run, start_apiserver

Obj = dict[str, Any]
Body = Callable[[str, int], tuple[str, str, Obj, str]]  # (method, path, body, content type)
JSON = "application/json"
STRATEGIC = "application/strategic-merge-patch+json"
NOW = "2026-12-03T00:00:00Z"


def _name(index: int) -> str:
    return f"web-{index:05d}"


def create_body(namespace: str, index: int) -> tuple[str, str, Obj, str]:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": _name(index), "labels": {"app": f"svc-{index // 10}"}},
           "spec": {"containers": [{"name": "web", "image": "nginx:1.11",
                                    "ports": [{"containerPort": 80}]}]}}
    return "POST", f"/api/v1/namespaces/{namespace}/pods", pod, JSON


def binding_body(namespace: str, index: int) -> tuple[str, str, Obj, str]:
    name = _name(index)
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": f"n{index % 30}"}}
    return "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body, JSON


def status_body(namespace: str, index: int) -> tuple[str, str, Obj, str]:
    conditions = [{"type": kind, "status": "True", "lastTransitionTime": NOW}
                  for kind in ("PodReadyToStartContainers", "Initialized", "Ready",
                               "ContainersReady")]
    status = {"phase": "Running", "podIP": f"10.244.{index // 250}.{index % 250 + 2}",
              "podIPs": [{"ip": f"10.244.{index // 250}.{index % 250 + 2}"}],
              "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "startTime": NOW,
              "conditions": conditions,
              "containerStatuses": [{"name": "web", "image": "nginx:1.11",
                                     "imageID": "", "ready": True, "started": True,
                                     "restartCount": 0, "containerID": f"virtual://{index}",
                                     "state": {"running": {"startedAt": NOW}},
                                     "lastState": {}}]}
    path = f"/api/v1/namespaces/{namespace}/pods/{_name(index)}/status"
    return "PATCH", path, {"status": status}, STRATEGIC


def event_body(namespace: str, index: int) -> tuple[str, str, Obj, str]:
    name = _name(index)
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": f"{name}.18a0b1c2d3e4f5a6"},
             "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace,
                                "name": name},
             "reason": "Scheduled", "type": "Normal",
             "message": f"Successfully assigned {namespace}/{name} to n{index % 30}",
             "source": {"component": "default-scheduler"}, "firstTimestamp": NOW,
             "lastTimestamp": NOW, "count": 1, "reportingComponent": "default-scheduler",
             "reportingInstance": "default-scheduler"}
    return "POST", f"/api/v1/namespaces/{namespace}/events", event, JSON


KINDS: list[tuple[str, Body]] = [("create", create_body), ("binding", binding_body),
                                 ("status", status_body), ("event", event_body)]


async def send_all(client: Client, body: Body, namespace: str, pods: int,
                   clients: int) -> float:
    """Send `pods` requests of one kind, `clients` at a time; returns the wall seconds."""
    indices = iter(range(pods))

    async def worker() -> None:
        for index in indices:
            method, path, payload, content_type = body(namespace, index)
            async with client.session.request(method, path, data=orjson.dumps(payload),
                                              headers={"Content-Type": content_type}) as reply:
                data = await reply.read()
                if reply.status >= 300:
                    raise SystemExit(f"{method} {path}: {reply.status} {data[:300]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started


async def drain_watch(client: Client, path: str) -> None:
    """Read a watch to the end and throw the events away (a busy informer's share)."""
    async with client.session.get(path, params={"watch": "true"}) as reply:
        async for _chunk in reply.content.iter_any():
            pass


async def one_round(server: Server, client: Client, namespace: str, pods: int,
                    clients: int) -> dict[str, tuple[float, float]]:
    await client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    await default_account(client, namespace)
    figures = {}
    for kind, body in KINDS:
        cpu_before = server.cpu_seconds()
        wall = await send_all(client, body, namespace, pods, clients)
        figures[kind] = ((server.cpu_seconds() - cpu_before) / pods, pods / wall)
    return figures


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-podwrites-") as work:
        server = start_apiserver(Path(work))
        client = Client(server, args.clients + 2)
        watches: list[asyncio.Task[None]] = []
        try:
            if not args.no_watch:
                watches = [asyncio.create_task(drain_watch(client, path))
                           for path in ("/api/v1/pods", "/api/v1/events")]
            rounds = [await one_round(server, client, f"round-{n}", args.pods, args.clients)
                      for n in range(args.rounds)]
        finally:
            for task in watches:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await task
            await client.close()
            server.stop()
    watched = "no watch" if args.no_watch else "pods and events watched"
    print(f"API server CPU per request, median of {args.rounds} rounds of {args.pods} "
          f"({args.clients} in flight, {watched}):")
    total = 0.0
    for kind, _body in KINDS:
        cpu = statistics.median(r[kind][0] for r in rounds) * 1000
        rate = statistics.median(r[kind][1] for r in rounds)
        total += cpu
        print(f"  {kind:<8} {cpu:6.3f} ms   ({rate:,.0f}/s)")
    print(f"  {'sum':<8} {total:6.3f} ms   (one of each: a virtual pod's start has these four "
          "and two more Events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-watch", action="store_true")
    args = parser.parse_args()
    run(lambda: bench(args))


if __name__ == "__main__":
    main()
