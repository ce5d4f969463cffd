"""Starting DNS fault drills (`dns.drills`) in a running cluster, from outside it.

A drill is an entry of the ConfigMap `kube-system/tinykube-dns-drills`, written through the API
with the admin's kubeconfig (created on the first drill, merge-patched after). Given the
cluster DNS address, `inject` then waits until the DNS answers the drill's id to a TXT query
for `drills.tinykube.`, so the drill is in force when it returns. Used by `tinykube dns inject`
and the pytest plugin's `cluster.dns.inject`.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tinykube.background import AdminAPI

CONFIGMAP, NAMESPACE = "tinykube-dns-drills", "kube-system"  # as dns.drills
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def inject(kubeconfig: Path, name: str, *, for_seconds: float,
           dns_address: tuple[str, int] | None = None, wait: float = 15,
           **behaviour: Any) -> str:
    """Start a drill for `name`; its id. Waits (up to `wait` s) until the DNS at
    `dns_address` has it, when given."""
    if isinstance(behaviour.get("rcode"), str):
        behaviour["rcode"] = RCODES[behaviour["rcode"].upper()]
    key = f"drill-{uuid.uuid4().hex[:12]}"
    value = json.dumps({"until": time.time() + for_seconds, "name": name, **behaviour},
                       sort_keys=True)
    api = AdminAPI.from_kubeconfig(kubeconfig)
    status, body = api.request("PATCH", f"{PATH}/{CONFIGMAP}", {"data": {key: value}},
                               content_type="application/merge-patch+json")
    if status == 404:
        status, body = api.request("POST", PATH, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE}, "data": {key: value}})
    if status not in (200, 201):
        raise RuntimeError(f"writing the drill: {status} {body}")
    if dns_address is not None:
        wait_active(dns_address, key, wait)
    return key


def active(dns_address: tuple[str, int]) -> list[str]:
    """The ids of the drills the DNS at `dns_address` runs now."""
    import dns.exception
    import dns.message
    import dns.query

    query = dns.message.make_query("drills.tinykube.", "TXT")
    try:
        response = dns.query.udp(query, dns_address[0], port=dns_address[1], timeout=1)
    except dns.exception.Timeout:
        return []
    return [b.decode() for rrset in response.answer for rdata in rrset
            for b in rdata.strings]


def wait_active(dns_address: tuple[str, int], key: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while key not in active(dns_address):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the DNS at {dns_address} did not start drill {key} within "
                               f"{seconds}s")
        time.sleep(0.05)


def clear(kubeconfig: Path) -> bool:
    """End every drill (delete the ConfigMap); whether there was one."""
    status, _ = AdminAPI.from_kubeconfig(kubeconfig).request("DELETE",
                                                             f"{PATH}/{CONFIGMAP}")
    return status in (200, 202)
