"""List `resourceVersion` / `resourceVersionMatch` semantics against a real `tinykube up`.

The cluster keeps a watch history of 100 events (`--watch-history 100`). The module writes, in
namespace `rv`: nothing at OLD; then 110 updates elsewhere (OLD leaves the history); then
ConfigMaps `a` (data v1) and `b` at RV1; then `a` updated to v2, `b` deleted, `c` created. So:
- the state at RV1 is {a: v1, b}; the current one is {a: v2, c};
- an Exact read at OLD is 410, at RV1 it is the old state, beyond the store's version it is 504;
- NotOlderThan (or a bare resourceVersion without limit) reads the current state, and waits
  for a version not reached yet: 504 after 3 s (tests/unit/apiserver/test_list_versions.py
  shows the answer once a write reaches it);
- a bare resourceVersion with `limit` is the legacy exact match;
- the option combinations apimachinery forbids are 422/400 with kube-apiserver's wording.
Then the official `kubernetes` client does the same reads through its own API.
"""

from __future__ import annotations

import http.client
import re
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.conftest import Cluster, start_cluster
from tests.integration.api_http import Connection, Server

NS = "rv"
PATH = f"/api/v1/namespaces/{NS}/configmaps"
HISTORY = 100
TOO_LARGE_CAUSES = [{"reason": "ResourceVersionTooLarge",
                     "message": "Too large resource version"}]
INVALID = 'ListOptions.meta.k8s.io "" is invalid: '
ROOT_CA = "kube-root-ca.crt"  # every namespace gets one, from a controller


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("rv") / "data", "--no-dns",
                            "--watch-history", str(HISTORY))
    yield cluster
    assert cluster.stop() == 0


@pytest.fixture(scope="module")
def server(running: Cluster) -> Server:
    return Server(running.url, running.data_dir)


@pytest.fixture(scope="module")
def conn(server: Server) -> Iterator[Connection]:
    connection = server.connect()
    yield connection
    connection.close()


def ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.body[:1000]
    return reply.json()


def configmap(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"v": version}}


@pytest.fixture(scope="module")
def versions(conn: Connection) -> dict[str, int]:
    """OLD (compacted), RV1 (a: v1, b) and NOW (a: v2, c)."""
    ok(conn.request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}}), 201)
    churn = "/api/v1/namespaces/default/configmaps"
    old = int(ok(conn.request("POST", churn, configmap("churn", "0")), 201)["metadata"]
              ["resourceVersion"])
    for i in range(HISTORY + 10):
        ok(conn.request("PUT", f"{churn}/churn", configmap("churn", str(i))))
    ok(conn.request("POST", PATH, configmap("a", "v1")), 201)
    rv1 = int(ok(conn.request("POST", PATH, configmap("b", "v1")), 201)["metadata"]
              ["resourceVersion"])
    ok(conn.request("PUT", f"{PATH}/a", configmap("a", "v2")))
    ok(conn.request("DELETE", f"{PATH}/b"))
    now = int(ok(conn.request("POST", PATH, configmap("c", "v1")), 201)["metadata"]
              ["resourceVersion"])
    return {"OLD": old, "RV1": rv1, "NOW": now, "FUTURE": now + 1_000_000}


def state(page: dict[str, Any]) -> str:
    """`name:version` of the test's ConfigMaps (not the namespace's kube-root-ca.crt)."""
    return " ".join(f"{item['metadata']['name']}:{item['data']['v']}" for item in page["items"]
                    if item["metadata"]["name"] != ROOT_CA)


def url(template: str, versions: dict[str, int]) -> str:
    params = dict(urllib.parse.parse_qsl(template.format(**versions), keep_blank_values=True))
    return f"{PATH}?{urllib.parse.urlencode(params)}"


# query -> (state, list resourceVersion: "RV1", or "current" for at least NOW)
READ_CASES = {
    "unset-most-recent": ("", "a:v2 c:v1", "current"),
    "zero-any": ("resourceVersion=0", "a:v2 c:v1", "current"),
    "zero-not-older-than-any": ("resourceVersion=0&resourceVersionMatch=NotOlderThan",
                                "a:v2 c:v1", "current"),
    "not-older-than": ("resourceVersion={RV1}&resourceVersionMatch=NotOlderThan", "a:v2 c:v1",
                       "current"),
    "bare-version-is-not-older-than": ("resourceVersion={RV1}", "a:v2 c:v1", "current"),
    "not-older-than-compacted-is-current": (
        "resourceVersion={OLD}&resourceVersionMatch=NotOlderThan", "a:v2 c:v1", "current"),
    "exact": ("resourceVersion={RV1}&resourceVersionMatch=Exact", "a:v1 b:v1", "RV1"),
    "exact-with-limit": ("resourceVersion={RV1}&resourceVersionMatch=Exact&limit=10",
                         "a:v1 b:v1", "RV1"),
    "bare-version-with-limit-is-exact": ("resourceVersion={RV1}&limit=10", "a:v1 b:v1", "RV1"),
    "exact-now": ("resourceVersion={NOW}&resourceVersionMatch=Exact", "a:v2 c:v1", "NOW"),
    "zero-with-limit-is-any": ("resourceVersion=0&limit=10", "a:v2 c:v1", "current"),
}


@pytest.mark.parametrize(("query", "expected", "list_rv"), READ_CASES.values(),
                         ids=READ_CASES.keys())
def test_list_reads_the_state_asked_for(conn: Connection, versions: dict[str, int],
                                        query: str, expected: str, list_rv: str) -> None:
    page = ok(conn.request("GET", url(query, versions)))
    assert state(page) == expected
    got = int(page["metadata"]["resourceVersion"])
    if list_rv == "current":
        assert got >= versions["NOW"]
    else:
        assert got == versions[list_rv]


def test_legacy_exact_pages_stay_at_the_version(conn: Connection,
                                                versions: dict[str, int]) -> None:
    first = ok(conn.request("GET", url("resourceVersion={RV1}&limit=1", versions)))
    token = first["metadata"]["continue"]
    rest = ok(conn.request("GET", f"{PATH}?limit=1&continue={token}"))
    assert (state(first), state(rest)) == ("a:v1", "b:v1")
    assert {first["metadata"]["resourceVersion"], rest["metadata"]["resourceVersion"]} == {
        str(versions["RV1"])}


# query -> (code, reason, message pattern, details or None)
ERROR_CASES = {
    "exact-compacted": ("resourceVersion={OLD}&resourceVersionMatch=Exact", 410, "Expired",
                        re.escape("The resourceVersion for the provided list is too old."),
                        None),
    "legacy-exact-compacted": ("resourceVersion={OLD}&limit=5", 410, "Expired",
                               re.escape("The resourceVersion for the provided list is too old."),
                               None),
    "exact-future": ("resourceVersion={FUTURE}&resourceVersionMatch=Exact", 504, "Timeout",
                     r"Timeout: Too large resource version: {FUTURE}, current: \d+",
                     {"causes": TOO_LARGE_CAUSES}),
    "match-without-version": (
        "resourceVersionMatch=NotOlderThan", 422, "Invalid",
        re.escape(INVALID + "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                  "forbidden unless resourceVersion is provided"),
        {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [
            {"reason": "FieldValueForbidden", "message": "Forbidden: resourceVersionMatch is "
             "forbidden unless resourceVersion is provided", "field": "resourceVersionMatch"}]}),
    "exact-zero": ("resourceVersion=0&resourceVersionMatch=Exact", 422, "Invalid",
                   re.escape(INVALID + 'resourceVersionMatch: Forbidden: resourceVersionMatch '
                             '"exact" is forbidden for resourceVersion "0"'), None),
    "unknown-match": ("resourceVersion=5&resourceVersionMatch=Newest", 422, "Invalid",
                      re.escape(INVALID + 'resourceVersionMatch: Unsupported value: "Newest": '
                                'supported values: "Exact", "NotOlderThan", ""'), None),
    "send-initial-events-on-a-list": ("sendInitialEvents=true", 422, "Invalid",
                                      re.escape(INVALID + "sendInitialEvents: Forbidden: "
                                                "sendInitialEvents is forbidden for list"),
                                      None),
    "version-beside-continue": ("resourceVersion={RV1}&continue=x", 400, "BadRequest",
                                "specifying resource version is not allowed when using "
                                "continue", None),
    "match-beside-continue": (
        "resourceVersion={RV1}&resourceVersionMatch=Exact&continue=x", 422, "Invalid",
        re.escape(INVALID + "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                  "forbidden when continue is provided"), None),
}


@pytest.mark.parametrize(("query", "code", "reason", "message", "details"),
                         ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_list_refusals_are_kube_apiservers(conn: Connection, versions: dict[str, int],
                                           query: str, code: int, reason: str, message: str,
                                           details: dict[str, Any] | None) -> None:
    status = ok(conn.request("GET", url(query, versions)), code)
    assert (status["kind"], status["status"], status["code"], status["reason"]) == (
        "Status", "Failure", code, reason)
    assert re.fullmatch(message.format(**versions) if "{" in message else message,
                        status["message"]), status["message"]
    if details is not None:
        assert status["details"] == details


def test_not_older_than_a_version_not_reached_waits_then_504(
        conn: Connection, versions: dict[str, int]) -> None:
    started = time.monotonic()
    status = ok(conn.request("GET", url(
        "resourceVersion={FUTURE}&resourceVersionMatch=NotOlderThan", versions)), 504)
    waited = time.monotonic() - started
    assert 2.9 <= waited < 10, f"answered after {waited:.1f} s (kube-apiserver waits 3 s)"
    assert re.fullmatch(rf"Timeout: Too large resource version: {versions['FUTURE']}, "
                        r"current: \d+", status["message"])
    assert status["details"] == {"causes": TOO_LARGE_CAUSES, "retryAfterSeconds": 1}


def test_watch_list_of_a_version_not_reached_ends_with_504(server: Server,
                                                           versions: dict[str, int]) -> None:
    conn = server.connect()
    reply = conn.request("GET", url("watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                                    "&resourceVersionMatch=NotOlderThan"
                                    "&resourceVersion={FUTURE}", versions))
    conn.close()
    assert reply.status == 200  # kube-apiserver reports it as the stream's only event
    event = reply.json()
    assert event["type"] == "ERROR" and event["object"]["code"] == 504
    assert event["object"]["details"] == {"causes": TOO_LARGE_CAUSES, "retryAfterSeconds": 1}


@pytest.mark.usefixtures("versions")
def test_plain_watch_from_a_version_not_reached_waits_for_it(server: Server,
                                                             conn: Connection) -> None:
    """kube-apiserver keeps such a watch open and sends only the events after that version."""
    current = int(ok(conn.request("GET", PATH))["metadata"]["resourceVersion"])
    parsed = urllib.parse.urlsplit(server.url)
    assert parsed.hostname is not None and parsed.port is not None
    watch = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=30,
                                        context=server.ssl_context())
    watch.request("GET", f"{PATH}?watch=1&timeoutSeconds=5&resourceVersion={current + 2}",
                  headers={"Authorization": f"Bearer {server.token}"})
    response = watch.getresponse()
    assert response.status == 200
    created = [ok(conn.request("POST", PATH, configmap(f"w{i}", "v1")), 201) for i in range(3)]
    events = [orjson.loads(line) for line in response if line.strip()]  # ends after 5 s
    watch.close()
    after = [c["metadata"]["name"] for c in created
             if int(c["metadata"]["resourceVersion"]) > current + 2]
    assert [e["object"]["metadata"]["name"] for e in events] == after
    for i in range(3):
        ok(conn.request("DELETE", f"{PATH}/w{i}"))


# --- the official client ----------------------------------------------------------------


@pytest.fixture(scope="module")
def core(running: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(running.kubeconfig)))


CLIENT_CASES = {
    "exact": ({"resource_version": "{RV1}", "resource_version_match": "Exact"},
              "a:v1 b:v1", None),
    "not-older-than": ({"resource_version": "{RV1}", "resource_version_match": "NotOlderThan"},
                       "a:v2 c:v1", None),
    "exact-compacted": ({"resource_version": "{OLD}", "resource_version_match": "Exact"},
                        "", (410, "Expired")),
    "exact-future": ({"resource_version": "{FUTURE}", "resource_version_match": "Exact"}, "",
                     (504, "Timeout")),
    "exact-zero": ({"resource_version": "0", "resource_version_match": "Exact"}, "",
                   (422, "Invalid")),
}


@pytest.mark.parametrize(("kwargs", "expected", "error"), CLIENT_CASES.values(),
                         ids=CLIENT_CASES.keys())
def test_official_client_list_with_resource_version(
        core: client.CoreV1Api, versions: dict[str, int], kwargs: dict[str, str],
        expected: str, error: tuple[int, str] | None) -> None:
    args = {key: value.format(**versions) for key, value in kwargs.items()}
    if error is not None:
        with pytest.raises(ApiException) as raised:
            core.list_namespaced_config_map(NS, **args)
        assert raised.value.status == error[0]
        assert f'"reason":"{error[1]}"' in raised.value.body.replace(" ", "")
        return
    result = core.list_namespaced_config_map(NS, **args)
    assert " ".join(f"{cm.metadata.name}:{cm.data['v']}" for cm in result.items
                    if cm.metadata.name != ROOT_CA) == expected
