"""MutatingAdmissionPolicy through the real API server, over HTTP, with real HTTPS webhooks
(tests/webhook_server.py): policies run before the mutating webhooks, an IfNeeded policy runs
again after a webhook changed the object, ValidatingAdmissionPolicy judges the mutated object,
and the Status of a failing policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.unit.apiserver.harness import running_api
from tests.webhook_server import WebhookServer, allow, json_patch
from tinykube.api import resources

Obj = dict[str, Any]
ALPHA = "/apis/admissionregistration.k8s.io/v1alpha1"
V1 = "/apis/admissionregistration.k8s.io/v1"
CONFIGMAPS = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
               "resources": ["configmaps"]}]


@pytest.fixture(autouse=True)
def gate() -> Iterator[None]:
    """What `--feature-gates MutatingAdmissionPolicy=true` and the runtime-config do."""
    resources.serve_mutating_policies(True)
    yield
    resources.serve_mutating_policies(False)


async def _post(session: aiohttp.ClientSession, path: str, body: Obj) -> tuple[int, Obj]:
    async with session.post(path, json=body) as response:
        return response.status, await response.json()


async def _policy(session: aiohttp.ClientSession, name: str, expression: str,
                  **spec: Any) -> None:
    policy = {"metadata": {"name": name}, "spec": {
        "matchConstraints": {"resourceRules": CONFIGMAPS},
        "reinvocationPolicy": spec.pop("reinvocationPolicy", "Never"),
        "mutations": [{"patchType": "ApplyConfiguration",
                       "applyConfiguration": {"expression": expression}}], **spec}}
    status, body = await _post(session, f"{ALPHA}/mutatingadmissionpolicies", policy)
    assert status == 201, body
    status, body = await _post(session, f"{ALPHA}/mutatingadmissionpolicybindings", {
        "metadata": {"name": name}, "spec": {"policyName": name}})
    assert status == 201, body


def _hook_labeller(review: Obj) -> Obj:
    labels = review["request"]["object"]["metadata"].get("labels") or {}
    if "hook" in labels:
        return allow(review)
    return allow(review, patchType="JSONPatch", patch=json_patch(
        [{"op": "add", "path": "/metadata/labels/hook", "value": "yes"}]))


SEEN_HOOK = ("Object{metadata: Object.metadata{labels: {'seen-hook': "
             "has(object.metadata.labels) && 'hook' in object.metadata.labels ? 'yes' : 'no'}}}")


@pytest.mark.parametrize(("reinvocation", "seen"), [("IfNeeded", "yes"), ("Never", "no")])
async def test_policies_run_before_webhooks_and_again_if_needed(
        tmp_path: Path, reinvocation: str, seen: str) -> None:
    with WebhookServer({"/h": _hook_labeller}) as server:
        async with running_api(tmp_path, bootstrapped=True) as (session, _store):
            await _policy(session, "seen", SEEN_HOOK, reinvocationPolicy=reinvocation)
            status, body = await _post(session, f"{V1}/mutatingwebhookconfigurations", {
                "metadata": {"name": "m"}, "webhooks": [{
                    "name": "h.example.com", "rules": CONFIGMAPS, "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {"url": server.url("/h"), "caBundle": server.ca_bundle}}]})
            assert status == 201, body
            status, created = await _post(session, "/api/v1/namespaces/default/configmaps",
                                          {"metadata": {"name": "cm"}})
    assert status == 201, created
    sent = server.requests["/h"][0]["request"]["object"]["metadata"]["labels"]
    assert sent == {"seen-hook": "no"}  # the webhook saw the policy's mutation
    assert created["metadata"]["labels"] == {"seen-hook": seen, "hook": "yes"}


async def test_validating_policies_judge_the_mutated_object(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await _policy(session, "team", "Object{metadata: Object.metadata{labels: "
                                       "{'team': 'blue'}}}")
        status, body = await _post(session, f"{V1}/validatingadmissionpolicies", {
            "metadata": {"name": "needs-team"}, "spec": {
                "matchConstraints": {"resourceRules": CONFIGMAPS},
                "validations": [{"expression": "object.metadata.labels.team == 'blue'"}]}})
        assert status == 201, body
        status, body = await _post(session, f"{V1}/validatingadmissionpolicybindings", {
            "metadata": {"name": "needs-team"},
            "spec": {"policyName": "needs-team", "validationActions": ["Deny"]}})
        assert status == 201, body
        status, created = await _post(session, "/api/v1/namespaces/default/configmaps",
                                      {"metadata": {"name": "cm"}})
    assert status == 201, created
    assert created["metadata"]["labels"] == {"team": "blue"}


@pytest.mark.parametrize(("failure", "status"), [("Fail", 403), ("Ignore", 201)])
async def test_a_failing_policy(tmp_path: Path, failure: str, status: int) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await _policy(session, "broken", "Object{spec: Object.spec{x: 1}}",
                      failurePolicy=failure)
        got, body = await _post(session, "/api/v1/namespaces/default/configmaps",
                                {"metadata": {"name": "cm"}})
    assert got == status, body
    if status == 201:
        return
    message = ("policy 'broken' with binding 'broken' denied request: error applying patch: "
               "failed to convert patch object to typed object: .spec: field not declared in "
               "schema")
    assert (body["reason"], body["message"]) == ("Invalid", message)
    assert body["details"] == {"name": "cm", "kind": "configmaps",
                               "causes": [{"message": message}]}


@pytest.mark.parametrize(("with_param", "status"), [(True, 201), (False, 403)])
async def test_params_and_missing_params(tmp_path: Path, with_param: bool,
                                         status: int) -> None:
    """A paramRef by name gives `params`; missing under Deny is a configuration error:
    Forbidden, whatever the mutations would say."""
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        if with_param:
            await _post(session, "/api/v1/namespaces/default/configmaps",
                        {"metadata": {"name": "team"}, "data": {"team": "green"}})
        await _policy(session, "from-param",
                      "Object{metadata: Object.metadata{labels: {'team': params.data.team}}}",
                      paramKind={"apiVersion": "v1", "kind": "ConfigMap"})
        async with session.put(f"{ALPHA}/mutatingadmissionpolicybindings/from-param", json={
                "metadata": {"name": "from-param"}, "spec": {
                    "policyName": "from-param", "paramRef": {
                        "name": "team", "namespace": "default",
                        "parameterNotFoundAction": "Deny"}}}) as response:
            assert response.status == 200, await response.text()
        got, body = await _post(session, "/api/v1/namespaces/default/configmaps",
                                {"metadata": {"name": "cm"}})
    assert got == status, body
    if status == 201:
        assert body["metadata"]["labels"] == {"team": "green"}
        return
    assert (body["reason"], body["message"]) == (
        "Forbidden", "policy 'from-param' with binding 'from-param' denied request: failed to "
                     "configure binding: no params found for policy binding with `Deny` "
                     "parameterNotFoundAction")
