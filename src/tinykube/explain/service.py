"""`explain service NAME`: where a connection to a Service goes, and what would change it.

The choice set is the service proxy's own: `proxy/model.service_rules` (the function the proxy's
syncer builds its forwarding table with) turns the Service and its EndpointSlices into one rule
per listen address, each with the ready, non-terminating endpoints a new connection picks among
(round robin; with `sessionAffinity: ClientIP` a client keeps its endpoint until idle for the
timeout). Every address is shown, whether or not this host's proxy binds it (a host-mode proxy
binds loopback cluster IPs only; the nftables proxy programs all of them).

"What would change it" lists the endpoints that are published but not chosen (not ready, or
terminating), the selected pods that are no endpoints yet and why (`whynot`), and the affinity.
"""

from __future__ import annotations

from typing import Any

from tinykube.controllers import endpointslice as eps
from tinykube.explain import whynot
from tinykube.explain.snapshot import Snapshot, name_of, namespace_of
from tinykube.proxy import model as proxy_model


def _any_address(_ip: str) -> bool:
    return True


def explain_service(snap: Snapshot, name: str, *, namespace: str = "default") -> dict[str, Any]:
    """Where connections to Service `namespace/name` go (a JSON-able dict)."""
    svc = snap.get("Service", namespace, name)
    if svc is None:
        reasons = whynot.diagnose(snap, (name, namespace, "svc"), "A")
        return {"kind": "ServiceExplanation", "namespace": namespace, "name": name,
                "found": False, "rules": [], "changes": [], "reasons": reasons}
    slices: list[proxy_model.Obj] = list(snap.slices_of(namespace, name))
    rules = [{"listen": f"{ip}:{port}/{protocol}", "portName": rule.port_name,
              "endpoints": [f"{a}:{p}" for a, p in rule.endpoints],
              "affinity": affinity_text(rule.affinity_timeout)}
             for (ip, port, protocol), rule in proxy_model.service_rules(svc, slices,
                                                                        _any_address)]
    return {"kind": "ServiceExplanation", "namespace": namespace, "name": name, "found": True,
            "service": whynot.describe_service(snap, svc), "proxied": bool(rules),
            "path": path_text(svc), "rules": rules, "changes": changes(snap, svc),
            "reasons": []}


def affinity_text(timeout: float | None) -> str:
    if timeout is None:
        return "none: each new connection takes the next endpoint (round robin)"
    return f"ClientIP: a client keeps its endpoint until idle for {int(timeout)} s"


def path_text(svc: dict[str, Any]) -> str:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return (f"no proxy: DNS answers a CNAME to {spec.get('externalName')} and clients "
                "connect to whatever that name resolves to")
    if eps.is_headless(svc):
        return ("no proxy: a headless Service has no cluster IP; DNS answers the ready pod IPs "
                "and each client connects to the one it picks")
    return "the service proxy forwards each connection to a cluster IP to one ready endpoint"


def changes(snap: Snapshot, svc: dict[str, Any]) -> list[dict[str, str]]:
    """What would change the choice set: endpoints waiting to be chosen, pods not yet in."""
    found: list[dict[str, str]] = []
    for slice_ in snap.slices_of(namespace_of(svc), name_of(svc)):
        for ep in slice_.get("endpoints") or []:
            conditions, pod = ep.get("conditions") or {}, (ep.get("targetRef") or {}).get("name")
            address = (ep.get("addresses") or ["?"])[0]
            who = f"pod {pod} ({address})" if pod else address
            if conditions.get("terminating") is True:
                found.append(whynot.reason("endpoint-terminating", f"{who} is terminating: it "
                                           "leaves the choice set; new connections avoid it"))
            elif conditions.get("ready") is False:
                found.append(whynot.reason("endpoint-not-ready", f"{who} is published but not "
                                           "ready: it joins the choice set once it is Ready"))
    listed = {(ep.get("targetRef") or {}).get("name")
              for s in snap.slices_of(namespace_of(svc), name_of(svc))
              for ep in s.get("endpoints") or []}
    for pod in whynot.selected_pods(snap, svc):
        if name_of(pod) not in listed:
            found += whynot.pod_endpoint_reasons(pod, svc)
    if eps.selector_of(svc) and not whynot.selected_pods(snap, svc):
        found.append(whynot.selector_mismatch(snap, svc))
    spec = svc.get("spec") or {}
    for port in spec.get("ports") or []:
        missing = [p for p in whynot.selected_pods(snap, svc) if eps.find_port(p, port) is None]
        if missing:
            found.append(whynot.named_port_reason(svc, port, missing))
    if spec.get("sessionAffinity") != "ClientIP" and not eps.is_headless(svc):
        found.append(whynot.reason("affinity", "sessionAffinity is None", "set "
                                   "spec.sessionAffinity: ClientIP to keep each client on one "
                                   "endpoint"))
    return found
