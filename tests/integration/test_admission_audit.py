"""Admission's annotations in the audit log, read back from the file `tinykube up
--audit-log` writes while kubectl creates objects.

- A ValidatingAdmissionPolicy's `auditAnnotations` are in the write's ResponseComplete event as
  `POLICY/KEY`, and a binding with the Audit action adds kube's
  `validation.policy.admission.k8s.io/validation_failure` (a JSON list, Go's encoding: `<` is
  `\\u003c`); the write goes through. Under Deny the write is refused and the annotation is
  still written (kube's audit handler records annotations whatever the plugin decided).
- A validating and a mutating webhook's answers' `auditAnnotations` are written as
  `WEBHOOK/KEY`; a key that is not a qualified name is dropped, as kube drops it. The mutating
  call is annotated `mutation.webhook.admission.k8s.io/round_0_index_0` and its patch
  `patch.webhook.admission.k8s.io/round_0_index_0` (Request level), and a validating webhook
  that is down under `failurePolicy: Ignore` `failed-open.validating.webhook...`.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster
from tests.webhook_server import WebhookServer, allow, json_patch

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = Path(tmp_path_factory.mktemp("admission-audit"))
    policy = base / "policy.yaml"  # the ConfigMaps' bodies name them in their events
    policy.write_text(yaml.safe_dump({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [{"level": "Request", "resources": [{"group": "",
                                                      "resources": ["configmaps"]}]},
                  {"level": "Metadata"}]}))
    cluster = start_cluster(base / "data", "--audit-log", str(base / "audit.log"),
                            "--audit-policy-file", str(policy))
    cluster.audit_log = base / "audit.log"  # type: ignore[attr-defined]
    yield cluster
    cluster.stop()


@pytest.fixture
def kctl(running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], running.kubeconfig, cache)


def _completed(running: Cluster, verb: str, resource: str, name: str) -> Obj:
    """The last ResponseComplete event of `verb` on `resource` named `name`."""
    path: Path = running.audit_log  # type: ignore[attr-defined]
    found = [e for e in map(json.loads, path.read_text().splitlines())
             if e["stage"] == "ResponseComplete" and e["verb"] == verb
             and e.get("objectRef", {}).get("resource") == resource
             and (e.get("requestObject") or {}).get("metadata", {}).get("name") == name]
    assert found, f"no {verb} {resource} {name} in the audit log"
    return found[-1]


def _configmap(name: str, **labels: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "labels": labels},
                           "data": {"size": str(len(name))}})


def _policy(action: str) -> str:
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
              "resources": ["configmaps"]}]
    return yaml.safe_dump_all([
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "audited.example.com"},
         "spec": {"matchConstraints": {"resourceRules": rules,
                                       "objectSelector": {"matchLabels": {"audited": "yes"}}},
                  "validations": [{"expression": "object.metadata.name.size() > 2"},
                                  {"expression": "object.metadata.name.size() <= 5",
                                   "message": "names of <= 5 characters only"}],
                  "auditAnnotations": [
                      {"key": "name-length",
                       "valueExpression": "string(object.metadata.name.size())"},
                      {"key": "absent", "valueExpression": "null"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": "audited-binding.example.com"},
         "spec": {"policyName": "audited.example.com", "validationActions": [action]}}])


def test_policy_audit_annotations_and_audit_action(kctl: Kubectl, running: Cluster) -> None:
    kctl("apply", "-f", "-", input=_policy("Audit"))
    try:
        kctl("create", "-f", "-", input=_configmap("audited-long", audited="yes"))
        event = _completed(running, "create", "configmaps", "audited-long")
        assert event["responseStatus"]["code"] == 201
        annotations = event["annotations"]
        assert annotations["audited.example.com/name-length"] == "12"
        assert "audited.example.com/absent" not in annotations
        assert annotations["validation.policy.admission.k8s.io/validation_failure"] == (
            '[{"message":"names of \\u003c= 5 characters only",'
            '"policy":"audited.example.com","binding":"audited-binding.example.com",'
            '"expressionIndex":1,"validationActions":["Audit"]}]')
        assert json.loads(annotations[
            "validation.policy.admission.k8s.io/validation_failure"])[0]["message"] == \
            "names of <= 5 characters only"

        kctl("create", "-f", "-", input=_configmap("okay", audited="yes"))
        passed = _completed(running, "create", "configmaps", "okay")["annotations"]
        assert passed["audited.example.com/name-length"] == "4"
        assert "validation.policy.admission.k8s.io/validation_failure" not in passed
        kctl("create", "-f", "-", input=_configmap("unaudited-x"))
        assert not any("audited.example.com" in key for key in _completed(
            running, "create", "configmaps", "unaudited-x")["annotations"])

        kctl("apply", "-f", "-", input=_policy("Deny"))
        refused = kctl.run("create", "-f", "-", check=False,
                           input=_configmap("denied-long", audited="yes"))
        assert "names of <= 5 characters only" in refused.stderr, refused.stderr
        denied = _completed(running, "create", "configmaps", "denied-long")
        assert denied["responseStatus"]["code"] == 422
        assert denied["annotations"]["audited.example.com/name-length"] == "11"
        assert "validation.policy.admission.k8s.io/validation_failure" not in \
            denied["annotations"]
    finally:
        kctl("delete", "-f", "-", "--ignore-not-found", input=_policy("Deny"))
        kctl("delete", "configmap", "audited-long", "okay", "unaudited-x",
             "--ignore-not-found")


def _webhooks(kind: str, name: str, url: str, ca_bundle: str, **webhook: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name},
        "webhooks": [{"name": f"{name}.example.com",
                      "clientConfig": {"url": url, "caBundle": ca_bundle},
                      "rules": [{"operations": ["CREATE"], "apiGroups": [""],
                                 "apiVersions": ["v1"], "resources": ["configmaps"]}],
                      "objectSelector": {"matchLabels": {"hooked": "yes"}},
                      "sideEffects": "None", "admissionReviewVersions": ["v1"], **webhook}]})


def _annotating(review: Obj) -> Obj:
    name = review["request"]["object"]["metadata"]["name"]
    return allow(review, auditAnnotations={"seen": name, "not/qualified": "dropped"})


PATCH = [{"value": "<yes>", "path": "/data/patched", "op": "add"}]


def _patching(review: Obj) -> Obj:
    name = review["request"]["object"]["metadata"]["name"]
    return allow(review, patchType="JSONPatch", patch=json_patch(PATCH),
                 auditAnnotations={"seen": name, "not/qualified": "dropped"})


def _refusing(review: Obj) -> Obj:
    return allow(review, allowed=False, auditAnnotations={"verdict": "refused"},
                 status={"code": 403, "message": "no"})


def test_webhook_audit_annotations(kctl: Kubectl, running: Cluster) -> None:
    with WebhookServer({"/annotate": _annotating, "/patch": _patching,
                        "/refuse": _refusing}) as server:
        configs = (_webhooks("MutatingWebhookConfiguration", "audit-mutate",
                             server.url("/patch"), server.ca_bundle) + "---\n" +
                   _webhooks("ValidatingWebhookConfiguration", "audit-validate",
                             server.url("/annotate"), server.ca_bundle))
        kctl("apply", "-f", "-", input=configs)
        try:
            kctl("create", "-f", "-", input=_configmap("hooked-cm", hooked="yes"))
            annotations = _completed(running, "create", "configmaps", "hooked-cm")[
                "annotations"]
            assert annotations["audit-mutate.example.com/seen"] == "hooked-cm"
            assert annotations["audit-validate.example.com/seen"] == "hooked-cm"
            assert not any(key.endswith("/not/qualified") for key in annotations)
            assert annotations["mutation.webhook.admission.k8s.io/round_0_index_0"] == (
                '{"configuration":"audit-mutate","webhook":"audit-mutate.example.com",'
                '"mutated":true}')
            assert annotations["patch.webhook.admission.k8s.io/round_0_index_0"] == (
                '{"configuration":"audit-mutate","webhook":"audit-mutate.example.com",'
                '"patch":[{"op":"add","path":"/data/patched",'
                '"value":"\\u003cyes\\u003e"}],"patchType":"JSONPatch"}')

            kctl("apply", "-f", "-", input=_webhooks(
                "ValidatingWebhookConfiguration", "audit-validate", server.url("/refuse"),
                server.ca_bundle))
            refused = kctl.run("create", "-f", "-", check=False,
                               input=_configmap("hooked-refused", hooked="yes"))
            assert refused.returncode == 1
            denied = _completed(running, "create", "configmaps", "hooked-refused")
            assert denied["responseStatus"]["code"] == 403
            assert denied["annotations"]["audit-validate.example.com/verdict"] == "refused"
        finally:
            kctl("delete", "-f", "-", "--ignore-not-found", input=configs)
            kctl("delete", "configmap", "hooked-cm", "--ignore-not-found")


def test_a_webhook_failing_open_is_annotated(kctl: Kubectl, running: Cluster) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ca = base64.b64encode(b"not used: nothing answers").decode()
    config = _webhooks("ValidatingWebhookConfiguration", "audit-down",
                       f"https://127.0.0.1:{port}/x", ca, failurePolicy="Ignore")
    kctl("apply", "-f", "-", input=config)
    try:
        kctl("create", "-f", "-", input=_configmap("hooked-open", hooked="yes"))
        annotations = _completed(running, "create", "configmaps", "hooked-open")["annotations"]
        assert annotations["failed-open.validating.webhook.admission.k8s.io/round_0_index_0"] \
            == "true"
    finally:
        kctl("delete", "-f", "-", "--ignore-not-found", input=config)
        kctl("delete", "configmap", "hooked-open", "--ignore-not-found")
