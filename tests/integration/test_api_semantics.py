"""API semantics kubectl and controllers rely on, over HTTPS against a real `tinykube up`.

One cluster serves the whole module (every test uses its own namespace or object names):

- label selectors with every operator, field selectors per kind, and kube-apiserver's 400 for a
  field a kind does not support;
- `timeoutSeconds` ends a watch by itself; `/healthz`, `/livez`, `/readyz`; the four
  namespaces a cluster starts with;
- finalizers hold a deleted object until the last one is removed; a patch carrying a stale
  `metadata.resourceVersion` is a 409; `metadata.generation` counts spec changes only;
- the legacy `apps/v1beta1` and `apps/v1beta2` URLs: stored as `apps/v1`, served back in the
  version asked for, every answer with a deprecation `Warning` header.

The SIGINT test starts its own `tinykube up`s, since it stops one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import re
import signal
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import Cluster, start_cluster
from tests.integration.api_http import JSON, Connection, Reply, Server

MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("semantics") / "data", "--no-dns")
    yield cluster
    assert cluster.stop() == 0


@pytest.fixture(scope="module")
def server(running: Cluster) -> Server:
    return Server(running.url, running.data_dir)


@pytest.fixture
def conn(server: Server) -> Iterator[Connection]:
    connection = server.connect()
    yield connection
    connection.close()


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.body[:1000]
    return reply.json()


def ensure_namespace(conn: Connection, name: str) -> None:
    reply = conn.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert reply.status in (201, 409), reply.body


def query(**params: str) -> str:
    return "?" + urllib.parse.urlencode(params)


def names(conn: Connection, path: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in ok(conn.request("GET", path))["items"])


@contextlib.contextmanager
def stream(server: Server, path: str) -> Iterator[http.client.HTTPResponse]:
    """A GET whose body is read as it arrives (a watch), on its own connection."""
    parsed = urllib.parse.urlsplit(server.url)
    assert parsed.hostname is not None and parsed.port is not None
    connection = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=30,
                                              context=server.ssl_context())
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {server.token}",
                                                 "Accept": JSON})
        yield connection.getresponse()
    finally:
        connection.close()


def read_events(response: http.client.HTTPResponse,
                done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Watch events from `response` until `done(events)` or the stream ends (the socket's
    30 s timeout bounds a stream that stalls)."""
    events: list[dict[str, Any]] = []
    while not done(events):
        line = response.readline()
        if not line:
            break
        if line.strip():
            events.append(orjson.loads(line))
    return events


# --- label selectors -----------------------------------------------------------------------

LABELS_NS = "labels"
LABELLED = {
    "a": {"env": "prod", "tier": "web"},
    "b": {"env": "dev", "tier": "web"},
    "c": {"env": "prod"},
    "d": {"tier": "db"},
    "e": {},
}
LABEL_CASES = {
    "equals": ("env=prod", "a c"),
    "double-equals": ("env==prod", "a c"),
    "not-equals-includes-missing-key": ("env!=prod", "b d e"),
    "in": ("env in (prod,dev)", "a b c"),
    "in-one-value": ("tier in (db)", "d"),
    "notin-includes-missing-key": ("env notin (prod)", "b d e"),
    "exists": ("tier", "a b d"),
    "does-not-exist": ("!tier", "c e"),
    "and": ("env=prod,tier=web", "a"),
    "exists-and-not-exists": ("env,!tier", "c"),
    "in-and-notin": ("tier in (web,db),env notin (dev)", "a d"),
    "spaces-around-operators": ("env = prod , tier != web", "c"),
    "no-match": ("env=staging", ""),
    "empty-selects-all": ("", "a b c d e"),
}


@pytest.fixture(scope="module")
def labelled(server: Server) -> str:
    """Secrets with labels: no controller adds Secrets to a namespace (ConfigMaps get
    `kube-root-ca.crt`), so a list holds exactly these."""
    conn = server.connect()
    try:
        ensure_namespace(conn, LABELS_NS)
        for name, labels in LABELLED.items():
            ok(conn.request("POST", f"/api/v1/namespaces/{LABELS_NS}/secrets",
                            {"metadata": {"name": name, "labels": labels}}), 201)
    finally:
        conn.close()
    return f"/api/v1/namespaces/{LABELS_NS}/secrets"


@pytest.mark.parametrize(("selector", "expected"), LABEL_CASES.values(), ids=LABEL_CASES.keys())
def test_label_selector_operators(conn: Connection, labelled: str, selector: str,
                                  expected: str) -> None:
    assert names(conn, labelled + query(labelSelector=selector)) == expected.split()


# --- field selectors -----------------------------------------------------------------------

FIELDS_NS = "fields"
OTHER_NS = "fields-other"
GHOST_NODES = {"p-running": "ghost-a", "p-pending": "ghost-a", "p-other-node": "ghost-b"}
EVENTS = {  # name -> involvedObject
    "ev-pod": {"kind": "Pod", "name": "p-running", "namespace": FIELDS_NS, "uid": "uid-pod"},
    "ev-svc": {"kind": "Service", "name": "web", "namespace": FIELDS_NS, "uid": "uid-svc"},
    "ev-other-ns": {"kind": "Pod", "name": "p-running", "namespace": OTHER_NS,
                    "uid": "uid-pod-2"},
}


@pytest.fixture(scope="module")
def field_objects(server: Server) -> None:
    """Secrets in two namespaces (a kind no controller adds to new namespaces), Pods bound to
    nodes that do not exist (so no node agent touches them) with one set Running through the
    status subresource, and Events."""
    conn = server.connect()
    try:
        for namespace in (FIELDS_NS, OTHER_NS):
            ensure_namespace(conn, namespace)
            for name in ("one", "two"):
                ok(conn.request("POST", f"/api/v1/namespaces/{namespace}/secrets",
                                {"metadata": {"name": name}}), 201)
        pods = f"/api/v1/namespaces/{FIELDS_NS}/pods"
        for name, node in GHOST_NODES.items():
            created = ok(conn.request("POST", pods, {
                "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
            }), 201)
            assert created["status"]["phase"] == "Pending"
        ok(conn.request("PATCH", f"{pods}/p-running/status", {"status": {"phase": "Running"}},
                        headers=MERGE))
        for name, involved in EVENTS.items():
            namespace = involved["namespace"]
            ok(conn.request("POST", f"/api/v1/namespaces/{namespace}/events", {
                "metadata": {"name": name}, "involvedObject": involved,
                "reason": "Testing", "message": "field selectors", "type": "Normal"}), 201)
    finally:
        conn.close()


FIELD_CASES = {
    "name": (f"/api/v1/namespaces/{FIELDS_NS}/secrets", "metadata.name=one", "one"),
    "name-double-equals": (f"/api/v1/namespaces/{FIELDS_NS}/secrets",
                           "metadata.name==two", "two"),
    "name-not-equals": (f"/api/v1/namespaces/{FIELDS_NS}/secrets", "metadata.name!=one",
                        "two"),
    "namespace-across-namespaces": ("/api/v1/secrets", f"metadata.namespace={OTHER_NS}",
                                    "one two"),
    "name-and-namespace": ("/api/v1/secrets",
                           f"metadata.namespace={OTHER_NS},metadata.name=two", "two"),
    "pod-node": (f"/api/v1/namespaces/{FIELDS_NS}/pods", "spec.nodeName=ghost-a",
                 "p-pending p-running"),
    "pod-not-node": (f"/api/v1/namespaces/{FIELDS_NS}/pods", "spec.nodeName!=ghost-a",
                     "p-other-node"),
    "pod-node-cluster-wide": ("/api/v1/pods", "spec.nodeName=ghost-b", "p-other-node"),
    "pod-phase-running": (f"/api/v1/namespaces/{FIELDS_NS}/pods", "status.phase=Running",
                          "p-running"),
    "pod-phase-pending": (f"/api/v1/namespaces/{FIELDS_NS}/pods", "status.phase=Pending",
                          "p-other-node p-pending"),
    "pod-node-and-phase": (f"/api/v1/namespaces/{FIELDS_NS}/pods",
                           "spec.nodeName=ghost-a,status.phase!=Running", "p-pending"),
    "event-kind": (f"/api/v1/namespaces/{FIELDS_NS}/events", "involvedObject.kind=Pod",
                   "ev-pod"),
    "event-name": (f"/api/v1/namespaces/{FIELDS_NS}/events", "involvedObject.name=web",
                   "ev-svc"),
    "event-uid": (f"/api/v1/namespaces/{FIELDS_NS}/events", "involvedObject.uid=uid-pod",
                  "ev-pod"),
    "event-involved-namespace": ("/api/v1/events", f"involvedObject.namespace={OTHER_NS}",
                                 "ev-other-ns"),
    "event-kind-name-namespace": ("/api/v1/events",
                                  f"involvedObject.kind=Pod,involvedObject.name=p-running,"
                                  f"involvedObject.namespace={FIELDS_NS}", "ev-pod"),
}


@pytest.mark.usefixtures("field_objects")
@pytest.mark.parametrize(("path", "selector", "expected"), FIELD_CASES.values(),
                         ids=FIELD_CASES.keys())
def test_field_selectors(conn: Connection, path: str, selector: str, expected: str) -> None:
    assert names(conn, path + query(fieldSelector=selector)) == expected.split()


# kube-apiserver turns the field label conversion's error into a 400 BadRequest (get.go):
# kinds without a conversion function of their own (ConfigMap) get
# runtime.DefaultMetaV1FieldSelectorConversion's wording, those with one (Pod, Event, Node,
# Namespace; pkg/apis/core/v1/conversion.go) "field label not supported: <label>".
UNKNOWN_FIELD_NOT_KNOWN = ('"foo" is not a known field selector: only "metadata.name", '
                           '"metadata.namespace"')
UNSUPPORTED_FIELD_CASES = {
    "configmaps": pytest.param(
        "/api/v1/namespaces/default/configmaps", "foo=bar", UNKNOWN_FIELD_NOT_KNOWN),
    "configmaps-watch": pytest.param(
        "/api/v1/namespaces/default/configmaps?watch=1", "foo=bar", UNKNOWN_FIELD_NOT_KNOWN),
    "pods": pytest.param("/api/v1/namespaces/default/pods", "foo=bar",
                         "field label not supported: foo"),
    "pods-status-host-ip": pytest.param("/api/v1/pods", "status.hostIP=1.2.3.4",
                                        "field label not supported: status.hostIP"),
    "pods-watch": pytest.param("/api/v1/pods?watch=1", "foo=bar",
                               "field label not supported: foo"),
    "events": pytest.param("/api/v1/namespaces/default/events", "foo=bar",
                           "field label not supported: foo"),
    "nodes-namespace": pytest.param(
        "/api/v1/nodes", "metadata.namespace=x",
        "field label not supported: metadata.namespace"),
    "namespaces-namespace": pytest.param(
        "/api/v1/namespaces", "metadata.namespace=x",
        "field label not supported: metadata.namespace"),
}


@pytest.mark.parametrize(("path", "selector", "message"), UNSUPPORTED_FIELD_CASES.values(),
                         ids=UNSUPPORTED_FIELD_CASES.keys())
def test_unsupported_field_selector_is_400(conn: Connection, path: str, selector: str,
                                           message: str) -> None:
    sep = "&" if "?" in path else "?"
    reply = conn.request("GET", path + sep + urllib.parse.urlencode({"fieldSelector": selector}))
    assert reply.status == 400, reply.body[:500]
    status = reply.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    assert status["message"] == message


# --- watch timeout, health, namespaces -----------------------------------------------------

def test_watch_with_timeout_seconds_ends_by_itself(conn: Connection) -> None:
    started = time.monotonic()
    reply = conn.request("GET", "/api/v1/namespaces/default/configmaps"
                         + query(watch="1", timeoutSeconds="1"))
    elapsed = time.monotonic() - started
    assert reply.status == 200
    assert 0.9 <= elapsed < 10, elapsed


HEALTH_CASES = [(path, token, status)
                for path in ("/healthz", "/livez", "/readyz")
                # anonymous may: the default system:public-info-viewer binding allows it
                for token, status in (("admin", 200), (None, 200), ("wrong", 401))]


@pytest.mark.parametrize(("path", "token", "status"), HEALTH_CASES,
                         ids=[f"{p.strip('/')}-{t or 'no'}-token" for p, t, _ in HEALTH_CASES])
def test_health_endpoints(conn: Connection, path: str, token: str | None, status: int) -> None:
    reply = conn.request("GET", path, token=token)
    assert reply.status == status, reply.body
    if status == 200:
        assert reply.body == b"ok"
    else:
        assert reply.json()["reason"] == "Unauthorized"


BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def test_the_four_namespaces_exist_from_the_start(conn: Connection) -> None:
    found = ok(conn.request("GET", "/api/v1/namespaces"
                            + query(fieldSelector="status.phase=Active")))
    assert set(BUILTIN_NAMESPACES) <= {item["metadata"]["name"] for item in found["items"]}
    for name in BUILTIN_NAMESPACES:
        namespace = ok(conn.request("GET", f"/api/v1/namespaces/{name}"))
        assert namespace["status"]["phase"] == "Active"
        assert namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] == name


# --- finalizers, optimistic concurrency, generation ----------------------------------------

def test_finalizer_holds_a_deleted_object_until_removed(server: Server,
                                                        conn: Connection) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    created = ok(conn.request("POST", path, {
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {"a": "1"}}),
        201)
    deleting = ok(conn.request("DELETE", f"{path}/held"))
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["finalizers"] == ["example.com/hold"]
    still = ok(conn.request("GET", f"{path}/held"))
    assert still["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]
    assert still["metadata"]["uid"] == created["metadata"]["uid"]
    assert still["data"] == {"a": "1"}

    ok(conn.request("PATCH", f"{path}/held", {"metadata": {"finalizers": None}},
                    headers=MERGE))
    gone = conn.request("GET", f"{path}/held")
    assert gone.status == 404, gone.body

    watch = path + query(watch="1", resourceVersion=created["metadata"]["resourceVersion"],
                         fieldSelector="metadata.name=held")
    with stream(server, watch) as response:
        assert response.status == 200
        events = read_events(response, lambda seen: any(e["type"] == "DELETED" for e in seen))
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]
    assert events[1]["object"]["metadata"]["uid"] == created["metadata"]["uid"]


@pytest.mark.parametrize("headers", [MERGE, STRATEGIC], ids=["merge", "strategic"])
def test_patch_with_a_stale_resource_version_conflicts(conn: Connection,
                                                       headers: dict[str, str]) -> None:
    name = f"occ-{headers['Content-Type'].split('/')[1].split('-')[0]}"
    path = f"/api/v1/namespaces/default/configmaps/{name}"
    created = ok(conn.request("POST", "/api/v1/namespaces/default/configmaps",
                              {"metadata": {"name": name}, "data": {"a": "1"}}), 201)
    stale = created["metadata"]["resourceVersion"]
    current = ok(conn.request("PATCH", path, {"data": {"a": "2"}}, headers=headers))
    assert current["metadata"]["resourceVersion"] != stale

    reply = conn.request("PATCH", path, {"metadata": {"resourceVersion": stale},
                                         "data": {"a": "3"}}, headers=headers)
    assert reply.status == 409, reply.body
    status = reply.json()
    assert (status["reason"], status["code"]) == ("Conflict", 409)
    assert status["message"] == (
        f'Operation cannot be fulfilled on configmaps "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again")
    after = ok(conn.request("GET", path))
    assert after["data"] == {"a": "2"}
    assert after["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]

    fresh = ok(conn.request("PATCH", path, {"metadata": {"resourceVersion": after["metadata"][
        "resourceVersion"]}, "data": {"a": "3"}}, headers=headers))
    assert fresh["data"] == {"a": "3"}


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"metadata": {"name": name, "labels": labels}, "spec": {
        "replicas": 0, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels},
                     "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


GENERATION_CASES = {
    "label": ({"metadata": {"labels": {"extra": "yes"}}}, 1),
    "annotation": ({"metadata": {"annotations": {"note": "hello"}}}, 1),
    "same-spec": ({"spec": {"replicas": 0}}, 1),
    "min-ready-seconds": ({"spec": {"minReadySeconds": 5}}, 2),
    "replicas": ({"spec": {"replicas": 2}}, 2),
    "template-image": ({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.28"}]}}}}, 2),
    "template-label": ({"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}}, 2),
    "paused": ({"spec": {"paused": True}}, 2),
}


@pytest.mark.parametrize(("patch", "generation"), GENERATION_CASES.values(),
                         ids=GENERATION_CASES.keys())
def test_generation_counts_spec_changes_only(conn: Connection, request: pytest.FixtureRequest,
                                             patch: dict[str, Any], generation: int) -> None:
    name = "gen-" + request.node.callspec.id
    path = "/apis/apps/v1/namespaces/default/deployments"
    created = ok(conn.request("POST", path, deployment(name)), 201)
    assert created["metadata"]["generation"] == 1
    patched = ok(conn.request("PATCH", f"{path}/{name}", patch, headers=STRATEGIC))
    assert patched["metadata"]["generation"] == generation
    assert ok(conn.request("GET", f"{path}/{name}"))["metadata"]["generation"] == generation


# --- legacy apps versions ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Legacy:
    group_version: str
    kind: str

    @property
    def plural(self) -> str:
        return self.kind.lower() + "s"

    @property
    def name(self) -> str:
        return f"{self.group_version.split('/')[1]}-{self.kind.lower()}"

    def path(self, version: str | None = None, name: str = "") -> str:
        group_version = version or self.group_version
        return (f"/apis/{group_version}/namespaces/default/{self.plural}"
                + (f"/{name}" if name else ""))

    def body(self) -> dict[str, Any]:
        labels = {"app": self.name}
        spec: dict[str, Any] = {
            "replicas": 0, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1.11"}]}}}
        if self.kind == "StatefulSet":
            spec["serviceName"] = self.name
        return {"apiVersion": self.group_version, "kind": self.kind,
                "metadata": {"name": self.name}, "spec": spec}


LEGACY = [Legacy("apps/v1beta2", "StatefulSet"), Legacy("apps/v1beta2", "Deployment"),
          Legacy("apps/v1beta1", "Deployment"), Legacy("apps/v1beta1", "StatefulSet")]
LEGACY_IDS = [f"{legacy.group_version}-{legacy.kind}" for legacy in LEGACY]


def check_warning(headers: http.client.HTTPMessage, group_version: str) -> None:
    every = headers.get_all("Warning") or []
    # one deprecation warning (a StatefulSet also gets its apply-time networking warning)
    warnings = [w for w in every if "removed upstream" in w]
    assert len(warnings) == 1, every
    assert warnings[0].startswith('299 - "'), warnings
    assert group_version in warnings[0] and "1.16" in warnings[0], warnings
    assert re.search(r"\bapps/v1(?!beta)\b", warnings[0]), warnings  # the version to use


@pytest.fixture(scope="module")
def legacy_objects(server: Server) -> dict[str, Reply]:
    """Each legacy kind created once through its own URL: test id -> the create's reply."""
    conn = server.connect()
    try:
        return {ident: conn.request("POST", legacy.path(), legacy.body())
                for ident, legacy in zip(LEGACY_IDS, LEGACY, strict=True)}
    finally:
        conn.close()


@pytest.mark.parametrize("legacy", LEGACY, ids=LEGACY_IDS)
def test_legacy_version_is_stored_as_apps_v1_and_served_as_asked(
        conn: Connection, legacy_objects: dict[str, Reply], legacy: Legacy,
        request: pytest.FixtureRequest) -> None:
    created = legacy_objects[request.node.callspec.id]
    body = ok(created, 201)
    assert (body["apiVersion"], body["kind"]) == (legacy.group_version, legacy.kind)
    check_warning(created.headers, legacy.group_version)

    stored = conn.request("GET", legacy.path("apps/v1", legacy.name))
    current = ok(stored)
    assert (current["apiVersion"], current["kind"]) == ("apps/v1", legacy.kind)
    assert current["metadata"]["uid"] == body["metadata"]["uid"]
    assert current["spec"]["selector"] == {"matchLabels": {"app": legacy.name}}
    assert stored.headers.get_all("Warning") is None

    again = conn.request("GET", legacy.path(name=legacy.name))
    served = ok(again)
    assert (served["apiVersion"], served["kind"]) == (legacy.group_version, legacy.kind)
    assert served["metadata"]["uid"] == current["metadata"]["uid"]  # the same stored object
    # (its controller may have written its status between the two reads)
    assert int(served["metadata"]["resourceVersion"]) >= int(current["metadata"]["resourceVersion"])
    check_warning(again.headers, legacy.group_version)

    listed = ok(conn.request("GET", legacy.path()))
    assert (listed["apiVersion"], listed["kind"]) == (legacy.group_version, f"{legacy.kind}List")
    assert legacy.name in {item["metadata"]["name"] for item in listed["items"]}
    for item in listed["items"]:
        assert item.get("apiVersion", legacy.group_version) == legacy.group_version


WATCH = "WATCH"  # a GET with watch=1 whose headers are read as soon as they arrive
WARNING_REQUESTS: dict[str, tuple[str, str, str, Any, dict[str, str], int]] = {
    # id -> (group version, method, path after the namespace, body, headers, status)
    f"{gv}-{what}": (gv, method, suffix, body, headers, status)
    for gv in ("apps/v1beta1", "apps/v1beta2")
    for what, method, suffix, body, headers, status in (
        ("list", "GET", "deployments", None, {}, 200),
        ("list-statefulsets", "GET", "statefulsets", None, {}, 200),
        ("watch", WATCH, "statefulsets?watch=1&timeoutSeconds=5", None, {}, 200),
        ("watch-from-the-future", WATCH, "deployments?watch=1&resourceVersion=99999999", None,
         {}, 200),
        ("get-missing", "GET", "deployments/missing", None, {}, 404),
        ("patch-missing", "PATCH", "statefulsets/missing", {"spec": {"replicas": 1}}, MERGE,
         404),
        ("delete-missing", "DELETE", "deployments/missing", None, {}, 404),
        ("create-invalid", "POST", "deployments",
         {"apiVersion": gv, "kind": "Deployment", "metadata": {"name": "Bad_Name"},
          "spec": {}}, {}, 422),
        ("bad-field-selector", "GET", "deployments?fieldSelector=foo%3Dbar", None, {}, 400),
    )
}


@pytest.mark.parametrize(("group_version", "method", "suffix", "body", "headers", "status"),
                         WARNING_REQUESTS.values(), ids=WARNING_REQUESTS.keys())
def test_every_legacy_answer_carries_the_warning(server: Server, conn: Connection,
                                                 group_version: str, method: str, suffix: str,
                                                 body: Any, headers: dict[str, str],
                                                 status: int) -> None:
    path = f"/apis/{group_version}/namespaces/default/{suffix}"
    if method == WATCH:
        with stream(server, path) as response:  # the headers come before any event
            assert response.status == status
            check_warning(response.headers, group_version)
        return
    reply = conn.request(method, path, body, headers=headers)
    assert reply.status == status, reply.body[:500]
    check_warning(reply.headers, group_version)


# --- SIGINT --------------------------------------------------------------------------------

def wait_for_line(cluster: Cluster, text: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not any(text in line for line in cluster.output):
        assert time.monotonic() < deadline, f"no {text!r} in:\n" + "\n".join(cluster.output)
        time.sleep(0.02)


def test_sigint_stops_cleanly_and_keeps_the_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_cluster(data_dir, "--no-dns")
    conn = Server(first.url, data_dir).connect()
    try:
        created = ok(conn.request("POST", "/api/v1/namespaces/default/configmaps",
                                  {"metadata": {"name": "before-ctrl-c"}, "data": {"k": "v"}}),
                     201)
    finally:
        conn.close()
    assert first.stop(signal.SIGINT) == 0
    wait_for_line(first, "tinykube stopped")

    second = start_cluster(data_dir, "--no-dns")
    conn = Server(second.url, data_dir).connect()
    try:
        kept = ok(conn.request("GET", "/api/v1/namespaces/default/configmaps/before-ctrl-c"))
        assert kept["metadata"]["uid"] == created["metadata"]["uid"]
        assert kept["data"] == {"k": "v"}
    finally:
        conn.close()
        assert second.stop(signal.SIGINT) == 0
