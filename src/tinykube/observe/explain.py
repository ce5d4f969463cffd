"""The live map's explanation panel: the seam to `tinykube explain`, and what it shows meanwhile.

`Explain` is the interface the page's panel calls through (`ObserveServer(explain=...)`):
`await explain(kind, namespace, name)` -> the text `tinykube explain` prints for that Service
or pod. `from_explain_package(client, names)` builds it on the `tinykube.explain` package (the
`tinykube explain` command: `explain_service_of` for a Service, `explain` of the pod's first DNS
name for a pod, rendered by `explain.render.text`) when that package is installed; it is looked
up at run time, so this module works without it. Without it, `describe` writes a shorter
explanation from the map document alone: what the name resolves to and why (cluster IP, or the
ready endpoints of a headless Service), which endpoints are left out and why, and a pod's names
and Services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Explain = Callable[[str, str, str], Awaitable[str]]
Names = Callable[[str, str, str], str]  # (kind, namespace, name) -> its DNS name, "" if none


def from_explain_package(client: Any, names: Names) -> Explain | None:
    """`Explain` on `tinykube explain`'s package, or None where it is not installed."""
    import importlib

    try:
        package = importlib.import_module("tinykube.explain")
        render = importlib.import_module("tinykube.explain.render")
    except ImportError:
        return None

    async def explain(kind: str, namespace: str, name: str) -> str:
        if kind == "service":
            result = await package.explain_service_of(client, name, namespace=namespace)
        else:
            fqdn = names(kind, namespace, name)
            if not fqdn:
                return f"Pod {namespace}/{name} has no DNS name yet (no IP)."
            absolute = fqdn if fqdn.endswith(".") else fqdn + "."  # no search-list walk
            result = await package.explain(client, absolute, namespace=namespace)
        return str(render.text(result))

    return explain


def _find(doc: dict[str, Any], namespace: str, key: str, name: str) -> dict[str, Any] | None:
    for ns in doc.get("namespaces", []):
        if ns["name"] == namespace:
            return next((item for item in ns[key] if item["name"] == name), None)
    return None


def _service(svc: dict[str, Any]) -> list[str]:
    endpoints = [e for s in svc["slices"] for e in s["endpoints"]]
    ready = [e for e in endpoints if e["ready"]]
    lines = [f"{svc['dns']} is the {'headless ' if svc['headless'] else ''}{svc['type']} "
             f"Service {svc['name']}."]
    if svc["type"] == "ExternalName":
        return [*lines, f"DNS answers a CNAME to {svc['externalName']}."]
    if svc["headless"]:
        ips = ", ".join(a for e in ready for a in e["addresses"]) or "nothing (NXDOMAIN "
        lines.append(f"It has no cluster IP: DNS answers the ready endpoints' addresses: {ips}"
                     + (")" if not ready else "") + ".")
        lines += [f"  {e['dns']} -> {', '.join(e['addresses'])}" for e in ready if e["dns"]]
    else:
        lines.append(f"DNS answers its cluster IP {svc['clusterIP']}; the proxy sends each "
                     f"connection to one of {len(ready)} ready endpoint(s).")
    if not svc["selector"]:
        lines.append("It has no selector: its EndpointSlices are written by hand.")
    elif not endpoints:
        selector = ",".join(f"{k}={v}" for k, v in svc["selector"].items())
        lines.append(f"No pod matches its selector {selector}: it has no endpoints.")
    for e in endpoints:
        if not e["ready"]:
            why = "terminating" if e["terminating"] else "not Ready"
            lines.append(f"Left out: {e['pod'] or ', '.join(e['addresses'])} ({why}).")
    return lines


def _pod(pod: dict[str, Any], services: list[str]) -> list[str]:
    lines = [f"Pod {pod['name']}: {pod['phase'] or 'no phase yet'}, "
             f"{'Ready' if pod['ready'] else 'not Ready'}, IP {pod['ip'] or 'none yet'}, "
             f"node {pod['node'] or 'none (not scheduled)'}."]
    lines += [f"DNS: {name}" for name in pod["dns"]]
    if services:
        lines.append("Endpoint of: " + ", ".join(services)
                     + ("" if pod["ready"] else " (not ready: DNS and the proxy leave it out)"))
    else:
        lines.append("No Service selects it.")
    return lines


def dns_name(doc: dict[str, Any], kind: str, namespace: str, name: str) -> str:
    """The Service's name, or the pod's first (hostname.subdomain before the dashed IP)."""
    item = _find(doc, namespace, "services" if kind == "service" else "pods", name)
    if item is None:
        return ""
    return str(item["dns"]) if kind == "service" else (item["dns"] or [""])[0]


def describe(doc: dict[str, Any], kind: str, namespace: str, name: str) -> str:
    """The explanation of a Service or pod of the map document `doc`."""
    if kind == "service":
        svc = _find(doc, namespace, "services", name)
        if svc is None:
            return f"No Service {name} in namespace {namespace}."
        return "\n".join(_service(svc))
    pod = _find(doc, namespace, "pods", name)
    if pod is None:
        return f"No pod {name} in namespace {namespace}."
    services = [svc["name"] for ns in doc["namespaces"] if ns["name"] == namespace
                for svc in ns["services"]
                if any(e["pod"] == name for s in svc["slices"] for e in s["endpoints"])]
    return "\n".join(_pod(pod, services))
