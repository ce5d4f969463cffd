"""Propagation traces: how long a change takes to reach every part of the cluster that serves it.

A trace starts at an API change this process sees and follows it through the chain:

    api-write               the write, as this process's watch delivers it: a pod whose Ready
                            condition flipped, a Service whose spec changed, or an
                            EndpointSlice written by someone else than the controller here
    endpointslice-written   an EndpointSlice that shows the change (the pod's endpoint with the
                            new `ready`) arrives by watch
    dns-model-updated       the DNS model applied it (its listener saw the Service's key)
    dns-answer              the first DNS answer built from the updated model that reads the
                            Service (the first answer that can show the change)
    proxy-updated           the service proxy (userspace or nftables) finished a sync whose input
                            holds that slice (resourceVersion at least the traced one)

Every step is stamped with one clock in one process (the components process: the controllers,
DNS and proxy run there), so the step times are comparable and add up: a timeline prints each
step's time after the previous one, and their sum is the trace's total. Steps happen in any
order (the proxy may beat the first query); a step that never comes (no one asked DNS, no proxy,
a change DNS does not show) is left out when the trace closes, after `timeout` seconds.

The tracer is fed by callbacks the composition root installs (`components`): informer handlers
(registered before the DNS and proxy ones, so a slice is seen here first), the DNS model's
listener, the responder's answer hook and the proxy's after-sync hook. It never calls anything;
its decisions are pure functions of what it was told, so it is tested with a fake clock.
Prometheus: `tinykube_propagation_seconds{kind,step}`, the time from api-write to each step.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

STEPS = ("api-write", "endpointslice-written", "dns-model-updated", "dns-answer",
         "proxy-updated")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SERVICE_LABEL = "kubernetes.io/service-name"
Obj = dict[str, Any]
Key = tuple[str, str]


@dataclass(eq=False)  # identity: traces are kept in dicts and compared as objects
class Trace:
    id: int
    kind: str  # "pod-readiness", "service", "endpointslice"
    subject: str  # "default/web-1 ready=false"
    steps: dict[str, float]  # step -> clock time
    services: set[Key] = field(default_factory=set)
    slices: dict[Key, int] = field(default_factory=dict)  # slice -> resourceVersion traced
    pod: Key | None = None
    ready: bool | None = None
    closed: bool = False
    detail: dict[str, str] = field(default_factory=dict)  # step -> what it saw

    def timeline(self) -> list[tuple[str, float, float]]:
        """(step, seconds since the previous step, seconds since api-write), in time order."""
        start = self.steps["api-write"]
        ordered = sorted(self.steps.items(), key=lambda kv: (kv[1], STEPS.index(kv[0])))
        rows, previous = [], start
        for step, at in ordered:
            rows.append((step, at - previous, at - start))
            previous = at
        return rows

    @property
    def total(self) -> float:
        return max(self.steps.values()) - self.steps["api-write"]

    def to_json(self, wall_offset: float) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "subject": self.subject,
                "start": self.steps["api-write"] + wall_offset, "closed": self.closed,
                "services": [f"{ns}/{name}" for ns, name in sorted(self.services)],
                "totalMs": round(self.total * 1000, 3),
                "steps": [{"step": s, "afterPreviousMs": round(d * 1000, 3),
                           "sinceStartMs": round(t * 1000, 3), "detail": self.detail.get(s, "")}
                          for s, d, t in self.timeline()]}


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: Mapping[str, Any]) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


def pod_ready(pod: Mapping[str, Any] | None) -> bool | None:
    """The pod's Ready condition (None: no such condition yet)."""
    for cond in ((pod or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return None


def endpoint_states(slice_: Mapping[str, Any]) -> dict[Key, bool]:
    """(namespace, pod) -> ready, for the slice's endpoints that name a pod."""
    out = {}
    for endpoint in slice_.get("endpoints") or ():
        ref = endpoint.get("targetRef") or {}
        if ref.get("kind", "Pod") == "Pod" and ref.get("name"):
            ready = (endpoint.get("conditions") or {}).get("ready")
            out[(str(ref.get("namespace") or _key(slice_)[0]), str(ref["name"]))] = \
                ready is None or bool(ready)
    return out


def service_spec_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    return old is None or (old.get("spec") or {}) != (new.get("spec") or {})


def _applied(trace: Trace, slices: Mapping[Key, int], services: set[Key]) -> bool:
    """Whether a proxy sync of these slices (key -> resourceVersion) and Services holds the
    trace's change: its slices at the traced version or later (a Service change without
    slices: the Services themselves)."""
    if trace.slices:
        return all(slices.get(k, -1) >= rv for k, rv in trace.slices.items())
    return trace.kind == "service" and trace.services <= services


class Tracer:
    """Open and recent traces; the callbacks below move them along."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, timeout: float = 30.0,
                 keep: int = 500, dns: bool = True, proxy: bool = True,
                 registry: CollectorRegistry | None = None,
                 own_slices: Callable[[Mapping[str, Any]], bool] = lambda s: True) -> None:
        self.clock, self.timeout = clock, timeout
        self.wall_offset = wall() - clock()
        self.dns, self.proxy, self.own_slices = dns, proxy, own_slices
        self.open: dict[int, Trace] = {}  # past their slice step (or a Service's): moving along
        self._open_by_service: dict[Key, dict[int, Trace]] = {}  # open traces of each Service
        self.pods: dict[Key, Trace] = {}  # the newest readiness trace of each pod
        self.answering: dict[Key, list[Trace]] = {}  # Service -> traces awaiting an answer
        self._expired_at = clock()
        self.done: deque[Trace] = deque(maxlen=keep)
        self._ids = itertools.count(1)
        self.histogram = Histogram("tinykube_propagation_seconds",
                                   "Seconds from an API change (api-write) to each step that "
                                   "serves it.", ["kind", "step"], buckets=BUCKETS,
                                   registry=registry)

    def __repr__(self) -> str:
        return f"Tracer({len(self.open)} open, {len(self.done)} done)"

    # ---- what starts a trace -------------------------------------------------------------

    def _start(self, kind: str, subject: str, **fields: Any) -> Trace:
        now = self.clock()
        if now - self._expired_at > 1.0:
            self.expire()
        trace = Trace(next(self._ids), kind, subject, {"api-write": now}, **fields)
        if trace.pod is not None:
            previous = self.pods.get(trace.pod)
            if previous is not None:
                self._close(previous)  # superseded: it ends with the steps it had
            self.pods[trace.pod] = trace
        else:
            self._open(trace)
        return trace

    def on_pod(self, old: Obj | None, new: Obj) -> None:
        ready = pod_ready(new)
        if ready is None or ready == pod_ready(old) or not (new.get("status") or {}).get("podIP"):
            return
        ns, name = _key(new)
        self._start("pod-readiness", f"pod {ns}/{name} ready={str(ready).lower()}",
                    pod=(ns, name), ready=ready)

    def on_service(self, old: Obj | None, new: Obj) -> None:
        if service_spec_changed(old, new):
            ns, name = _key(new)
            verb = "created" if old is None else "changed"
            self._start("service", f"service {ns}/{name} {verb}", services={(ns, name)})

    def on_slice(self, old: Obj | None, new: Obj) -> None:
        now, key = self.clock(), _key(new)
        service = (key[0], str(((new.get("metadata") or {}).get("labels") or {}).get(
            SERVICE_LABEL, "")))
        states, before = endpoint_states(new), endpoint_states(old or {})
        claimed = False
        for pod, ready in states.items():  # only this slice's pods: no scan of every trace
            trace = self.pods.get(pod)
            if trace is not None and ready == trace.ready and before.get(pod) != ready:
                claimed = True
                self._add_slice(trace, key, service, _rv(new), now)
        for trace in list(self._open_by_service.get(service, {}).values()):
            if trace.kind == "service" and key not in trace.slices:
                self._add_slice(trace, key, service, _rv(new), now)
        if not claimed and not self.own_slices(new) and service[1]:
            trace = self._start("endpointslice", f"endpointslice {key[0]}/{key[1]} written",
                                services={service}, slices={key: _rv(new)})
            self._step(trace, "endpointslice-written", now, "written by its owner")

    def _add_slice(self, trace: Trace, key: Key, service: Key, rv: int, now: float) -> None:
        trace.services.add(service)
        trace.slices[key] = rv
        if trace.id in self.open:
            self._open(trace)  # (indexes the Service it may have gained)
        if "endpointslice-written" not in trace.steps:
            if trace.kind != "service":
                self._open(trace)
            self._step(trace, "endpointslice-written", now, f"{key[0]}/{key[1]}")

    def _open(self, trace: Trace) -> None:
        """Keep `trace` open, found by id and by each of its Services (no scan per event)."""
        self.open[trace.id] = trace
        for service in trace.services:
            self._open_by_service.setdefault(service, {})[trace.id] = trace

    # ---- what moves it along --------------------------------------------------------------

    def on_model(self, keys: set[tuple[str, ...]]) -> None:
        now = self.clock()
        touched = {t.id: t for key in keys if len(key) == 3 and key[0] == "svc"
                   for t in self._open_by_service.get((key[1], key[2]), {}).values()}
        for trace in sorted(touched.values(), key=lambda t: t.id):
            if "dns-model-updated" not in trace.steps:
                for service in trace.services:
                    self.answering.setdefault(service, []).append(trace)
                self._step(trace, "dns-model-updated", now)

    def on_answer(self, deps: Iterable[tuple[str, ...]], name: str = "") -> None:
        """An answer was built that read `deps` (called on every DNS cache miss: cheap when
        no trace waits, and then a lookup per Service read)."""
        if not self.answering:
            return
        found = {id(t): t for dep in deps if len(dep) == 3 and dep[0] == "svc"
                 for t in self.answering.get((dep[1], dep[2]), ())}
        now = self.clock()
        for trace in found.values():
            if "dns-answer" not in trace.steps and not trace.closed:
                self._unanswering(trace)
                self._step(trace, "dns-answer", now, name)

    def _unanswering(self, trace: Trace) -> None:
        for service in trace.services:
            waiting = self.answering.get(service)
            if waiting is not None and trace in waiting:
                waiting.remove(trace)
                if not waiting:
                    del self.answering[service]

    def on_proxy_sync(self, services: Iterable[Obj], slices: Iterable[Obj]) -> None:
        pending = self._waiting("proxy-updated")
        if not pending:
            return
        now = self.clock()
        seen = {_key(s): _rv(s) for s in slices}
        svc_seen = {_key(s) for s in services}
        for trace in pending:
            if _applied(trace, seen, svc_seen):
                self._step(trace, "proxy-updated", now)

    def _waiting(self, step: str) -> list[Trace]:
        return [t for t in self.open.values() if step not in t.steps]

    def _step(self, trace: Trace, step: str, at: float, detail: str = "") -> None:
        trace.steps[step] = at
        if detail:
            trace.detail[step] = detail
        self.histogram.labels(trace.kind, step).observe(at - trace.steps["api-write"])
        if set(self.expected(trace)) <= set(trace.steps):
            self._close(trace)

    def expected(self, trace: Trace) -> list[str]:
        steps = ["api-write", "endpointslice-written"] if trace.kind != "service" else \
            ["api-write"]
        steps += ["dns-model-updated", "dns-answer"] if self.dns else []
        return steps + (["proxy-updated"] if self.proxy else [])

    def _close(self, trace: Trace) -> None:
        trace.closed = True
        self._unanswering(trace)
        if self.open.pop(trace.id, None) is not None:
            for service in trace.services:
                same = self._open_by_service.get(service, {})
                same.pop(trace.id, None)
                if not same:
                    self._open_by_service.pop(service, None)
        if trace.pod is not None and self.pods.get(trace.pod) is trace:
            del self.pods[trace.pod]
        if len(trace.steps) > 1:  # a pod in no Service never got further: no trace
            self.done.append(trace)

    def expire(self) -> None:
        """Close the traces older than `timeout` (their missing steps never came)."""
        now = self._expired_at = self.clock()
        for trace in [t for t in (*self.open.values(), *self.pods.values())
                      if not t.closed and now - t.steps["api-write"] > self.timeout]:
            self._close(trace)

    def traces(self, since: int = 0) -> Iterator[Trace]:
        """Closed traces, then open ones, with an id above `since`, by id."""
        self.expire()
        every = {t.id: t for t in (*self.done, *self.open.values(), *self.pods.values())}
        yield from sorted((t for t in every.values() if t.id > since), key=lambda t: t.id)
