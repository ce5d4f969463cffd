"""Admission webhooks end to end: real HTTPS webhook servers (tests/webhook_server.py) called
by `tinykube up`'s API server while both real kubectls create, update and delete objects.

A validating webhook refuses a pod with kube's text, a mutating one adds a label with a
JSONPatch and sends a warning, `failurePolicy: Ignore` lets writes through while the webhook
is down and `Fail` refuses them with kube's message, and a `clientConfig.service` webhook is
reached through its Service's endpoints with the name `<service>.<namespace>.svc` verified.
"""

from __future__ import annotations

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
    cluster = start_cluster(Path(tmp_path_factory.mktemp("webhooks")) / "data")
    yield cluster
    cluster.stop()


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kube(request: pytest.FixtureRequest, running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    return Kubectl(request.param, running.kubeconfig, cache)


@pytest.fixture
def kctl(running: Cluster, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubecache-kctl"
    cache.mkdir()
    return Kubectl(KUBECTLS[0][1], running.kubeconfig, cache)


def _configuration(kind: str, name: str, client_config: Obj, resources: list[str],
                   **webhook: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name},
        "webhooks": [{"name": f"{name}.example.com", "clientConfig": client_config,
                      "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                                 "apiVersions": ["v1"], "resources": resources}],
                      "sideEffects": "None", "admissionReviewVersions": ["v1"],
                      **webhook}]})


def _pod(name: str, labels: dict[str, str] | None = None) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "labels": labels or {}},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refuse_bad(review: Obj) -> Obj:
    name = review["request"]["object"]["metadata"]["name"]
    if name.startswith("bad"):
        return allow(review, allowed=False, status={
            "code": 403, "reason": "Forbidden", "message": f"pods named {name} are not allowed"})
    return allow(review)


def test_validating_webhook_denies_a_pod(kube: Kubectl) -> None:
    name = f"deny-{len(kube.binary)}"
    with WebhookServer({"/validate": _refuse_bad}) as server:
        kube("apply", "-f", "-", input=_configuration(
            "ValidatingWebhookConfiguration", name,
            {"url": server.url("/validate"), "caBundle": server.ca_bundle}, ["pods"]))
        try:
            refused = kube.run("create", "-f", "-", input=_pod("bad-one"), check=False)
            assert refused.returncode == 1
            assert refused.stderr == (
                'Error from server (Forbidden): error when creating "STDIN": admission webhook '
                f'"{name}.example.com" denied the request: pods named bad-one are not allowed\n')
            kube("create", "-f", "-", input=_pod(f"good-{name}"))
            review = server.requests["/validate"][-1]
            request = review["request"]
            assert (review["apiVersion"], request["operation"], request["resource"],
                    request["namespace"], request["name"]) == (
                "admission.k8s.io/v1", "CREATE",
                {"group": "", "version": "v1", "resource": "pods"}, "default", f"good-{name}")
            # the validating phase sees the object as it will be stored: defaulted, with a uid
            assert request["object"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
            assert request["userInfo"]["username"] == "tinykube-admin"
        finally:
            kube("delete", "validatingwebhookconfiguration", name)
            kube("delete", "pod", f"good-{name}", "--wait=false", check=False)


def _add_label(review: Obj) -> Obj:
    labels = review["request"]["object"]["metadata"].get("labels")
    ops = [{"op": "add", "path": "/metadata/labels", "value": {}}] if not labels else []
    ops.append({"op": "add", "path": "/metadata/labels/mutated-by", "value": "webhook"})
    return allow(review, patchType="JSONPatch", patch=json_patch(ops),
                 warnings=["the webhook added a label"])


def test_mutating_webhook_adds_a_label(kube: Kubectl) -> None:
    name = f"label-{len(kube.binary)}"
    with WebhookServer({"/mutate": _add_label}) as server:
        kube("apply", "-f", "-", input=_configuration(
            "MutatingWebhookConfiguration", name,
            {"url": server.url("/mutate"), "caBundle": server.ca_bundle}, ["pods"],
            objectSelector={"matchLabels": {"test": name}}))
        try:
            created = kube.run("create", "-f", "-", input=_pod(name, {"test": name}))
            assert "Warning: the webhook added a label" in created.stderr
            labels = json.loads(kube("get", "pod", name, "-o", "jsonpath={.metadata.labels}"))
            assert labels == {"test": name, "mutated-by": "webhook"}
            kube("create", "-f", "-", input=_pod(f"{name}-unselected"))
            assert len(server.requests["/mutate"]) == 1  # the objectSelector left it out
            out = kube("get", "mutatingwebhookconfiguration", name, "-o", "json")
            stored = json.loads(out)["webhooks"][0]
            assert (stored["failurePolicy"], stored["timeoutSeconds"],
                    stored["reinvocationPolicy"], stored["matchPolicy"]) == (
                "Fail", 10, "Never", "Equivalent")
        finally:
            kube("delete", "mutatingwebhookconfiguration", name)
            kube("delete", "pod", name, f"{name}-unselected", "--wait=false", check=False)


def _configmap(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name}, "data": {"k": "v"}})


def test_failure_policy_with_the_webhook_down(kctl: Kubectl) -> None:
    port = _closed_port()
    url = f"https://127.0.0.1:{port}/down"
    kctl("apply", "-f", "-", input=_configuration(
        "ValidatingWebhookConfiguration", "ignore", {"url": url}, ["configmaps"],
        failurePolicy="Ignore"))
    try:
        kctl("create", "-f", "-", input=_configmap("passes-ignore"))
        kctl("apply", "-f", "-", input=_configuration(
            "ValidatingWebhookConfiguration", "fail", {"url": url}, ["configmaps"],
            failurePolicy="Fail", timeoutSeconds=3))
        refused = kctl.run("create", "-f", "-", input=_configmap("refused-fail"), check=False)
        assert refused.stderr == (
            'Error from server (InternalError): error when creating "STDIN": Internal error '
            'occurred: failed calling webhook "fail.example.com": failed to call webhook: '
            f'Post "{url}?timeout=3s": dial tcp 127.0.0.1:{port}: connect: connection '
            "refused\n")
        assert kctl.run("get", "configmap", "refused-fail", check=False).returncode == 1
    finally:
        kctl("delete", "validatingwebhookconfiguration", "ignore", "fail", "--ignore-not-found")
        kctl("delete", "configmap", "passes-ignore", "--ignore-not-found")


def test_unknown_authority_fails_closed(kctl: Kubectl) -> None:
    with WebhookServer({"/validate": allow}) as server:
        kctl("apply", "-f", "-", input=_configuration(
            "ValidatingWebhookConfiguration", "noca", {"url": server.url("/validate")},
            ["configmaps"]))
        try:
            refused = kctl.run("create", "-f", "-", input=_configmap("noca"), check=False)
            assert "x509: certificate signed by unknown authority" in refused.stderr
            assert not server.requests["/validate"]
        finally:
            kctl("delete", "validatingwebhookconfiguration", "noca")


def test_service_reference_and_delete(kctl: Kubectl) -> None:
    """A webhook named by its Service, reached at an endpoint; DELETE sends oldObject."""
    with WebhookServer({"/hooks": _refuse_delete}, dns_names=("hooks.default.svc",)) as server:
        kctl("apply", "-f", "-", input=yaml.safe_dump_all([
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hooks"},
             "spec": {"ports": [{"port": 443, "targetPort": server.port}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "hooks"},
             "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                          "ports": [{"port": server.port}]}]}]))
        config = yaml.safe_load(_configuration(
            "ValidatingWebhookConfiguration", "svc",
            {"service": {"namespace": "default", "name": "hooks", "path": "/hooks"},
             "caBundle": server.ca_bundle}, ["configmaps"]))
        config["webhooks"][0]["rules"][0]["operations"] = ["DELETE"]
        kctl("apply", "-f", "-", input=yaml.safe_dump(config))
        try:
            kctl("create", "-f", "-", input=_configmap("kept"))
            refused = kctl.run("delete", "configmap", "kept", check=False)
            assert refused.stderr == (
                'Error from server (Forbidden): admission webhook "svc.example.com" denied '
                "the request: configmap kept may not be deleted\n")
            request = server.requests["/hooks"][-1]["request"]
            assert (request["operation"], request["object"],
                    request["oldObject"]["metadata"]["name"]) == ("DELETE", None, "kept")
        finally:
            kctl("delete", "validatingwebhookconfiguration", "svc")
            kctl("delete", "configmap", "kept", "--ignore-not-found")
            kctl("delete", "service", "hooks")


def _refuse_delete(review: Obj) -> Obj:
    name = review["request"]["oldObject"]["metadata"]["name"]
    return allow(review, allowed=False, status={
        "code": 403, "reason": "Forbidden", "message": f"configmap {name} may not be deleted"})



def test_match_condition_type_error_is_refused_at_write(kctl: Kubectl) -> None:
    """A matchCondition that does not type-check (with every variable dyn) is refused with
    kube's text; nothing is stored."""
    expression = "object.metadata.name.startsWith(1)"
    refused = kctl.run("create", "-f", "-", check=False, input=_configuration(
        "ValidatingWebhookConfiguration", "typed", {"url": "https://127.0.0.1:1/x"},
        ["configmaps"], matchConditions=[{"name": "named", "expression": expression}]))
    assert refused.stderr == (
        'The ValidatingWebhookConfiguration "typed" is invalid: '
        f'webhooks[0].matchConditions[0].expression: Invalid value: "{expression}": '
        "compilation failed: ERROR: <input>:1:32: found no matching overload for 'startsWith' "
        "applied to 'dyn.(int)'\n"
        f" | {expression}\n"
        " | ...............................^\n")
    assert kctl.run("get", "validatingwebhookconfiguration", "typed",
                    check=False).returncode == 1
