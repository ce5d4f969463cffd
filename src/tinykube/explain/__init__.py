"""Explain what the cluster network does with a name or a Service, and why.

Two pure functions over a `Snapshot` of API objects, each returning a JSON-able dict:

    names.explain_name(snap, name, qtype=, from_pod=, namespace=, domain=, pod_records=)
    service.explain_service(snap, name, namespace=)

and `explain(client, ...)` / `explain_service_of(client, ...)`, which list the objects through
the API (`snapshot.gather`) first. `render.text` turns either result into the CLI's text.
The answers come from the DNS server's and the proxy's own code (see `names`, `service`).
"""

from __future__ import annotations

from typing import Any

from tinykube.client.rest import RESTClient
from tinykube.explain.names import explain_name
from tinykube.explain.service import explain_service
from tinykube.explain.snapshot import Snapshot, gather

__all__ = ["Snapshot", "explain", "explain_name", "explain_service", "explain_service_of",
           "gather"]


async def explain(client: RESTClient, name: str, *, qtype: str = "A",
                  from_pod: str | None = None, namespace: str = "default",
                  domain: str = "cluster.local", pod_records: str = "insecure") -> dict[str, Any]:
    """`tinykube explain NAME` as a JSON-able dict, from objects read through `client`."""
    return explain_name(await gather(client), name, qtype=qtype, from_pod=from_pod,
                        namespace=namespace, domain=domain, pod_records=pod_records)


async def explain_service_of(client: RESTClient, name: str, *,
                             namespace: str = "default") -> dict[str, Any]:
    """`tinykube explain service NAME` as a JSON-able dict."""
    return explain_service(await gather(client), name, namespace=namespace)
