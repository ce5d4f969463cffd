"""`explain NAME`: the queries a pod's resolver sends for a name, and what cluster DNS answers.

The answers are not recomputed here: the snapshot's objects are fed into the DNS server's own
`ClusterModel` (`dns/zone.py`, through the same `apply_*` projections its informers call) and
each query is answered by the server's own `Resolver` (`dns/handler.py`). So an explanation and
a `dig` at the cluster DNS read the same model with the same code, and cannot disagree except by
the time between the two reads.

The search path is the pod's own `/etc/resolv.conf`, as the node agent writes it
(`kubelet/sandbox.resolv_conf`: ClusterFirst gives `<ns>.svc.<zone> svc.<zone> <zone>` and
`ndots:5`, plus the pod's `dnsConfig`). The expansion is glibc's `res_nsearch`:

* a name ending in `.` is asked as it is, once;
* a name with at least `ndots` dots is asked as it is first, then with each search domain;
* any other name is asked with each search domain first, then as it is;
* the first answer with records ends the search; NXDOMAIN, NODATA and SERVFAIL go on to the next.

A name outside the cluster zone is forwarded upstream by cluster DNS; `explain` does not send
it anywhere and says so. For every in-zone query that answers nothing, `whynot.diagnose` says
why in plain words (see there).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tinykube.dns import records
from tinykube.dns.handler import Resolver
from tinykube.dns.records import RR, Answer, Srv, ZoneConfig
from tinykube.dns.zone import ClusterModel
from tinykube.explain import whynot
from tinykube.explain.snapshot import Obj, Snapshot, name_of, namespace_of
from tinykube.kubelet.sandbox import resolv_conf

QTYPES = {"A": records.A, "AAAA": records.AAAA, "SRV": records.SRV, "PTR": records.PTR,
          "CNAME": records.CNAME, "TXT": records.TXT}
TYPE_NAMES = {number: name for name, number in QTYPES.items()}
RCODES = {records.NOERROR: "NOERROR", records.SERVFAIL: "SERVFAIL",
          records.NXDOMAIN: "NXDOMAIN", records.REFUSED: "REFUSED"}
DEFAULT_NAMESERVER = "cluster DNS"


def model_of(snap: Snapshot) -> ClusterModel:
    """The DNS server's model, fed the snapshot through the server's own projections."""
    model = ClusterModel()
    for obj in snap.all("Namespace"):
        model.apply_namespace(obj)
    for obj in snap.all("Service"):
        model.apply_service(obj)
    for obj in snap.all("EndpointSlice"):
        model.apply_slice(obj)
    for obj in snap.all("Pod"):
        model.apply_pod(obj)
    model.mark_synced()
    return model


def client_pod(snap: Snapshot, from_pod: str | None, namespace: str) -> Obj:
    """The asking pod (`NAME` or `NS/NAME`), or a plain ClusterFirst pod of `namespace`."""
    if from_pod:
        ns, _, name = from_pod.rpartition("/")
        pod = snap.get("Pod", ns or namespace, name)
        if pod is None:
            raise LookupError(f'pod "{name}" not found in namespace "{ns or namespace}"')
        return pod
    return {"metadata": {"namespace": namespace, "name": ""}, "spec": {}}


def search_config(pod: Obj, nameserver: str) -> dict[str, Any]:
    """search, ndots and nameservers of the pod's resolv.conf (as the node agent writes it)."""
    text = resolv_conf(pod, nameserver)
    config: dict[str, Any] = {"search": [], "ndots": 1, "nameservers": [],
                              "clusterDNS": text is not None}
    text = text or ""
    for line in text.splitlines():
        word, *rest = line.split() or [""]
        if word == "search":
            config["search"] = rest
        elif word == "nameserver":
            config["nameservers"] += rest
        elif word == "options":
            for option in rest:
                key, _, value = option.partition(":")
                if key == "ndots" and value.isdigit():
                    config["ndots"] = min(int(value), 15)
    return config


def expand(name: str, search: list[str], ndots: int) -> list[str]:
    """The names glibc's resolver asks for, in order (see the module docstring)."""
    if name.endswith("."):
        return [name]
    absolute = name + "."
    searched = [f"{name}.{domain.rstrip('.')}." for domain in search]
    if name.count(".") >= ndots:
        return [absolute, *searched]
    return [*searched, absolute]


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


def nameserver_of(snap: Snapshot) -> str:
    dns = snap.get("Service", "kube-system", "kube-dns")
    cluster_ip = str(((dns or {}).get("spec") or {}).get("clusterIP") or "")
    return cluster_ip if cluster_ip and cluster_ip != "None" else DEFAULT_NAMESERVER


def rr_text(rr: RR) -> str:
    """One record as dig prints its data: an address, a name, or SRV's four fields."""
    data = rr.data
    if isinstance(data, Srv):
        return f"{data.priority} {data.weight} {data.port} {'.'.join(data.target)}."
    if isinstance(data, bytes):
        if rr.rtype in (records.A, records.AAAA):
            return str(ipaddress.ip_address(data))
        return '"' + data.decode(errors="replace") + '"'
    if isinstance(data, tuple):
        return ".".join(str(label) for label in data) + "."
    return str(data)


def _query(resolver: Resolver, snap: Snapshot, fqdn: str, qtype: int) -> dict[str, Any]:
    labels = tuple(label for label in fqdn.lower().rstrip(".").split(".") if label)
    answer: Answer = resolver.resolve(labels, qtype, records.IN)
    entry: dict[str, Any] = {
        "name": fqdn, "type": TYPE_NAMES.get(qtype, str(qtype)),
        "rcode": "FORWARDED" if answer.forward else RCODES.get(answer.rcode, str(answer.rcode)),
        "answers": [f"{TYPE_NAMES.get(rr.rtype, rr.rtype)} {rr_text(rr)}"
                    for rr in answer.answer],
        "source": answer.source,
        "reasons": [],
    }
    if answer.forward:
        entry["reasons"] = [whynot.reason(
            "outside-zone", f"{fqdn} is outside the cluster zone {resolver.config.domain}: "
            "cluster DNS forwards it to the upstream resolvers (explain does not ask them)")]
    elif not answer.answer:
        zone = resolver.zone
        rest = labels[: len(labels) - len(zone)] if labels[len(labels) - len(zone):] == zone \
            else ()
        if entry["rcode"] == "NOERROR":
            entry["rcode"] = "NOERROR (no records)"
        entry["reasons"] = whynot.diagnose(snap, rest, entry["type"]) if rest else []
    return entry


def explain_name(snap: Snapshot, name: str, *, qtype: str = "A", from_pod: str | None = None,
                 namespace: str = "default", domain: str = "cluster.local",
                 pod_records: str = "insecure") -> dict[str, Any]:
    """What `name` resolves to from a pod, query by query, and why (a JSON-able dict)."""
    qtype = qtype.upper()
    if qtype not in QTYPES:
        raise ValueError(f"unsupported type {qtype!r} (one of {', '.join(QTYPES)})")
    pod = client_pod(snap, from_pod, namespace)
    config = search_config(pod, nameserver_of(snap))
    resolver = Resolver(model_of(snap), ZoneConfig(domain=domain, pod_records=pod_records))
    if qtype == "PTR" and _is_ip(name):
        names = [reverse_name(name)]
    else:
        names = expand(name.lower(), config["search"], config["ndots"])
    queries: list[dict[str, Any]] = []
    for fqdn in names:
        queries.append(_query(resolver, snap, fqdn, QTYPES[qtype]))
        if queries[-1]["answers"]:
            break
    answered = queries[-1] if queries[-1]["answers"] else None
    result: dict[str, Any] = {
        "kind": "NameExplanation",
        "name": name, "type": qtype,
        "from": {"pod": f"{namespace_of(pod)}/{name_of(pod)}" if name_of(pod) else None,
                 "namespace": namespace_of(pod)},
        "resolvConf": config,
        "queries": queries,
        "answer": answered["answers"] if answered else [],
        "answeredBy": answered["name"] if answered else None,
        "objects": whynot.objects_behind(snap, answered["source"]) if answered else [],
        "reasons": [] if answered else _summary(queries),
    }
    if not config["clusterDNS"]:
        policy = (pod.get("spec") or {}).get("dnsPolicy")
        result["reasons"].insert(0, whynot.reason(
            "not-cluster-first", f"pod {name_of(pod)} has dnsPolicy {policy}: its resolver is "
            "the node's, not cluster DNS; the queries above are what cluster DNS would answer",
            "use dnsPolicy ClusterFirst (the default) to resolve cluster names"))
    return result


# Reasons that only say a search-path candidate is not a cluster name: the summary prefers a
# query with a more telling one (the candidate the asker most likely meant).
GENERIC = frozenset({"no-service", "no-namespace", "outside-zone", "not-a-cluster-name",
                     "empty-non-terminal"})


def _summary(queries: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The reasons of the query most likely meant: the first with a specific reason, else the
    first whose namespace exists, else the first with any."""
    def codes(query: dict[str, Any]) -> set[str]:
        return {r["code"] for r in query["reasons"]}

    def specific(query: dict[str, Any]) -> bool:
        return bool(codes(query) - GENERIC)

    def namespace_exists(query: dict[str, Any]) -> bool:
        return not codes(query) & {"no-namespace", "outside-zone"}

    def anything(_query: dict[str, Any]) -> bool:
        return True

    for keep in (specific, namespace_exists, anything):
        for query in queries:
            if query["reasons"] and keep(query):
                return list(query["reasons"])
    return []


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
