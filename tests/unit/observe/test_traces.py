"""Propagation traces (observe.traces) driven by hand with a fake clock: each step in turn,
the timeline's deltas add up to the total, steps out of order, expiry, and what starts none."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tinykube.observe.traces import Tracer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, ready: bool | None, ip: str = "10.244.1.5") -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": str(ready)}]
    return {"metadata": {"namespace": "default", "name": name},
            "status": {"podIP": ip, "conditions": conditions}}


def slice_(ready: dict[str, bool], rv: int, name: str = "nginx-abc",
           managed: bool = True) -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": "nginx"}
    if managed:
        labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
    return {"metadata": {"namespace": "default", "name": name, "resourceVersion": str(rv),
                         "labels": labels},
            "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": r},
                           "targetRef": {"kind": "Pod", "namespace": "default", "name": p}}
                          for p, r in ready.items()]}


def make(clock: Clock, **kwargs: Any) -> Tracer:
    own = kwargs.pop("own_slices", lambda s: "endpointslice.kubernetes.io/managed-by"
                     in s["metadata"]["labels"])
    return Tracer(clock=clock, wall=lambda: 1000.0, registry=CollectorRegistry(),
                  own_slices=own, **kwargs)


def test_a_readiness_change_through_every_step() -> None:
    clock = Clock()
    tracer = make(clock)
    tracer.on_pod(pod("web-1", True), pod("web-1", False))
    clock.now += 0.004
    tracer.on_slice(slice_({"web-0": True, "web-1": True}, 10),
                    slice_({"web-0": True, "web-1": False}, 11))
    clock.now += 0.001
    tracer.on_model({("svc", "default", "nginx"), ("apex",)})
    clock.now += 0.002
    tracer.on_proxy_sync([], [slice_({"web-1": True}, 10)])  # an older sync: not yet
    tracer.on_proxy_sync([], [slice_({"web-1": False}, 11)])
    clock.now += 0.003
    tracer.on_answer({("svc", "default", "other")})  # reads another Service: not it
    tracer.on_answer({("svc", "default", "nginx")}, "nginx.default.svc.cluster.local.")
    (trace,) = list(tracer.traces())
    assert trace.closed and trace.subject == "pod default/web-1 ready=false"
    rows = trace.timeline()
    assert [r[0] for r in rows] == ["api-write", "endpointslice-written", "dns-model-updated",
                                    "proxy-updated", "dns-answer"]
    assert [round(r[1], 6) for r in rows] == [0, 0.004, 0.001, 0.002, 0.003]
    assert sum(r[1] for r in rows) == pytest.approx(trace.total) == pytest.approx(0.010)
    doc = trace.to_json(tracer.wall_offset)
    assert doc["totalMs"] == 10.0 and doc["start"] == pytest.approx(1000.0)
    assert doc["steps"][1]["detail"] == "default/nginx-abc"


def test_without_dns_and_proxy_the_slice_ends_it() -> None:
    clock = Clock()
    tracer = make(clock, dns=False, proxy=False)
    tracer.on_pod(pod("web-1", False), pod("web-1", True))
    tracer.on_slice(slice_({"web-1": False}, 3), slice_({"web-1": True}, 4))
    assert [t.closed for t in tracer.traces()] == [True]


@pytest.mark.parametrize(("old", "new"), [
    pytest.param(pod("a", True), pod("a", True), id="no-change"),
    pytest.param(pod("a", None), pod("a", None), id="no-condition"),
    pytest.param(pod("a", False), pod("a", True, ip=""), id="no-ip-yet"),
])
def test_what_starts_no_trace(old: dict[str, Any], new: dict[str, Any]) -> None:
    tracer = make(Clock())
    tracer.on_pod(old, new)
    assert tracer.open == {} and tracer.pods == {}


def test_a_pod_in_no_service_expires_without_a_trace() -> None:
    clock = Clock()
    tracer = make(clock, timeout=5)
    tracer.on_pod(pod("loner", False), pod("loner", True))
    clock.now += 6
    assert list(tracer.traces()) == [] and tracer.open == {} and tracer.pods == {}


def test_missing_steps_are_left_out_when_it_expires() -> None:
    clock = Clock()
    tracer = make(clock, timeout=5)
    tracer.on_pod(pod("web-1", True), pod("web-1", False))
    tracer.on_slice(slice_({"web-1": True}, 1), slice_({"web-1": False}, 2))
    clock.now += 1
    tracer.on_model({("svc", "default", "nginx")})
    assert [t.closed for t in tracer.traces()] == [False]  # waiting for an answer, a sync
    clock.now += 5
    (trace,) = list(tracer.traces())
    assert trace.closed and list(trace.steps) == ["api-write", "endpointslice-written",
                                                  "dns-model-updated"]


def test_a_hand_written_slice_and_a_service_change_start_traces() -> None:
    clock = Clock()
    tracer = make(clock, proxy=False)
    tracer.on_slice(None, slice_({"x": True}, 7, name="manual", managed=False))
    tracer.on_service(None, {"metadata": {"namespace": "default", "name": "nginx"},
                             "spec": {"clusterIP": "None"}})
    clock.now += 0.5
    tracer.on_model({("svc", "default", "nginx")})
    tracer.on_answer({("svc", "default", "nginx")})
    kinds = {t.kind: t for t in tracer.traces()}
    assert set(kinds) == {"endpointslice", "service"}
    assert all(t.closed for t in kinds.values())
    assert kinds["service"].total == pytest.approx(0.5)


def test_the_histogram_has_each_step() -> None:
    clock, registry = Clock(), CollectorRegistry()
    tracer = Tracer(clock=clock, registry=registry, dns=False, proxy=False)
    tracer.on_pod(pod("web-1", True), pod("web-1", False))
    clock.now += 0.02
    tracer.on_slice(slice_({"web-1": True}, 1), slice_({"web-1": False}, 2))
    count = registry.get_sample_value("tinykube_propagation_seconds_count",
                                      {"kind": "pod-readiness", "step": "endpointslice-written"})
    total = registry.get_sample_value("tinykube_propagation_seconds_sum",
                                      {"kind": "pod-readiness", "step": "endpointslice-written"})
    assert count == 1 and total == pytest.approx(0.02)


def test_a_pod_behind_two_services_and_a_newer_change() -> None:
    clock = Clock()
    tracer = make(clock, dns=False)
    tracer.on_pod(pod("web-1", True), pod("web-1", False))
    first = slice_({"web-1": False}, 5)
    other = slice_({"web-1": False}, 6, name="nginx-service-abc")
    other["metadata"]["labels"]["kubernetes.io/service-name"] = "nginx-service"
    tracer.on_slice(slice_({"web-1": True}, 4), first)
    tracer.on_slice(slice_({"web-1": True}, 3, name="nginx-service-abc"), other)
    (trace,) = list(tracer.traces())
    assert trace.services == {("default", "nginx"), ("default", "nginx-service")}
    tracer.on_proxy_sync([], [first])  # the second slice is not in it yet
    assert not trace.closed
    clock.now += 1
    tracer.on_pod(pod("web-1", False), pod("web-1", True))  # supersedes it
    assert trace.closed and "proxy-updated" not in trace.steps
    assert [t.subject for t in tracer.traces()] == ["pod default/web-1 ready=false",
                                                    "pod default/web-1 ready=true"]
