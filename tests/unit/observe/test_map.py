"""The live map's document (observe.hub.cluster_map), the fallback explanation
(observe.explain.describe) and the CLI's line formats (cli.observe), on the seed's objects."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.cli.observe import log_line, timeline
from tinykube.observe.explain import describe
from tinykube.observe.hub import cluster_map, pod_dns_names


def pod(name: str, ip: str, ready: bool, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "labels": {"app": "nginx"}},
            "spec": {"nodeName": "node1", **spec},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


def service(name: str, cluster_ip: str, selector: dict[str, str] | None = None
            ) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": cluster_ip, "type": "ClusterIP",
                     "selector": {"app": "nginx"} if selector is None else selector,
                     "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}}


def endpoint(name: str, ip: str, ready: bool, hostname: str | None = None) -> dict[str, Any]:
    e = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready,
                                           "terminating": False},
         "targetRef": {"kind": "Pod", "namespace": "default", "name": name}, "nodeName": "node1"}
    if hostname:
        e["hostname"] = hostname
    return e


def slice_(service: str, *endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{service}-x",
                         "labels": {"kubernetes.io/service-name": service}},
            "endpoints": list(endpoints)}


SEED = {
    "services": [service("nginx", "None"), service("nginx-service", "10.96.0.50"),
                 service("lonely", "10.96.0.60", {"app": "nothing"})],
    "slices": [slice_("nginx", endpoint("web-0", "10.244.1.3", True, "web-0"),
                      endpoint("web-1", "10.244.1.4", False, "web-1")),
               slice_("nginx-service", endpoint("web-0", "10.244.1.3", True),
                      endpoint("web-1", "10.244.1.4", False))],
    "pods": [pod("web-0", "10.244.1.3", True, hostname="web-0", subdomain="nginx"),
             pod("web-1", "10.244.1.4", False, hostname="web-1", subdomain="nginx"),
             pod("other", "10.244.1.9", True)],
}


def seed_map() -> dict[str, Any]:
    return cluster_map(SEED["services"], SEED["slices"], SEED["pods"])


def test_the_map_of_the_seed() -> None:
    (ns,) = seed_map()["namespaces"]
    services = {s["name"]: s for s in ns["services"]}
    nginx = services["nginx"]
    assert nginx["headless"] and nginx["dns"] == "nginx.default.svc.cluster.local"
    rows = [(e["pod"], e["ready"], e["dns"]) for e in nginx["slices"][0]["endpoints"]]
    assert rows == [("web-0", True, "web-0.nginx.default.svc.cluster.local"),
                    ("web-1", False, "web-1.nginx.default.svc.cluster.local")]
    assert services["nginx-service"]["slices"][0]["endpoints"][0]["dns"] == ""  # not headless
    assert services["lonely"]["slices"] == []
    pods = {p["name"]: p for p in ns["pods"]}
    assert pods["web-0"]["inService"] and not pods["other"]["inService"]
    assert pods["web-0"]["dns"] == ["web-0.nginx.default.svc.cluster.local",
                                    "10-244-1-3.default.pod.cluster.local"]


@pytest.mark.parametrize(("spec", "headless", "expected"), [
    pytest.param({"hostname": "web-0", "subdomain": "nginx"}, {("default", "nginx")},
                 ["web-0.nginx.default.svc.cluster.local", "10-244-1-3.default.pod.cluster.local"],
                 id="hostname-and-headless-subdomain"),
    pytest.param({"hostname": "web-0", "subdomain": "nginx"}, set(),
                 ["10-244-1-3.default.pod.cluster.local"], id="subdomain-names-no-headless"),
    pytest.param({"subdomain": "nginx"}, {("default", "nginx")},
                 ["10-244-1-3.default.pod.cluster.local"], id="no-hostname"),
])
def test_pod_dns_names(spec: dict[str, str], headless: set[tuple[str, str]],
                       expected: list[str]) -> None:
    assert pod_dns_names(pod("web-0", "10.244.1.3", True, **spec), headless) == expected


@pytest.mark.parametrize(("kind", "name", "says"), [
    ("service", "nginx", ["headless ClusterIP Service nginx", "ready endpoints' addresses: "
                          "10.244.1.3", "web-0.nginx.default.svc.cluster.local -> 10.244.1.3",
                          "Left out: web-1 (not Ready)"]),
    ("service", "nginx-service", ["DNS answers its cluster IP 10.96.0.50",
                                  "one of 1 ready endpoint(s)"]),
    ("service", "lonely", ["No pod matches its selector app=nothing"]),
    ("service", "missing", ["No Service missing in namespace default."]),
    ("pod", "web-1", ["not Ready, IP 10.244.1.4", "Endpoint of: nginx, nginx-service (not "
                      "ready"]),
    ("pod", "other", ["No Service selects it."]),
])
def test_describe(kind: str, name: str, says: list[str]) -> None:
    text = describe(seed_map(), kind, "default", name)
    for words in says:
        assert words in text


def test_log_line_and_timeline() -> None:
    entry = {"time": 0.0, "client": "10.244.2.7", "pod": "other/client", "proto": "udp",
             "type": "A", "name": "nginx.default.svc.cluster.local.", "rcode": "NOERROR",
             "answers": ["nginx.default.svc.cluster.local. A 10.244.1.3"], "latencyMs": 0.12,
             "source": "service default/nginx", "note": ""}
    line = log_line(entry)
    assert line.endswith("other/client udp A nginx.default.svc.cluster.local. NOERROR "
                         "10.244.1.3 0.120ms [service default/nginx]")
    trace = {"start": 0.0, "subject": "pod default/web-1 ready=false", "closed": True,
             "totalMs": 3.5, "steps": [
                 {"step": "api-write", "afterPreviousMs": 0, "sinceStartMs": 0, "detail": ""},
                 {"step": "endpointslice-written", "afterPreviousMs": 3.5, "sinceStartMs": 3.5,
                  "detail": "default/nginx-x"}]}
    lines = timeline(trace)
    assert lines[0].endswith("pod default/web-1 ready=false")
    assert "+    3.500 ms  endpointslice-written" in lines[2]
    assert lines[-1] == "  = 3.500 ms from api-write to the last step"


async def test_the_explain_package_is_used_when_installed(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    import sys
    import types

    from tinykube.observe.explain import dns_name, from_explain_package

    calls: list[tuple[str, str, str]] = []
    package, render = types.ModuleType("tinykube.explain"), types.ModuleType("render")

    async def explain_service_of(client: object, name: str, *, namespace: str) -> dict[str, str]:
        calls.append(("service", namespace, name))
        return {"kind": "ServiceExplanation", "name": name}

    async def explain(client: object, name: str, *, namespace: str) -> dict[str, str]:
        calls.append(("name", namespace, name))
        return {"kind": "NameExplanation", "name": name}

    package.explain_service_of, package.explain = explain_service_of, explain  # type: ignore[attr-defined]
    render.text = lambda result: f"{result['kind']} of {result['name']}"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tinykube.explain", package)
    monkeypatch.setitem(sys.modules, "tinykube.explain.render", render)
    doc = seed_map()
    adapter = from_explain_package(object(), lambda k, ns, n: dns_name(doc, k, ns, n))
    assert adapter is not None
    assert await adapter("service", "default", "nginx") == "ServiceExplanation of nginx"
    assert await adapter("pod", "default", "web-1") == \
        "NameExplanation of web-1.nginx.default.svc.cluster.local."
    assert calls == [("service", "default", "nginx"),
                     ("name", "default", "web-1.nginx.default.svc.cluster.local.")]


def test_without_the_explain_package_there_is_no_adapter(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import sys

    from tinykube.observe.explain import from_explain_package

    monkeypatch.setitem(sys.modules, "tinykube.explain", None)
    assert from_explain_package(object(), lambda k, ns, n: "") is None


class FakeInformer:
    """A synced shared informer: add_handlers replays its cache through on_add."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.has_synced, self.handlers = items, True, []
        self.cache = types_namespace(list=lambda: self.items)

    def add_handlers(self, **handlers: Any) -> None:
        self.handlers.append(handlers)
        for item in self.items:
            handlers["on_add"](item)


def types_namespace(**kwargs: Any) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(**kwargs)


def test_the_hub_starts_traces_for_changes_not_for_what_exists(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import CollectorRegistry

    from tinykube.observe import hub as hub_module
    from tinykube.observe.traces import Tracer

    informers = {"pods": FakeInformer(SEED["pods"]),
                 "services": FakeInformer(SEED["services"]),
                 "endpointslices": FakeInformer(SEED["slices"])}
    monkeypatch.setattr(hub_module, "shared_informer", lambda client, res: informers[res.plural])
    tracer = Tracer(registry=CollectorRegistry())
    hub = hub_module.Hub(object(), tracer)  # type: ignore[arg-type]
    assert list(tracer.traces()) == [] and hub.version == 8  # replayed: seen, not traced
    informers["services"].handlers[0]["on_add"](service("new", "10.96.0.70"))
    assert [t.subject for t in tracer.traces()] == ["service default/new created"]
    assert hub.pod_index()["10.244.1.4"] == "default/web-1"
    assert [ns["name"] for ns in hub.snapshot()["namespaces"]] == ["default"]
