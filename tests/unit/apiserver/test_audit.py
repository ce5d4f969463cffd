"""The audit policy as kube's checker reads it (a table of rules against requests), and the
Events the log writes at each level."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tinykube.apiserver import audit
from tinykube.apiserver.rbac import User
from tinykube.apiserver.request_info import Attributes, resolve

ALICE = User("alice", ("devs", "system:authenticated"))
PODS = resolve("GET", "/api/v1/namespaces/default/pods", {})
POD_LOG = resolve("GET", "/api/v1/namespaces/default/pods/web/log", {})
SCALE = resolve("PUT", "/apis/apps/v1/namespaces/ns/deployments/web/scale", {})
SECRET = resolve("GET", "/api/v1/namespaces/default/secrets/db", {})
NODES = resolve("GET", "/api/v1/nodes", {})
HEALTH = resolve("GET", "/healthz/etcd", {})

RULES: dict[str, tuple[dict[str, Any], User | None, Attributes, bool]] = {
    "empty rule matches all": ({}, ALICE, PODS, True),
    "user": ({"users": ["alice"]}, ALICE, PODS, True),
    "other user": ({"users": ["bob"]}, ALICE, PODS, False),
    "no user (failed authentication)": ({"users": ["alice"]}, None, PODS, False),
    "group": ({"userGroups": ["devs"]}, ALICE, PODS, True),
    "other group": ({"userGroups": ["ops"]}, ALICE, PODS, False),
    "verb": ({"verbs": ["list", "watch"]}, ALICE, PODS, True),
    "other verb": ({"verbs": ["get"]}, ALICE, PODS, False),
    "core group resource": ({"resources": [{"group": "", "resources": ["pods"]}]},
                            ALICE, PODS, True),
    "a whole group": ({"resources": [{"group": ""}]}, ALICE, SECRET, True),
    "the subresource is not the resource": (
        {"resources": [{"group": "", "resources": ["pods"]}]}, ALICE, POD_LOG, False),
    "res/sub": ({"resources": [{"group": "", "resources": ["pods/log"]}]}, ALICE, POD_LOG, True),
    "res/*": ({"resources": [{"group": "", "resources": ["pods/*"]}]}, ALICE, POD_LOG, True),
    "*/sub": ({"resources": [{"group": "apps", "resources": ["*/scale"]}]}, ALICE, SCALE, True),
    "other group's resource": ({"resources": [{"group": "apps", "resources": ["pods"]}]},
                               ALICE, PODS, False),
    "resourceNames": ({"resources": [{"group": "", "resources": ["secrets"],
                                      "resourceNames": ["db"]}]}, ALICE, SECRET, True),
    "other resourceNames": ({"resources": [{"group": "", "resources": ["secrets"],
                                            "resourceNames": ["x"]}]}, ALICE, SECRET, False),
    "namespace": ({"namespaces": ["default"]}, ALICE, PODS, True),
    "cluster scope is the empty namespace": ({"namespaces": [""]}, ALICE, NODES, True),
    "namespaces never match non-resource URLs": ({"namespaces": ["default"]}, ALICE, HEALTH,
                                                 False),
    "nonResourceURLs prefix": ({"nonResourceURLs": ["/healthz*"]}, ALICE, HEALTH, True),
    "nonResourceURLs exact": ({"nonResourceURLs": ["/healthz"]}, ALICE, HEALTH, False),
    "nonResourceURLs never match resources": ({"nonResourceURLs": ["*"]}, ALICE, PODS, False),
}


@pytest.mark.parametrize("case", RULES, ids=list(RULES))
def test_rule_matches(case: str) -> None:
    rule, user, attrs, expected = RULES[case]
    assert audit.rule_matches(rule, user, attrs) is expected


POLICY = audit.parse_policy({
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "nonResourceURLs": ["/healthz*"]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}],
         "omitStages": ["ResponseStarted"]},
        {"level": "Request", "userGroups": ["devs"]}]})


@pytest.mark.parametrize(("attrs", "user", "level"), [
    pytest.param(HEALTH, ALICE, "None", id="first-rule"),
    pytest.param(SECRET, ALICE, "Metadata", id="secrets-metadata"),
    pytest.param(resolve("POST", "/api/v1/namespaces/default/configmaps", {}), ALICE,
                 "RequestResponse", id="configmaps"),
    pytest.param(PODS, ALICE, "Request", id="by-group"),
    pytest.param(PODS, User("bob"), "None", id="no-rule-is-none"),
])
def test_first_matching_rule_gives_the_level(attrs: Attributes, user: User,
                                              level: str) -> None:
    assert POLICY.decide(user, attrs)[0] == level


@pytest.mark.parametrize(("doc", "message"), [
    pytest.param({"rules": [{"level": "Everything"}]}, "rules[0].level", id="bad-level"),
    pytest.param({"rules": [{"level": "None", "nonResourceURLs": ["/x"],
                             "resources": [{"group": ""}]}]},
                 "cannot apply to both", id="both-kinds"),
    pytest.param({"rules": [], "omitStages": ["Later"]}, "omitStages", id="bad-stage"),
    pytest.param({"kind": "Policy"}, "rules", id="no-rules"),
])
def test_bad_policies_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(audit.PolicyError) as refused:
        audit.parse_policy(doc)
    assert message in str(refused.value)


NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_at_each_level(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "logs" / "audit.log", POLICY)
    create = audit.Request("/api/v1/namespaces/default/configmaps", "127.0.0.1", "kubectl/v1",
                           NOW, user=ALICE, allowed=True,
                           attrs=resolve("POST", "/api/v1/namespaces/default/configmaps", {}))
    log.received(create, NOW)  # omitted by the policy's omitStages
    body = b'{"kind":"ConfigMap","metadata":{"name":"c","managedFields":[{}]}}'
    log.completed(create, 201, NOW, request_body=body, response_body=body)
    secret = audit.Request("/api/v1/namespaces/default/secrets/db", "127.0.0.1", "", NOW,
                           user=ALICE, allowed=False, attrs=SECRET)
    log.completed(secret, 403, NOW, request_body=None, response_body=json.dumps({
        "kind": "Status", "status": "Failure", "message": "no", "reason": "Forbidden",
        "code": 403}).encode())
    health = audit.Request("/healthz/etcd", "127.0.0.1", "", NOW, user=ALICE, attrs=HEALTH)
    log.completed(health, 200, NOW, request_body=None, response_body=b"ok")
    log.close()
    first, second = events(tmp_path / "logs" / "audit.log")
    assert first == {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": create.audit_id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/configmaps", "verb": "create",
        "user": {"username": "alice", "groups": ["devs", "system:authenticated"]},
        "sourceIPs": ["127.0.0.1"], "userAgent": "kubectl/v1",
        "objectRef": {"resource": "configmaps", "namespace": "default", "name": "c",
                      "apiVersion": "v1"},
        "requestReceivedTimestamp": "2026-01-02T03:04:05.678901Z",
        "stageTimestamp": "2026-01-02T03:04:05.678901Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": json.loads(body), "responseObject": json.loads(body)}
    assert second["level"] == "Metadata" and "requestObject" not in second
    assert second["responseStatus"] == {"metadata": {}, "status": "Failure", "message": "no",
                                        "reason": "Forbidden", "code": 403}
    assert second["annotations"] == {"authorization.k8s.io/decision": "forbid"}
    assert (tmp_path / "logs" / "audit.log").stat().st_mode & 0o077 == 0


def test_a_failed_authentication_is_response_started_without_a_user(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "audit.log", audit.load_policy(None))
    log.completed(audit.Request("/api/v1/pods", "127.0.0.1", "curl", NOW,
                                attrs=resolve("GET", "/api/v1/pods", {})),
                  401, NOW, request_body=None, response_body=None)
    log.close()
    (event,) = events(tmp_path / "audit.log")
    assert (event["stage"], event["user"], event["level"]) == ("ResponseStarted", {}, "Metadata")
    assert event["responseStatus"]["code"] == 401 and "annotations" not in event


def test_admission_annotations_by_level(tmp_path: Path) -> None:
    """kube's AddAnnotation(WithLevel): qualified `prefix/name` keys, the first value kept, and
    an annotation written only in events at its level or above."""
    log = audit.AuditLog(tmp_path / "audit.log", audit.parse_policy({"rules": [
        {"level": "Request", "resources": [{"group": "", "resources": ["configmaps"]}]},
        {"level": "Metadata"}]}))
    assert audit.annotate("a.example.com/k", "v")  # no request being served: nothing to do
    written = {}
    for what, attrs in (("configmaps", resolve("POST", "/api/v1/namespaces/d/configmaps", {})),
                        ("secrets", resolve("POST", "/api/v1/namespaces/d/secrets", {}))):
        req = audit.Request("/api/v1/namespaces/d/" + what, "127.0.0.1", "", NOW, user=ALICE,
                            attrs=attrs)
        token = req.collecting()
        try:
            assert audit.annotate("a.example.com/k", "first")
            assert audit.annotate("a.example.com/k", "first")
            assert not audit.annotate("a.example.com/k", "second")
            assert not audit.annotate("a.example.com/not/qualified", "x")
            assert not audit.annotate("no-prefix", "x")
            assert not audit.annotate("a.example.com/bad key", "x")
            assert audit.annotate("patch.example.com/round_0_index_0", "[]", level="Request")
        finally:
            req.reset(token)
        log.completed(req, 201, NOW, request_body=None, response_body=None)
        written[what] = events(tmp_path / "audit.log")[-1]["annotations"]
    log.close()
    assert written["configmaps"] == {"a.example.com/k": "first",
                                     "patch.example.com/round_0_index_0": "[]"}
    assert written["secrets"] == {"a.example.com/k": "first"}


def test_a_create_names_its_object_from_the_body_at_metadata_level(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "audit.log", audit.load_policy(None))  # all at Metadata
    attrs = resolve("POST", "/apis/apps/v1/namespaces/web/deployments", {})
    for body in (b'{"metadata":{"name":"d","uid":"u-1"}}', b'{"metadata":{"generateName":"d-"}}',
                 b"not json"):
        req = audit.Request("/apis/apps/v1/namespaces/web/deployments", "127.0.0.1", "", NOW,
                            user=ALICE, attrs=attrs)
        log.completed(req, 201, NOW, request_body=body, response_body=None)
    log.close()
    refs = [e["objectRef"] for e in events(tmp_path / "audit.log")]
    base = {"resource": "deployments", "namespace": "web", "apiGroup": "apps",
            "apiVersion": "v1"}
    assert refs == [{"resource": "deployments", "namespace": "web", "name": "d", "uid": "u-1",
                     "apiGroup": "apps", "apiVersion": "v1"}, base, base]
    assert all("requestObject" not in e for e in events(tmp_path / "audit.log"))
