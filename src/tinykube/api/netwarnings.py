"""Apply-time warnings for the service-networking mistakes readers of the seed make.

None of these refuse a write (kube-apiserver accepts every one of them: each is valid alone);
the API server sends them as `Warning: 299 - "..."` headers, which kubectl prints as
`Warning: ...`. Each names what is wrong, what it costs, and the fix.

`CHECKS` is the table: a row is the kinds it applies to and a pure function
`(kind, obj, lookup) -> [warning text]`, where `lookup(storage_key, namespace)` lists the stored
objects of a kind in the namespace (the API server passes its store; tests pass a dict). One
key is derived: `NAMED_PORT_SERVICES`, the namespace's Services with a named targetPort
(`named_port_services` of its Services), the only ones the pod checks read. Every pod write
asks for them, so the API server keeps that list until a Service changes: filtering 1,000
Services per pod create was a quarter of its time in bench/scale.

    StatefulSet  spec.serviceName names no Service, or a Service that is not headless
    Pod, pod templates (not StatefulSet's: it sets subdomain itself)
                 spec.subdomain names no Service, or one that is not headless
    Service      a named targetPort that no container of the pods (and pod templates) its
                 selector matches defines
    Pod, pod templates
                 the reverse: a Service selecting them targets a port name they do not define
    Service      headless with neither a selector nor EndpointSlices

`clusterIP: None` with `type: NodePort` (or LoadBalancer) is not here: kube's validation refuses
it already (`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort
services`), and so does ours. A Service whose selector matches no pod is not warned at create
(manifests create Services before their pods): the `selectorwatch` controller records an Event
on it when that lasts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tinykube.api.podsecurity.review import TEMPLATES, template_of

Obj = dict[str, Any]
Lookup = Callable[[str, str], list[Obj]]
SERVICES, PODS, SLICES = "core/services", "core/pods", "discovery.k8s.io/endpointslices"
NAMED_PORT_SERVICES = "core/services#named-target-ports"  # derived: see the module docstring
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# kind -> storage key of the workloads whose pod templates are checked against Services
WORKLOADS = {"Deployment": "apps/deployments", "ReplicaSet": "apps/replicasets",
             "StatefulSet": "apps/statefulsets", "DaemonSet": "apps/daemonsets",
             "Job": "batch/jobs", "ReplicationController": "core/replicationcontrollers"}
MAX_NAMED = 3  # objects named in one warning


@dataclass(frozen=True)
class Check:
    kinds: frozenset[str]
    run: Callable[[str, Obj, Lookup], list[str]]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _headless(svc: Obj) -> bool:
    return _spec(svc).get("clusterIP") == "None"


def _service(lookup: Lookup, namespace: str, name: str) -> Obj | None:
    return next((s for s in lookup(SERVICES, namespace) if _meta(s).get("name") == name), None)


def pod_template(kind: str, obj: Obj) -> tuple[str, Obj, Obj] | None:
    """(field path of the pod spec, pod metadata, pod spec) of a Pod or a workload."""
    if kind == "Pod":
        return "spec", _meta(obj), _spec(obj)
    found = template_of(kind, obj) if kind in TEMPLATES else None
    if found is None:
        return None
    return ".".join(TEMPLATES[kind]) + ".spec", found[0], found[1]


def _selects(svc: Obj, labels: Any) -> bool:
    selector = _spec(svc).get("selector")
    if not isinstance(selector, dict) or not selector or not isinstance(labels, dict):
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def _named(names: Iterable[str]) -> str:
    names = list(names)
    more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more


def selector_misses(selector: dict[str, str], labels: Any) -> list[str]:
    """How `labels` miss a Service selector, one `key=value (wants key=v)` per label."""
    labels = labels if isinstance(labels, dict) else {}
    return [f"{k}={labels[k]} (wants {k}={v})" if k in labels else f"no label {k} (wants {k}={v})"
            for k, v in sorted(selector.items()) if labels.get(k) != v]


def nearest_miss(selector: dict[str, str], pods: Iterable[Obj]) -> tuple[str, list[str]] | None:
    """The pod that misses the selector by the fewest labels (by name on a tie), and how."""
    scored = sorted((len(m), str(_meta(p).get("name") or ""), m) for p in pods
                    if (m := selector_misses(selector, _meta(p).get("labels"))))
    return (scored[0][1], scored[0][2]) if scored else None


# ---- StatefulSet serviceName -----------------------------------------------------------------


def statefulset_service(kind: str, obj: Obj, lookup: Lookup) -> list[str]:
    name, namespace = _spec(obj).get("serviceName"), str(_meta(obj).get("namespace") or "")
    if not isinstance(name, str) or not name:
        return []
    sts = _meta(obj).get("name") or "the StatefulSet"
    svc = _service(lookup, namespace, name)
    if svc is None:
        return [f'spec.serviceName: no Service "{name}" in namespace "{namespace}": the pods of '
                f"StatefulSet {sts} get no DNS names ({sts}-0.{name}...) until it exists; "
                f'create a headless Service "{name}" (clusterIP: None) selecting them']
    if not _headless(svc):
        return [f'spec.serviceName: Service "{name}" is not headless (clusterIP '
                f'{_spec(svc).get("clusterIP")}): the name {name} answers one cluster IP instead '
                f"of each pod's address; make the governing Service headless (clusterIP: None; "
                "clusterIP cannot be changed, so delete and recreate the Service)"]
    return []


# ---- pod subdomain ---------------------------------------------------------------------------


def pod_subdomain(kind: str, obj: Obj, lookup: Lookup) -> list[str]:
    found = pod_template(kind, obj) if kind != "StatefulSet" else None
    if found is None:
        return []
    path, meta, spec = found
    sub = spec.get("subdomain")
    if not isinstance(sub, str) or not sub:
        return []
    namespace = str(_meta(obj).get("namespace") or "")
    svc = _service(lookup, namespace, sub)
    if svc is not None and _headless(svc):
        return []
    host = spec.get("hostname") or meta.get("name") or "<hostname>"
    what = "no Service" if svc is None else "a Service that is not headless, not a headless " \
        "Service"
    return [f'{path}.subdomain: "{sub}" names {what} "{sub}" in namespace "{namespace}": '
            f"{host}.{sub}.{namespace}.svc does not resolve as the pod's own address; create a "
            f'headless Service "{sub}" (clusterIP: None) whose selector matches the pod']


# ---- named target ports ----------------------------------------------------------------------


def _defines(spec: Obj, name: str, protocol: str) -> bool:
    containers = [*(spec.get("containers") or []),
                  *(c for c in spec.get("initContainers") or []
                    if isinstance(c, dict) and c.get("restartPolicy") == "Always")]
    return any(isinstance(p, dict) and p.get("name") == name
               and (p.get("protocol") or "TCP") == protocol
               for c in containers if isinstance(c, dict) for p in c.get("ports") or [])


def _named_ports(svc: Obj) -> list[tuple[int, Obj]]:
    return [(i, p) for i, p in enumerate(_spec(svc).get("ports") or [])
            if isinstance(p, dict) and isinstance(p.get("targetPort"), str)]


def named_port_services(services: Iterable[Obj]) -> list[Obj]:
    """The Services with at least one named targetPort (what `NAMED_PORT_SERVICES` lists)."""
    return [svc for svc in services if _named_ports(svc)]


def _pod_specs(lookup: Lookup, namespace: str) -> list[tuple[str, Any, Obj]]:
    """(description, pod labels, pod spec) of every pod and workload template here."""
    found = [(f"pod {_meta(p).get('name')}", _meta(p).get("labels"), _spec(p))
             for p in lookup(PODS, namespace)]
    for kind, key in WORKLOADS.items():
        for obj in lookup(key, namespace):
            template = pod_template(kind, obj)
            if template is not None:
                found.append((f"{kind} {_meta(obj).get('name')}", template[1].get("labels"),
                               template[2]))
    return found


def service_target_ports(kind: str, obj: Obj, lookup: Lookup) -> list[str]:
    if not _named_ports(obj) or not _spec(obj).get("selector"):
        return []  # nothing to look up (the common case: numeric target ports)
    namespace = str(_meta(obj).get("namespace") or "")
    specs = [s for s in _pod_specs(lookup, namespace) if _selects(obj, s[1])]
    warnings = []
    for i, port in _named_ports(obj):
        target, protocol = port["targetPort"], port.get("protocol") or "TCP"
        missing = [what for what, _, spec in specs if not _defines(spec, target, protocol)]
        if missing:
            warnings.append(f'spec.ports[{i}].targetPort: "{target}" names a port that no '
                            f"container of {_named(missing)} defines: those pods get no "
                            f"endpoint for this port; name a containerPort \"{target}\" "
                            "(protocol " + protocol + ") or set targetPort to a number")
    return warnings


def template_target_ports(kind: str, obj: Obj, lookup: Lookup) -> list[str]:
    found = pod_template(kind, obj)
    if found is None:
        return []
    path, meta, spec = found
    if not meta.get("labels"):
        return []
    namespace = str(_meta(obj).get("namespace") or "")
    warnings = []
    for svc in lookup(NAMED_PORT_SERVICES, namespace):
        if not _selects(svc, meta.get("labels")):
            continue
        for _, port in _named_ports(svc):
            target, protocol = port["targetPort"], port.get("protocol") or "TCP"
            if not _defines(spec, target, protocol):
                warnings.append(f"{path}.containers: Service \"{_meta(svc).get('name')}\" "
                                f'selects these pods and targets port "{target}", which no '
                                "container defines: the pods get no endpoint for that port; "
                                f'name a containerPort "{target}" (protocol {protocol})')
    return warnings


# ---- headless without endpoints --------------------------------------------------------------


def headless_without_endpoints(kind: str, obj: Obj, lookup: Lookup) -> list[str]:
    spec, meta = _spec(obj), _meta(obj)
    if not _headless(obj) or spec.get("selector") or spec.get("type") == "ExternalName":
        return []
    name, namespace = meta.get("name"), str(meta.get("namespace") or "")
    if any(_meta(s).get("labels", {}).get(SERVICE_NAME_LABEL) == name
           for s in lookup(SLICES, namespace)):
        return []
    return [f'spec.selector: headless Service "{name}" has neither a selector nor '
            "EndpointSlices: its name answers NXDOMAIN; add a selector matching its pods, or "
            f"write EndpointSlices labelled {SERVICE_NAME_LABEL}={name}"]


_TEMPLATED = frozenset({"Pod", *TEMPLATES})
CHECKS: tuple[Check, ...] = (
    Check(frozenset({"StatefulSet"}), statefulset_service),
    Check(_TEMPLATED, pod_subdomain),
    Check(frozenset({"Service"}), service_target_ports),
    Check(_TEMPLATED, template_target_ports),
    Check(frozenset({"Service"}), headless_without_endpoints),
)
KINDS = frozenset(kind for check in CHECKS for kind in check.kinds)


def warnings(kind: str, obj: Obj, lookup: Lookup) -> list[str]:
    """Every warning the table gives for this object."""
    return [text for check in CHECKS if kind in check.kinds for text in check.run(kind, obj,
                                                                                  lookup)]
