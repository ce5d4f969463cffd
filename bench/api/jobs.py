"""The Job-heavy mix: Jobs created, their pods run to completion by a virtual node.

It needs the controllers and nodes, so it runs on a `tinykube up` of its own (`--no-dns
--no-proxy`, `--virtual-job-seconds` for how long each Job's pod runs) with `nodes_for(count)`
virtual nodes: a node takes 110 pods, as a kubelet's default `maxPods`, and the pod mix's pods
keep running beside the Jobs' pods.

1. the pod mix on that server, for comparison: `count` bare pods POSTed by `clients`
   connections (the scheduler and the node start each of them meanwhile);
2. the Job mix: `count` Jobs (completions 1, one pod each) POSTed the same way: creates/s and
   latency p50/p99;
3. completion: a watch on the Jobs, opened before the first create, counts each Job whose
   `Complete` condition turns True; the figure is Jobs completed per second from the first
   create to the last completion, bounded by `deadline` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from run import Client, default_account, ms, percentile, pod, report

POD_NAMESPACE = "podmix"
PODS_PER_NODE = 110
JOB_NAMESPACE = "jobmix"


def nodes_for(count: int) -> list[str]:
    """Enough nodes for `count` bare pods and `count` Job pods, one spare."""
    return [f"bench-{i}" for i in range(-(-2 * count // PODS_PER_NODE) + 1)]


def job(index: int) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"job-{index:05d}", "labels": {"app": "bench"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "work", "image": "busybox:1.36",
                                "command": ["true"]}]}}}}


async def _creates(client: Client, path: str, make: Any, count: int,
                   clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for index in next_index:
            sent = time.perf_counter()
            await client.post(path, make(index))
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return count / (time.perf_counter() - started), latencies


def _report_creates(label: str, rate: float, latencies: list[float]) -> None:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    report(label, f"{rate:,.0f}/s, p50 {ms(p50)}, p99 {ms(p99)}", "", None)


async def _namespace(client: Client, name: str) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": name}})
    await default_account(client, name)


async def _count_completions(client: Client, path: str, rv: str, count: int) -> float:
    """Wait until `count` Jobs are Complete; the time the last one was seen."""
    done: set[str] = set()
    async with client.session.get(path, params={"watch": "1", "resourceVersion": rv}) as reply:
        async for line in reply.content:
            event = orjson.loads(line)
            obj = event["object"]
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Complete" and c.get("status") == "True"
                   for c in conditions):
                done.add(obj["metadata"]["name"])
                if len(done) >= count:
                    return time.perf_counter()
    raise RuntimeError(f"the Job watch ended with {len(done)} of {count} Jobs Complete")


async def bench_jobs(client: Client, count: int, clients: int, deadline: float) -> None:
    report(f"job mix: `up`, {len(nodes_for(count))} virtual nodes",
           f"{count:,} pods, then {count:,} Jobs", "", None)
    await _namespace(client, POD_NAMESPACE)
    rate, latencies = await _creates(client, f"/api/v1/namespaces/{POD_NAMESPACE}/pods", pod,
                                     count, clients)
    _report_creates(f"  pod creates, {clients} clients", rate, latencies)

    await _namespace(client, JOB_NAMESPACE)
    path = f"/apis/batch/v1/namespaces/{JOB_NAMESPACE}/jobs"
    rv = orjson.loads(await client.get_bytes(path))["metadata"]["resourceVersion"]
    watcher = asyncio.create_task(_count_completions(client, path, rv, count))
    started = time.perf_counter()
    rate, latencies = await _creates(client, path, job, count, clients)
    _report_creates(f"  job creates, {clients} clients", rate, latencies)
    try:
        finished = await asyncio.wait_for(watcher, timeout=deadline)
    except TimeoutError:
        report("  every Job Complete (pod run)", f"not all in {deadline:.0f} s", "",
               False)
        return
    elapsed = finished - started
    report("  every Job Complete (pod run)",
           f"{count:,} in {elapsed:.1f} s = {count / elapsed:,.0f}/s", "", None)
