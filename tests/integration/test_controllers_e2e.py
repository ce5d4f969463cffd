"""Controllers end to end through the API server: StatefulSet ordering and EndpointSlice content.

One `tinykube up --nodes a,b,c --node-label c:node=c` serves the whole module; every test works
in its own namespace. Everything is observed through the API with the real kubectl:

- StatefulSet ordering is *observed*: a `kubectl get pods -w` stream records every pod event in
  resourceVersion order, and the assertions are about that order (web-1 is ADDED only after
  web-0 turns Ready, which happens only when the test sets web-0's readiness gate; scale-down
  starts deleting web-1 only after web-2 is gone). Rolling updates with a partition are checked
  on the pods' `controller-revision-hash` labels and on `kubectl rollout status` messages.
- EndpointSlice content follows dns-spec.md §4 (upstream `podToEndpoint`): `ready` =
  publishNotReadyAddresses or (Ready and not terminating), `serving` = Ready, `terminating` =
  deletionTimestamp set; a named targetPort is resolved per pod (one slice per port mapping);
  hand-written Endpoints of a selector-less Service are mirrored; at most 100 endpoints a slice.

Waiting is on real conditions: `kubectl wait`/`rollout status`, or re-reading the API until a
predicate holds (each read is a kubectl round trip; there are no sleeps).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, ComponentAudit, Kubectl, start_cluster

pytestmark = pytest.mark.kubectl

Obj = dict[str, Any]
T = TypeVar("T")
HOLD = "example.com/hold"
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
REVISION = "controller-revision-hash"


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e_audit(tmp_path_factory: pytest.TempPathFactory) -> ComponentAudit:
    return ComponentAudit(tmp_path_factory.mktemp("e2e-audit"))


@pytest.fixture(scope="module")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory,
                e2e_audit: ComponentAudit) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("e2e") / "data", "--nodes", "a,b,c",
                            "--node-label", "c:node=c", "--no-dns", "--no-proxy",
                            *e2e_audit.args())
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _no_denied_component_requests(e2e_cluster: Cluster,
                                  e2e_audit: ComponentAudit) -> Iterator[None]:
    """Every controller works within its own role: a request RBAC denied to one of them
    (which the controller would retry quietly) fails the test that caused it."""
    yield
    assert e2e_audit.new_denials() == []


@pytest.fixture
def kctl(e2e_cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Kubectl:
    """kubectl with its own cache, pointed at a fresh namespace named after the test."""
    cache = tmp_path / "kubecache"
    cache.mkdir()
    namespace = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())
    namespace = namespace[:50].strip("-")
    own_config = tmp_path / "kubeconfig"  # `config set-context` writes it: a copy per test
    own_config.write_text(e2e_cluster.kubeconfig.read_text())
    plain = Kubectl(KUBECTLS[0][1], own_config, cache)
    plain("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
    plain("config", "set-context", "--current", f"--namespace={namespace}")
    return plain


def until(read: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 30,
          what: str = "condition") -> T:
    """Re-read real state until `done` holds; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen:\n{value!r}")
        value = read()
    return value


def get_json(kctl: Kubectl, *args: str) -> Any:
    return json.loads(kctl("get", *args, "-o", "json"))


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def release(kctl: Kubectl, pod: str) -> None:
    """Set the pod's readiness gate condition True (strategic merge: conditions merge by type)."""
    kctl("patch", "pod", pod, "--subresource=status", "-p", json.dumps(
        {"status": {"conditions": [{"type": HOLD, "status": "True"}]}}))


class PodWatch:
    """`kubectl get pods -w --output-watch-events -o json`, decoded into (type, pod) events."""

    def __init__(self, kctl: Kubectl) -> None:
        self.process = kctl.popen("get", "pods", "-w", "--output-watch-events", "-o", "json")
        self.events: list[tuple[str, Obj]] = []
        self._incoming: queue.Queue[tuple[str, Obj] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.process.stdout:
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.strip())
            except json.JSONDecodeError:
                continue  # an object spans several lines
            buffer = buffer.strip()[end:]
            self._incoming.put((event["type"], event["object"]))
        self._incoming.put(None)

    def mark(self) -> int:
        """Take in every event received so far; later `since=` searches start after them."""
        while True:
            try:
                received = self._incoming.get_nowait()
            except queue.Empty:
                return len(self.events)
            if received is not None:
                self.events.append(received)

    def wait_for(self, match: Callable[[str, Obj], bool], *, timeout: float = 30,
                 since: int = 0) -> tuple[str, Obj]:
        """Block until an event matching `match` arrives (events seen so far count too)."""
        for event in self.events[since:]:
            if match(*event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            try:
                received = self._incoming.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching pod event; saw {self.summary()}") from None
            if received is None:
                raise AssertionError(f"pod watch ended; saw {self.summary()}")
            self.events.append(received)
            event = received
            if match(*event):
                return event

    def index(self, match: Callable[[str, Obj], bool], *, since: int = 0) -> int:
        """Position of the first event at or after `since` matching `match` (waits for it)."""
        self.wait_for(match, since=since)
        return next(i for i, event in enumerate(self.events) if i >= since and match(*event))

    def summary(self) -> list[tuple[str, str, bool, bool]]:
        return [(kind, pod["metadata"]["name"], is_ready(pod),
                 bool(pod["metadata"].get("deletionTimestamp"))) for kind, pod in self.events]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def pod_watch(kctl: Kubectl) -> Iterator[PodWatch]:
    watch = PodWatch(kctl)
    yield watch
    watch.stop()


def named(name: str, *, kind: str | None = None, ready: bool | None = None,
          deleting: bool | None = None) -> Callable[[str, Obj], bool]:
    """A watch-event predicate: this pod, and optionally this event type/readiness/deletion."""
    def match(event: str, pod: Obj) -> bool:
        return (pod["metadata"]["name"] == name and (kind is None or event == kind)
                and (ready is None or is_ready(pod) == ready)
                and (deleting is None
                     or bool(pod["metadata"].get("deletionTimestamp")) == deleting))
    return match


def statefulset(replicas: int, *, gate: bool) -> str:
    pod_spec: Obj = {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "nginx:1.25",
                                     "ports": [{"containerPort": 80, "name": "web"}]}]}
    if gate:
        pod_spec["readinessGates"] = [{"conditionType": HOLD}]
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"},
         "spec": {"clusterIP": "None", "selector": {"app": "web"},
                  "ports": [{"port": 80, "name": "web"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
         "spec": {"serviceName": "nginx", "replicas": replicas,
                  "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}},
    ]
    return yaml_stream(*objects)


def yaml_stream(*objects: Obj) -> str:
    """Objects as one multi-document YAML stream (kubectl validates a `List` via /openapi/v2)."""
    return yaml.safe_dump_all(objects)


# --- StatefulSet ----------------------------------------------------------------------------


def test_ordered_ready_waits_for_the_readiness_gate(kctl: Kubectl, pod_watch: PodWatch) -> None:
    kctl("apply", "-f", "-", input=statefulset(2, gate=True))
    pod_watch.wait_for(named("web-0", ready=False))
    kctl("wait", "--for=jsonpath={.status.phase}=Running", "pod/web-0", "--timeout=30s")
    held = kctl.run("rollout", "status", "sts/web", "--watch=false")
    assert held.stdout == "Waiting for 2 pods to be ready...\n"

    release(kctl, "web-0")
    pod_watch.wait_for(named("web-1", kind="ADDED"))
    ready_at = pod_watch.index(named("web-0", ready=True))
    added_at = pod_watch.index(named("web-1", kind="ADDED"))
    assert ready_at < added_at, pod_watch.summary()
    # While web-0 was held, nothing but web-0 existed.
    assert {p["metadata"]["name"] for _, p in pod_watch.events[:ready_at]} == {"web-0"}

    pod_watch.wait_for(named("web-1", ready=False))
    release(kctl, "web-1")
    out = kctl("rollout", "status", "sts/web", "--timeout=30s")
    assert out.splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated..."


def revisions(kctl: Kubectl) -> dict[str, str]:
    pods = get_json(kctl, "pods")["items"]
    return {p["metadata"]["name"]: p["metadata"]["labels"][REVISION] for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def sts_status(kctl: Kubectl) -> Obj:
    status: Obj = get_json(kctl, "sts", "web")["status"]
    return status


def test_partitioned_rolling_update_then_ordered_scale_down(kctl: Kubectl,
                                                            pod_watch: PodWatch) -> None:
    kctl("apply", "-f", "-", input=statefulset(3, gate=False))
    kctl("rollout", "status", "sts/web", "--timeout=30s")
    old = sts_status(kctl)["currentRevision"]
    assert revisions(kctl) == {"web-0": old, "web-1": old, "web-2": old}

    kctl("patch", "sts", "web", "-p", json.dumps({"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.26"}]}}}}))
    out = kctl("rollout", "status", "sts/web", "--timeout=30s")
    assert out.splitlines()[-1] == "partitioned roll out complete: 1 new pods have been updated..."
    status = sts_status(kctl)
    new = status["updateRevision"]
    assert new != old and status["currentRevision"] == old
    assert revisions(kctl) == {"web-0": old, "web-1": old, "web-2": new}

    kctl("patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":'
                                      '{"partition":0}}}}')
    out = kctl("rollout", "status", "sts/web", "--timeout=30s")
    assert out.splitlines()[-1] == "partitioned roll out complete: 3 new pods have been updated..."
    assert revisions(kctl) == {"web-0": new, "web-1": new, "web-2": new}
    status = sts_status(kctl)
    assert (status["currentRevision"], status["updatedReplicas"]) == (new, 3)
    # Highest ordinal first: web-1 was replaced before web-0 was touched.
    assert pod_watch.index(named("web-1", deleting=True)) < \
        pod_watch.index(named("web-0", deleting=True))
    assert pod_watch.index(named("web-1", kind="ADDED")) < \
        pod_watch.index(named("web-0", deleting=True))

    scaled = pod_watch.mark()
    kctl("scale", "sts", "web", "--replicas=1")
    pod_watch.wait_for(named("web-1", kind="DELETED"), since=scaled)
    kctl("rollout", "status", "sts/web", "--timeout=30s")
    # One at a time, highest first: web-1's deletion began only once web-2 was gone.
    web2_gone = pod_watch.index(named("web-2", kind="DELETED"), since=scaled)
    assert pod_watch.index(named("web-2", deleting=True), since=scaled) < web2_gone
    start = pod_watch.index(named("web-1", deleting=True), since=scaled)
    assert web2_gone < start, pod_watch.summary()
    assert [p["metadata"]["name"] for p in get_json(kctl, "pods")["items"]] == ["web-0"]


# --- EndpointSlices -------------------------------------------------------------------------


def service(name: str, selector: dict[str, str] | None, *, publish_not_ready: bool = False,
            target_port: int | str = 80) -> Obj:
    spec: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": target_port}]}
    if selector:
        spec["selector"] = selector
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def pod(name: str, labels: dict[str, str], *, gate: bool = False, port: int = 80,
        finalizers: tuple[str, ...] = ()) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "nginx:1.25",
                                 "ports": [{"containerPort": port, "name": "web"}]}]}
    if gate:
        spec["readinessGates"] = [{"conditionType": HOLD}]
    meta: Obj = {"name": name, "labels": labels}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def apply(kctl: Kubectl, *objects: Obj) -> None:
    kctl("apply", "-f", "-", input=yaml_stream(*objects))


def slices_of(kctl: Kubectl, service_name: str) -> list[Obj]:
    items: list[Obj] = get_json(kctl, "endpointslices", "-l",
                                f"{SERVICE_NAME}={service_name}")["items"]
    return items


def endpoints_of(kctl: Kubectl, service_name: str) -> list[Obj]:
    return [e for s in slices_of(kctl, service_name) for e in s.get("endpoints") or []]


CONDITION_CASES = [
    # (publishNotReadyAddresses, hold the readiness gate, delete the pod) -> conditions
    pytest.param(False, False, False, {"ready": True, "serving": True, "terminating": False},
                 id="ready"),
    pytest.param(False, True, False, {"ready": False, "serving": False, "terminating": False},
                 id="not-ready"),
    pytest.param(True, True, False, {"ready": True, "serving": False, "terminating": False},
                 id="not-ready-published"),
    pytest.param(False, False, True, {"ready": False, "serving": False, "terminating": True},
                 id="terminating"),
    pytest.param(True, False, True, {"ready": True, "serving": False, "terminating": True},
                 id="terminating-published"),
]


@pytest.mark.parametrize(("publish", "hold", "delete", "expected"), CONDITION_CASES)
def test_endpoint_conditions(kctl: Kubectl, publish: bool, hold: bool, delete: bool,
                             expected: dict[str, bool]) -> None:
    # A virtual pod stops at once when deleted; a finalizer keeps the deleted pod Terminating.
    apply(kctl, service("svc", {"app": "p"}, publish_not_ready=publish),
          pod("p", {"app": "p"}, gate=hold, finalizers=(HOLD,) if delete else ()))
    kctl("wait", "--for=jsonpath={.status.phase}=Running", "pod/p", "--timeout=30s")
    if not hold:
        kctl("wait", "--for=condition=Ready", "pod/p", "--timeout=30s")
    if delete:
        kctl("delete", "pod", "p", "--grace-period=30", "--wait=false")
    seen: list[Obj] = []

    def read() -> list[Obj]:
        found = endpoints_of(kctl, "svc")
        seen.extend(found)
        return found
    [endpoint] = until(read, lambda eps: len(eps) == 1 and eps[0]["conditions"] == expected,
                       what=f"endpoint conditions {expected}", timeout=15)
    # Whatever was seen on the way: a terminating endpoint is never ready unless published.
    assert all(e["conditions"]["ready"] == publish
               for e in seen if e["conditions"].get("terminating"))
    live = get_json(kctl, "pod", "p")
    assert endpoint["addresses"] == [live["status"]["podIP"]]
    assert endpoint["nodeName"] == live["spec"]["nodeName"]
    assert endpoint["targetRef"] == {"kind": "Pod", "namespace": live["metadata"]["namespace"],
                                     "name": "p", "uid": live["metadata"]["uid"]}
    assert "hostname" not in endpoint  # no hostname/subdomain on this pod


def test_named_target_port_differing_per_pod_gives_one_slice_per_port(kctl: Kubectl) -> None:
    apply(kctl, service("svc", {"app": "named"}, target_port="web"),
          pod("p8080", {"app": "named"}, port=8080), pod("p9090", {"app": "named"}, port=9090))
    found = until(lambda: slices_of(kctl, "svc"),
                  lambda s: sum(len(x.get("endpoints") or []) for x in s) == 2,
                  what="two endpoints")
    by_port = {tuple((p["name"], p["port"], p["protocol"]) for p in s["ports"]):
               [e["targetRef"]["name"] for e in s["endpoints"]] for s in found}
    assert by_port == {(("http", 8080, "TCP"),): ["p8080"], (("http", 9090, "TCP"),): ["p9090"]}
    assert all(s["metadata"]["labels"][MANAGED_BY] == "endpointslice-controller.k8s.io"
               and s["addressType"] == "IPv4" for s in found)


def test_selectorless_service_endpoints_are_mirrored(kctl: Kubectl) -> None:
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "10.9.0.1", "hostname": "one"}],
                     "notReadyAddresses": [{"ip": "10.9.0.2"}],
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}
    apply(kctl, service("ext", None), endpoints)
    [mirrored] = until(lambda: slices_of(kctl, "ext"),
                       lambda s: len(s) == 1 and len(s[0].get("endpoints") or []) == 2,
                       what="one mirrored slice with two endpoints")
    labels = mirrored["metadata"]["labels"]
    assert labels[MANAGED_BY] == "endpointslicemirroring-controller.k8s.io"
    assert labels[SERVICE_NAME] == "ext"
    assert mirrored["addressType"] == "IPv4"
    assert mirrored["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    got = sorted((e["addresses"], e.get("hostname"), e["conditions"]["ready"])
                 for e in mirrored["endpoints"])
    assert got == [(["10.9.0.1"], "one", True), (["10.9.0.2"], None, False)]
    [owner] = mirrored["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Endpoints", "ext")


def test_250_pods_fill_three_slices(kctl: Kubectl) -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "many"},
        "spec": {"replicas": 250, "selector": {"matchLabels": {"app": "many"}},
                 "template": {"metadata": {"labels": {"app": "many"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    apply(kctl, service("many", {"app": "many"}), deployment)
    kctl("rollout", "status", "deploy/many", "--timeout=60s", timeout=90)
    found = until(lambda: slices_of(kctl, "many"),
                  lambda s: sum(1 for x in s for e in x.get("endpoints") or []
                                if e["conditions"]["ready"]) == 250,
                  timeout=30, what="250 ready endpoints")
    # Three slices of at most 100; how the 250 spread depends on the order pods got ready,
    # as upstream (the controller fills existing slices before it makes new ones).
    sizes = [len(s["endpoints"]) for s in found]
    assert len(sizes) == 3 and sum(sizes) == 250 and max(sizes) <= 100
    pods = get_json(kctl, "pods", "-l", "app=many")["items"]
    assert {e["targetRef"]["name"]: e["addresses"][0] for s in found for e in s["endpoints"]} \
        == {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}


def test_each_controller_writes_as_its_own_service_account(kctl: Kubectl,
                                                           e2e_audit: ComponentAudit) -> None:
    """kube-controller-manager with --use-service-account-credentials: the Deployment's
    ReplicaSet is created by the deployment controller's account, its pods by the ReplicaSet
    controller's, their slice by the EndpointSlice controller's; each with the manager's user
    agent and its own name after it; the manager itself holds the Lease."""
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "who"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "who"}},
                 "template": {"metadata": {"labels": {"app": "who"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    apply(kctl, service("who", {"app": "who"}), deployment)
    kctl("rollout", "status", "deploy/who", "--timeout=60s", timeout=90)
    until(lambda: slices_of(kctl, "who"), lambda s: bool(s), what="the slice")
    namespace = kctl("config", "view", "--minify", "-o", "jsonpath={..namespace}").strip()

    def writers(resource: str) -> set[tuple[str, str]]:
        return {(e["user"]["username"], e["userAgent"]) for e in e2e_audit.events()
                if e["verb"] == "create" and e["objectRef"].get("resource") == resource
                and not e["objectRef"].get("subresource")  # the scheduler's pods/binding
                and e["objectRef"].get("namespace") == namespace}
    agent = "kube-controller-manager/v1.32.0 (linux/amd64) tinykube/"
    account = "system:serviceaccount:kube-system:"
    assert until(lambda: writers("endpointslices"), lambda w: bool(w), what="audited") == {
        (account + "endpointslice-controller", agent + "endpointslice-controller")}
    assert writers("replicasets") == {(account + "deployment-controller",
                                       agent + "deployment-controller")}
    assert writers("pods") == {(account + "replicaset-controller",
                                agent + "replicaset-controller")}
    leases = {e["user"]["username"] for e in e2e_audit.events()
              if e["objectRef"].get("resource") == "leases"
              and e["objectRef"].get("name") == "kube-controller-manager"}
    assert leases == {"system:kube-controller-manager"}
