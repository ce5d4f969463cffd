"""Why a cluster name answers nothing, in plain words, from the objects behind it.

`diagnose(snap, rest, qtype)` takes the labels of an in-zone name below the zone (for
`web-2.nginx.default.svc.cluster.local`: `("web-2", "nginx", "default", "svc")`) that cluster
DNS answered with NXDOMAIN or NODATA, and returns the reasons, each a dict with a stable `code`,
the `text`, and the `fix`. The checks follow the name's shape (dns-spec.md, `dns/handler.py`):

    <svc>.<ns>.svc             no-namespace, no-service (+ wrong-namespace, similar-name),
                               no-ready-endpoints: no-selector, selector-no-match (nearest
                               label mismatch), pod-no-ip, pod-not-ready, pod-terminating
    <ep>.<svc>.<ns>.svc        the above, then for the pod named <ep>: sts-fewer-replicas,
                               sts-pod-pending-creation, no-pod, pod-no-hostname,
                               pod-wrong-subdomain, pod-not-selected, pod-not-ready, ...;
                               subdomain-no-service when a pod's subdomain names no Service
    _<port>._<proto>.<svc>...  no-such-port, named-port-undefined (a targetPort no container
                               of the selected pods defines)

Endpoint readiness is the EndpointSlice controller's own rule (`controllers/endpointslice.py`:
`pod_to_endpoint`, `find_port`, `should_set_hostname` are called, not restated), so "pod not
ready" here means exactly "the controller publishes it ready=false".
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from tinykube.api import netwarnings
from tinykube.controllers import endpointslice as eps
from tinykube.dns.records import dashed, undashed
from tinykube.explain.snapshot import Obj, Snapshot, name_of, namespace_of

Reason = dict[str, str]
_ORDINAL = re.compile(r"^(?P<set>.+)-(?P<ordinal>0|[1-9][0-9]*)$")


def reason(code: str, text: str, fix: str = "") -> Reason:
    return {"code": code, "text": text, "fix": fix}


def diagnose(snap: Snapshot, rest: tuple[str, ...], qtype: str) -> list[Reason]:
    """The reasons an in-zone name (labels below the zone) answers nothing."""
    if rest[-1] == "svc" and len(rest) >= 2:
        return _service_name(snap, rest[-2], rest[:-2], qtype)
    if rest[-1] == "pod" and len(rest) == 3:
        return _pod_record(snap, rest[0], rest[1])
    if rest[-1] in ("svc", "pod"):
        return [reason("empty-non-terminal", "the name exists but holds no records of this "
                       "type (an empty non-terminal of the zone)")]
    return [reason("not-a-cluster-name", f"{'.'.join(rest)} is neither a .svc nor a .pod name "
                   "of the cluster zone", "cluster names are <service>.<namespace>.svc.<zone>")]


def _pod_record(snap: Snapshot, label: str, namespace: str) -> list[Reason]:
    if namespace not in snap.namespaces():
        return [reason("no-namespace", f'there is no namespace "{namespace}"')]
    ip = undashed(label)
    if not ip:
        return [reason("pod-record", f"{label} is not an IP address written with dashes",
                       "pod records are <a-b-c-d>.<namespace>.pod.<zone>")]
    return [reason("pod-record-unverified", f"no pod in namespace \"{namespace}\" has IP {ip}, "
                   "and cluster DNS answers pod records only for pods it knows (pod-records "
                   "verified), or not at all (disabled)")]


def _service_name(snap: Snapshot, namespace: str, names: tuple[str, ...],
                  qtype: str) -> list[Reason]:
    if namespace not in snap.namespaces():
        close = difflib.get_close_matches(namespace, snap.namespaces(), n=1)
        return [reason("no-namespace", f'there is no namespace "{namespace}"',
                       f'did you mean namespace "{close[0]}"?' if close else "")]
    if not names:
        return [reason("empty-non-terminal", f"{namespace}.svc holds no records itself")]
    svc = snap.get("Service", namespace, names[-1])
    if svc is None:
        return _no_service(snap, namespace, names)
    if len(names) == 1:
        return _service_records(snap, svc, qtype)
    if (svc.get("spec") or {}).get("type") == "ExternalName":
        return [reason("external-name", f"Service {names[-1]} is an ExternalName Service: it "
                       "has no endpoint or port names below it")]
    if len(names) == 2:
        return _endpoint_type(snap, svc, names[0], qtype) or _endpoint(snap, svc, names[0])
    if len(names) == 3:
        return _port(snap, svc, names[0], names[1])
    return [reason("too-many-labels", "no cluster name has that many labels below .svc")]


# ---- no such Service -------------------------------------------------------------------------


def _no_service(snap: Snapshot, namespace: str, names: tuple[str, ...]) -> list[Reason]:
    name = names[-1]
    found = [reason("no-service", f'there is no Service "{name}" in namespace "{namespace}"')]
    elsewhere = sorted(namespace_of(s) for s in snap.all("Service") if name_of(s) == name
                       and namespace_of(s) != namespace)
    if elsewhere:
        found.append(reason("wrong-namespace", f'a Service "{name}" exists in namespace '
                            + ", ".join(f'"{n}"' for n in elsewhere),
                            f"ask for {name}.{elsewhere[0]} (or its full name "
                            f"{name}.{elsewhere[0]}.svc.<zone>)"))
    if len(names) == 2:
        found += _subdomain_without_service(snap, namespace, name)
    here = [name_of(s) for s in snap.in_namespace("Service", namespace)]
    close = difflib.get_close_matches(name, here, n=1)
    if close and len(found) == 1:
        found.append(reason("similar-name", f'namespace "{namespace}" has a Service '
                            f'"{close[0]}"', f"did you mean {close[0]}?"))
    return found


def _subdomain_without_service(snap: Snapshot, namespace: str, name: str) -> list[Reason]:
    pods = sorted(name_of(p) for p in snap.in_namespace("Pod", namespace)
                  if (p.get("spec") or {}).get("subdomain") == name)
    if not pods:
        return []
    return [reason("subdomain-no-service", f"pod {', '.join(pods)} set subdomain \"{name}\", but "
                   f'no Service "{name}" exists, so no name is published under it',
                   f'create a headless Service "{name}" (clusterIP: None) whose selector '
                   "matches the pod")]


# ---- a Service with nothing to answer --------------------------------------------------------


def _service_records(snap: Snapshot, svc: Obj, qtype: str) -> list[Reason]:
    spec = svc.get("spec") or {}
    name = name_of(svc)
    if spec.get("type") == "ExternalName":
        target = str(spec.get("externalName") or "")
        return [reason("external-name-invalid", f'Service {name} is ExternalName with target '
                       f'"{target}", which is not a DNS name cluster DNS can answer with',
                       "set spec.externalName to a DNS name (not an IP address)")]
    if eps.is_headless(svc):
        return endpoint_reasons(snap, svc) or [reason(
            "no-ready-endpoints", f"headless Service {name} has no ready endpoint",
            "wait for the EndpointSlice controller, or check its slices")]
    ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    if qtype in ("A", "AAAA"):
        return [reason("no-family", f"Service {name} has no {'IPv6' if qtype == 'AAAA' else 'IPv4'}"
                       f" cluster IP (it has {', '.join(map(str, ips))})",
                       "ask for the other record type, or set spec.ipFamilyPolicy")]
    return [reason("no-records", f"Service {name} has no {qtype} records")]


def endpoint_reasons(snap: Snapshot, svc: Obj) -> list[Reason]:
    """Why a Service's selected pods are not ready endpoints (empty: some are)."""
    name, namespace = name_of(svc), namespace_of(svc)
    selector = eps.selector_of(svc)
    if not selector:
        count = sum(len(s.get("endpoints") or []) for s in snap.slices_of(namespace, name))
        return [reason("no-selector", f"Service {name} has no selector: its endpoints are the "
                       f"EndpointSlices you write for it, and they list {count} endpoint(s)",
                       "add a selector, or write EndpointSlices labelled "
                       f"kubernetes.io/service-name={name}")]
    pods = selected_pods(snap, svc)
    if not pods:
        return [selector_mismatch(snap, svc)]
    found: list[Reason] = []
    for pod in pods:
        found += pod_endpoint_reasons(pod, svc)
    if len(found) < len(pods):
        return []  # some pod is a ready endpoint
    return found


def selected_pods(snap: Snapshot, svc: Obj) -> list[Obj]:
    """The pods of the Service's namespace its selector (a plain label map) matches."""
    selector = eps.selector_of(svc)
    if not selector:
        return []
    return sorted((p for p in snap.in_namespace("Pod", namespace_of(svc))
                   if _labels(p).items() >= selector.items()), key=name_of)


def _labels(pod: Obj) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("labels") or {})


def selector_mismatch(snap: Snapshot, svc: Obj) -> Reason:
    """The selector matches no pod: name the pod that misses it by the fewest labels."""
    selector = eps.selector_of(svc)
    wanted = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    text = f"the selector {wanted} of Service {name_of(svc)} matches no pod in namespace " \
           f'"{namespace_of(svc)}"'
    nearest = netwarnings.nearest_miss(selector, snap.in_namespace("Pod", namespace_of(svc)))
    if nearest is None:
        return reason("selector-no-match", text + " (it has no pods at all)",
                      "create the pods (a Deployment or StatefulSet) the Service is for")
    return reason("selector-no-match", f"{text}; nearest: pod {nearest[0]} has "
                  + ", ".join(nearest[1]), "make the selector and the pod template's labels agree")


def pod_endpoint_reasons(pod: Obj, svc: Obj) -> list[Reason]:
    """Why one selected pod is not a ready endpoint of the Service (empty: it is one)."""
    name, status = name_of(pod), pod.get("status") or {}
    if eps.is_terminal(pod):
        return [reason("pod-finished", f"pod {name} is {status.get('phase')}: finished pods "
                       "are no endpoints")]
    if not eps.pod_ips(pod):
        node = (pod.get("spec") or {}).get("nodeName")
        where = f"on node {node}" if node else "not scheduled to a node yet"
        return [reason("pod-no-ip", f"pod {name} has no IP yet (phase "
                       f"{status.get('phase') or 'Pending'}, {where})",
                       f"kubectl describe pod {name} shows why it has not started")]
    conditions = eps.pod_to_endpoint(pod, svc, eps.pod_ips(pod))["conditions"]
    if conditions["ready"]:
        return []
    if conditions["terminating"]:
        return [reason("pod-terminating", f"pod {name} is terminating: it stays in the "
                       "EndpointSlice as serving but not ready until it is gone")]
    ready: Obj = next((c for c in status.get("conditions") or []
                       if c.get("type") == "Ready"), {})
    why = ready.get("reason") or ready.get("message") or "its readiness probe has not passed"
    return [reason("pod-not-ready", f"pod {name} is not Ready ({why}) and Service "
                   f"{name_of(svc)} does not set publishNotReadyAddresses",
                   "wait for the pod's readiness probe, or set spec.publishNotReadyAddresses: "
                   "true on the Service to publish not-ready pods in DNS")]


# ---- <endpoint>.<service> --------------------------------------------------------------------


def _endpoint(snap: Snapshot, svc: Obj, label: str) -> list[Reason]:
    namespace, service = namespace_of(svc), name_of(svc)
    pod = snap.get("Pod", namespace, label) or next(
        (p for p in snap.in_namespace("Pod", namespace)
         if (p.get("spec") or {}).get("hostname") == label), None)
    if pod is None:
        return _missing_pod(snap, namespace, service, label)
    spec, pname = pod.get("spec") or {}, name_of(pod)
    found: list[Reason] = []
    if not spec.get("hostname"):
        found.append(reason("pod-no-hostname", f"pod {pname} has no spec.hostname, so it has no "
                            f"name under {service} (its endpoint is named by its dashed IP)",
                            f"set spec.hostname: {label} and spec.subdomain: {service} (a "
                            "StatefulSet sets both for its pods)"))
    elif spec.get("hostname") != label:
        found.append(reason("pod-other-hostname", f"pod {pname}'s hostname is "
                            f"\"{spec['hostname']}\"", f"ask for {spec['hostname']}.{service}"))
    if spec.get("subdomain") != service:
        sub = spec.get("subdomain")
        found.append(reason("pod-wrong-subdomain", f"pod {pname} has "
                            + (f'subdomain "{sub}"' if sub else "no spec.subdomain")
                            + f", not \"{service}\", so its hostname is not published under "
                            f"Service {service}", f"set spec.subdomain: {service} (for a "
                            f"StatefulSet: spec.serviceName: {service})"))
        if sub and snap.get("Service", namespace, str(sub)) is None:
            found += _subdomain_without_service(snap, namespace, str(sub))
    if pod not in selected_pods(snap, svc):
        found.append(_not_selected(pod, svc))
    else:
        found += pod_endpoint_reasons(pod, svc)
    return found or [reason("endpoint-lag", f"pod {pname} should be endpoint {label} of "
                            f"{service}, but the EndpointSlices do not list it yet",
                            "the EndpointSlice controller has not caught up: ask again")]


def _endpoint_type(snap: Snapshot, svc: Obj, label: str, qtype: str) -> list[Reason]:
    """The endpoint name exists (a ready endpoint has it) but not with records of `qtype`."""
    addresses = [a for s in snap.slices_of(namespace_of(svc), name_of(svc))
                 for ep in s.get("endpoints") or []
                 if (ep.get("conditions") or {}).get("ready") is not False
                 for a in ep.get("addresses") or []
                 if (ep.get("hostname") or dashed(str(a))) == label]
    if not addresses:
        return []
    return [reason("no-family", f"{label}.{name_of(svc)} has only the address(es) "
                   f"{', '.join(map(str, addresses))}, no {qtype} record",
                   "ask for the type of its address (A for IPv4, AAAA for IPv6); SRV names "
                   "are _<port>._<proto>.<service>")]


def _not_selected(pod: Obj, svc: Obj) -> Reason:
    misses = netwarnings.selector_misses(eps.selector_of(svc), _labels(pod))
    return reason("pod-not-selected", f"Service {name_of(svc)}'s selector does not match pod "
                  f"{name_of(pod)}: " + ", ".join(misses or ["the Service has no selector"]),
                  "make the selector and the pod's labels agree")


def _missing_pod(snap: Snapshot, namespace: str, service: str, label: str) -> list[Reason]:
    match = _ORDINAL.match(label)
    sts = snap.get("StatefulSet", namespace, match["set"]) if match else None
    if sts is None or match is None:
        return [reason("no-pod", f'there is no pod "{label}" (nor one with that hostname) in '
                       f'namespace "{namespace}"')]
    ordinal, spec = int(match["ordinal"]), sts.get("spec") or {}
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    name = name_of(sts)
    if ordinal >= replicas:
        have = f"{name}-0..{name}-{replicas - 1}" if replicas else "no pods"
        return [reason("sts-fewer-replicas", f"StatefulSet {name} has {replicas} replica(s) "
                       f"({have}), so there is no pod {label}",
                       f"kubectl scale statefulset {name} --replicas={ordinal + 1}")]
    return [reason("sts-pod-not-created", f"StatefulSet {name} wants {replicas} replica(s) "
                   f"but has not created {label} yet"
                   + (" (OrderedReady: each pod waits for the one before it to be Ready)"
                      if spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
                      else ""), f"kubectl describe statefulset {name}")]


# ---- _<port>._<proto>.<service> --------------------------------------------------------------


def _port(snap: Snapshot, svc: Obj, port: str, proto: str) -> list[Reason]:
    port, proto = port.removeprefix("_"), proto.removeprefix("_")
    ports = (svc.get("spec") or {}).get("ports") or []
    wanted = next((p for p in ports if (p.get("name") or "") == port
                   and (p.get("protocol") or "TCP").lower() == proto), None)
    if wanted is None:
        have = ", ".join(f"{p.get('name') or '<unnamed>'}/{(p.get('protocol') or 'TCP').lower()}"
                         for p in ports) or "none"
        return [reason("no-such-port", f"Service {name_of(svc)} has no port named {port} with "
                       f"protocol {proto} (it has: {have})",
                       "SRV names are _<port name>._<protocol>.<service>; only named ports "
                       "have one")]
    if not eps.is_headless(svc):
        return [reason("no-records", f"Service {name_of(svc)} has no records for that port")]
    missing = [p for p in selected_pods(snap, svc) if eps.find_port(p, wanted) is None]
    if missing:
        return [named_port_reason(svc, wanted, missing)]
    return endpoint_reasons(snap, svc)


def named_port_reason(svc: Obj, port: Obj, pods: list[Obj]) -> Reason:
    target = port.get("targetPort")
    defined = sorted({f"{c.get('name') or '<unnamed>'}={c.get('containerPort')}"
                      for p in pods for c in _container_ports(p)})
    return reason("named-port-undefined", f"port {port.get('name') or port.get('port')} of "
                  f"Service {name_of(svc)} targets port \"{target}\", which no container of pod "
                  f"{', '.join(name_of(p) for p in pods)} defines (they define: "
                  f"{', '.join(defined) or 'no ports'})",
                  f"name a container port {target}, or set targetPort to one the pods define")


def _container_ports(pod: Obj) -> list[Obj]:
    return [port for c in (pod.get("spec") or {}).get("containers") or []
            for port in c.get("ports") or []]


# ---- what answered ---------------------------------------------------------------------------


def objects_behind(snap: Snapshot, source: str) -> list[dict[str, Any]]:
    """The objects that produced an answer (its `source`: `service NS/NAME`, ...)."""
    kind, _, ref = source.partition(" ")
    if kind != "service":
        return [{"kind": "Pod" if kind == "pod" else "Address", "ref": ref}] if ref else []
    namespace, _, name = ref.partition("/")
    svc = snap.get("Service", namespace, name)
    return [describe_service(snap, svc)] if svc is not None else []


def describe_service(snap: Snapshot, svc: Obj) -> dict[str, Any]:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    out: dict[str, Any] = {
        "kind": "Service", "namespace": namespace_of(svc), "name": name_of(svc),
        "type": kind,
        "headless": eps.is_headless(svc),
        "clusterIPs": [] if eps.is_headless(svc) else list(spec.get("clusterIPs")
                                                          or [spec.get("clusterIP")]),
        "externalName": spec.get("externalName") or "",
        "selector": eps.selector_of(svc),
        "publishNotReadyAddresses": bool(spec.get("publishNotReadyAddresses")),
        "ports": [f"{p.get('name') or '<unnamed>'} {p.get('port')}/{p.get('protocol') or 'TCP'}"
                  f" -> {p.get('targetPort', p.get('port'))}" for p in spec.get("ports") or []],
        "endpointSlices": [describe_slice(s) for s in sorted(
            snap.slices_of(namespace_of(svc), name_of(svc)), key=name_of)],
    }
    if kind != "ExternalName":
        out["notes"] = endpoint_reasons(snap, svc)
    return out


def describe_slice(slice_: Obj) -> dict[str, Any]:
    endpoints = []
    for ep in slice_.get("endpoints") or []:
        conditions = ep.get("conditions") or {}
        endpoints.append({
            "addresses": list(ep.get("addresses") or []),
            "hostname": ep.get("hostname") or "",
            "pod": (ep.get("targetRef") or {}).get("name") or "",
            "ready": conditions.get("ready") is not False,
            "serving": conditions.get("serving", conditions.get("ready")) is not False,
            "terminating": conditions.get("terminating") is True,
        })
    return {"name": name_of(slice_), "addressType": slice_.get("addressType") or "",
            "ports": [f"{p.get('name') or '<unnamed>'} {p.get('port')}/"
                      f"{p.get('protocol') or 'TCP'}" for p in slice_.get("ports") or []],
            "endpoints": endpoints}
