"""`explain` over the seed's objects: one golden text per "why (not)", plus its JSON.

The cluster is the seed's `web.yaml` as it runs after `kubectl scale sts web --replicas=2`:
the headless Service `nginx`, the StatefulSet `web` and its pods `web-0`/`web-1` (Ready, with
IPs), a ClusterIP Service `nginx-service` over the same pods, `kube-dns`, and a namespace
`other`. EndpointSlices are not written by hand: the EndpointSlice controller's own `reconcile`
makes them from the Services and pods, so each case changes an object and the slices follow.
Each case's golden is `tests/testdata/explain/<case>.txt`; `TINYKUBE_UPDATE_GOLDEN=1` rewrites
them.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.controllers import endpointslice as eps
from tinykube.explain import explain_name, explain_service, render
from tinykube.explain.snapshot import Snapshot

Obj = dict[str, Any]
TESTDATA = Path(__file__).parents[2] / "testdata"
GOLDEN = TESTDATA / "explain"
IPS = {"web-0": "10.244.2.17", "web-1": "10.244.2.18"}


def seed_objects() -> list[Obj]:
    service, sts = yaml.safe_load_all((TESTDATA / "web.yaml").read_text())
    sts = {**sts, "apiVersion": "apps/v1"}
    sts["spec"]["replicas"] = 2
    for obj in (service, sts):
        obj["metadata"]["namespace"] = "default"
    objects: list[Obj] = [service, sts]
    for name, ip in IPS.items():
        objects.append(seed_pod(sts, name, ip))
    objects.append({"kind": "Service", "metadata": {"name": "nginx-service",
                                                    "namespace": "default"},
                    "spec": {"type": "ClusterIP", "clusterIP": "10.96.124.218",
                             "clusterIPs": ["10.96.124.218"], "selector": {"app": "nginx"},
                             "ports": [{"name": "nginx-http", "port": 80, "protocol": "TCP",
                                        "targetPort": 80}]}})
    objects.append({"kind": "Service", "metadata": {"name": "kube-dns",
                                                    "namespace": "kube-system"},
                    "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                             "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}})
    objects += [{"kind": "Namespace", "metadata": {"name": n}}
                for n in ("default", "kube-system", "other")]
    return objects


def seed_pod(sts: Obj, name: str, ip: str) -> Obj:
    template = copy.deepcopy(sts["spec"]["template"])
    return {"kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "labels": template["metadata"]["labels"]},
            "spec": {**template["spec"], "hostname": name, "subdomain": "nginx",
                     "nodeName": "kube-node3"},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def with_slices(objects: list[Obj]) -> Snapshot:
    """The objects plus the EndpointSlices the controller's `reconcile` decides for them."""
    snap = Snapshot.of(objects)
    for svc in snap.all("Service"):
        selector = eps.selector_of(svc)
        pods = [p for p in snap.in_namespace("Pod", svc["metadata"]["namespace"])
                if selector and (p["metadata"].get("labels") or {}).items() >= selector.items()]
        for i, body in enumerate(eps.reconcile(svc, pods, []).create):
            name = f"{svc['metadata']['name']}-{i}"
            snap.objects["EndpointSlice"].append(
                {**body, "kind": "EndpointSlice", "metadata": {**body["metadata"], "name": name}})
    return snap


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def not_ready(objects: list[Obj]) -> None:
    find(objects, "Pod", "web-1")["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]


def bare_pod(name: str, **spec: str) -> Callable[[list[Obj]], None]:
    def add(objects: list[Obj]) -> None:
        pod = seed_pod(find(objects, "StatefulSet", "web"), name, "10.244.1.5")
        pod["spec"].pop("hostname")
        pod["spec"].pop("subdomain")
        pod["spec"].update(spec)
        objects.append(pod)
    return add


def selector(objects: list[Obj]) -> None:
    find(objects, "Service", "nginx")["spec"]["selector"] = {"app": "nginx2"}


def target_port(objects: list[Obj]) -> None:
    find(objects, "Service", "nginx")["spec"]["ports"][0]["targetPort"] = "http"


def affinity(objects: list[Obj]) -> None:
    find(objects, "Service", "nginx-service")["spec"]["sessionAffinity"] = "ClientIP"
    not_ready(objects)


def host_dns(objects: list[Obj]) -> None:
    find(objects, "Pod", "web-0")["spec"]["dnsPolicy"] = "Default"


def unchanged(objects: list[Obj]) -> None:
    pass


Explain = Callable[[Snapshot], dict[str, Any]]
# case -> (change to the seed's objects, the question)
CASES: dict[str, tuple[Callable[[list[Obj]], None], Explain]] = {
    "headless-resolves": (unchanged, lambda s: explain_name(s, "nginx")),
    "clusterip-resolves": (unchanged, lambda s: explain_name(s, "nginx-service")),
    "pod-name-resolves": (unchanged, lambda s: explain_name(s, "web-1.nginx", from_pod="web-0")),
    "srv-headless": (unchanged, lambda s: explain_name(s, "_web._tcp.nginx", qtype="SRV")),
    "ptr-pod": (unchanged, lambda s: explain_name(s, IPS["web-0"], qtype="PTR")),
    "wrong-namespace": (unchanged, lambda s: explain_name(s, "nginx", namespace="other")),
    "other-namespace-qualified": (unchanged,
                                  lambda s: explain_name(s, "nginx.default", namespace="other")),
    "no-such-service": (unchanged, lambda s: explain_name(s, "ngnix")),
    "sts-fewer-replicas": (unchanged, lambda s: explain_name(s, "web-2.nginx")),
    "pod-not-ready": (not_ready, lambda s: explain_name(s, "web-1.nginx")),
    "pod-no-hostname": (bare_pod("solo", subdomain="nginx"),
                        lambda s: explain_name(s, "solo.nginx")),
    "subdomain-no-service": (bare_pod("lonely", hostname="lonely", subdomain="nginx2"),
                             lambda s: explain_name(s, "lonely.nginx2")),
    "selector-no-match": (selector, lambda s: explain_name(s, "nginx")),
    "named-port-undefined": (target_port,
                             lambda s: explain_name(s, "_web._tcp.nginx", qtype="SRV")),
    "dns-policy-default": (host_dns, lambda s: explain_name(s, "nginx", from_pod="web-0")),
    "pod-name-aaaa": (unchanged, lambda s: explain_name(s, "web-0.nginx", qtype="AAAA")),
    "pod-record-verified": (unchanged, lambda s: explain_name(
        s, "10-244-9-9.default.pod", pod_records="verified")),
    "pod-record-insecure": (unchanged, lambda s: explain_name(s, "10-244-9-9.default.pod")),
    "aaaa-nodata": (unchanged, lambda s: explain_name(s, "nginx-service", qtype="AAAA")),
    "service-clusterip": (affinity, lambda s: explain_service(s, "nginx-service")),
    "service-headless": (unchanged, lambda s: explain_service(s, "nginx")),
    "service-named-port-undefined": (target_port, lambda s: explain_service(s, "nginx")),
    "service-missing": (unchanged, lambda s: explain_service(s, "nginx", namespace="other")),
}


def golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("TINYKUBE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (TINYKUBE_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("case", list(CASES))
def test_explanation_matches_golden(case: str) -> None:
    change, ask = CASES[case]
    objects = seed_objects()
    change(objects)
    snap = with_slices(objects)
    before = copy.deepcopy(snap.objects)
    result = ask(snap)
    assert snap.objects == before  # explanations never change what they read
    assert json.loads(json.dumps(result)) == result  # -o json is the same structure
    golden(case, render.text(result))


# case -> the reason codes the summary must give (the golden holds their words)
EXPECTED_CODES = {
    "wrong-namespace": ["no-service", "wrong-namespace"],
    "no-such-service": ["no-service", "similar-name"],
    "sts-fewer-replicas": ["sts-fewer-replicas"],
    "pod-not-ready": ["pod-not-ready"],
    "pod-no-hostname": ["pod-no-hostname"],
    "subdomain-no-service": ["no-service", "subdomain-no-service"],
    "selector-no-match": ["selector-no-match"],
    "named-port-undefined": ["named-port-undefined"],
    "aaaa-nodata": ["no-family"],
    "pod-name-aaaa": ["no-family"],
}


@pytest.mark.parametrize("case", list(EXPECTED_CODES))
def test_reason_codes(case: str) -> None:
    change, ask = CASES[case]
    objects = seed_objects()
    change(objects)
    result = ask(with_slices(objects))
    assert result["answeredBy"] is None
    assert [r["code"] for r in result["reasons"]] == EXPECTED_CODES[case]


def test_search_path_from_another_namespace() -> None:
    result = explain_name(with_slices(seed_objects()), "nginx.default", namespace="other")
    assert [(q["name"], q["rcode"]) for q in result["queries"]] == [
        ("nginx.default.other.svc.cluster.local.", "NXDOMAIN"),
        ("nginx.default.svc.cluster.local.", "NOERROR")]
    assert sorted(result["answer"]) == [f"A {ip}" for ip in sorted(IPS.values())]


@pytest.mark.parametrize(("name", "ndots", "expected"), [
    ("nginx", 5, ["nginx.a.", "nginx.b.", "nginx."]),
    ("a.b.c.d.e.f", 5, ["a.b.c.d.e.f.", "a.b.c.d.e.f.a.", "a.b.c.d.e.f.b."]),
    ("nginx.", 5, ["nginx."]),
    ("x.y", 1, ["x.y.", "x.y.a.", "x.y.b."]),
], ids=["short", "many-dots", "absolute", "ndots-1"])
def test_expand(name: str, ndots: int, expected: list[str]) -> None:
    from tinykube.explain.names import expand
    assert expand(name, ["a", "b"], ndots) == expected


def test_unknown_from_pod() -> None:
    with pytest.raises(LookupError, match='pod "nope" not found'):
        explain_name(with_slices(seed_objects()), "nginx", from_pod="nope")
