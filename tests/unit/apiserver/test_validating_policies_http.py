"""ValidatingAdmissionPolicy through the real API server, over HTTP: params from ConfigMaps
(by name, by selector, missing under Deny and Allow), the namespace object, Warn headers, the
Status of a denial with a reason, and that policies do not judge their own kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.unit.apiserver.harness import running_api

Obj = dict[str, Any]
JSON = {"Content-Type": "application/json"}
REG = "/apis/admissionregistration.k8s.io/v1"
CMS = "/api/v1/namespaces/default/configmaps"


async def send(session: aiohttp.ClientSession, method: str, path: str,
               body: Obj) -> tuple[int, Obj, list[str]]:
    async with session.request(method, path, data=orjson.dumps(body), headers=JSON) as reply:
        return reply.status, orjson.loads(await reply.read()), reply.headers.getall("Warning", [])


def _policy(**spec: Any) -> Obj:
    return {"metadata": {"name": "max-keys"}, "spec": {
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["secrets"]}]},
        "validations": [{"expression": "size(object.data) <= int(params.data.max)",
                         "messageExpression": "'at most ' + params.data.max + ' keys'",
                         "reason": "Forbidden"}],
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, **spec}}


def _binding(actions: list[str], **ref: Any) -> Obj:
    return {"metadata": {"name": "max-keys-binding"}, "spec": {
        "policyName": "max-keys", "validationActions": actions,
        "paramRef": {"namespace": "default", **ref}}}


def _secret(name: str, keys: int) -> Obj:
    return {"metadata": {"name": name}, "data": {f"k{i}": "eA==" for i in range(keys)}}


SECRETS = "/api/v1/namespaces/default/secrets"


async def test_params_by_name_and_a_denial_with_its_reason(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", CMS, {"metadata": {"name": "limits"}, "data": {"max": "2"}})
        assert (await send(session, "POST", f"{REG}/validatingadmissionpolicies",
                           _policy()))[0] == 201
        binding = _binding(["Deny"], name="limits", parameterNotFoundAction="Deny")
        assert (await send(session, "POST", f"{REG}/validatingadmissionpolicybindings",
                           binding))[0] == 201
        ok = await send(session, "POST", SECRETS, _secret("small", 2))
        status, body, _ = await send(session, "POST", SECRETS, _secret("big", 3))
    assert ok[0] == 201
    message = ('secrets "big" is forbidden: ValidatingAdmissionPolicy \'max-keys\' with binding '
               "'max-keys-binding' denied request: at most 2 keys")
    assert (status, body["reason"], body["message"]) == (403, "Forbidden", message)
    assert body["details"] == {"name": "big", "kind": "secrets",
                               "causes": [{"message": message.split("forbidden: ")[1]}]}


async def test_params_by_selector_missing_params_and_warnings(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", f"{REG}/validatingadmissionpolicies", _policy())
        binding = _binding(["Warn"], selector={"matchLabels": {"limits": "secrets"}},
                           parameterNotFoundAction="Deny")
        await send(session, "POST", f"{REG}/validatingadmissionpolicybindings", binding)
        missing = await send(session, "POST", SECRETS, _secret("a", 3))
        for name, limit in (("one", "5"), ("two", "1")):
            await send(session, "POST", CMS, {"metadata": {
                "name": name, "labels": {"limits": "secrets"}}, "data": {"max": limit}})
        warned = await send(session, "POST", SECRETS, _secret("b", 3))
        _, body, _ = await send(session, "GET",
                                     f"{REG}/validatingadmissionpolicybindings/max-keys-binding",
                                     {})
        body["spec"]["paramRef"]["parameterNotFoundAction"] = "Allow"
        body["spec"]["paramRef"]["selector"] = {"matchLabels": {"limits": "none"}}
        await send(session, "PUT", f"{REG}/validatingadmissionpolicybindings/max-keys-binding",
                   body)
        allowed = await send(session, "POST", SECRETS, _secret("c", 9))
    prefix = ('299 - "Validation failed for ValidatingAdmissionPolicy \'max-keys\' with binding '
              "'max-keys-binding': ")
    # missing params are a configuration error: denied although the binding only warns
    assert (missing[0], missing[1]["reason"], missing[2]) == (422, "Invalid", [])
    assert missing[1]["message"] == (
        "secrets \"a\" is forbidden: ValidatingAdmissionPolicy 'max-keys' with binding "
        "'max-keys-binding' denied request: failed to configure binding: no params found for "
        "policy binding with `Deny` parameterNotFoundAction")
    assert (warned[0], warned[2]) == (201, [prefix + 'at most 1 keys"'])
    assert (allowed[0], allowed[2]) == (201, [])


async def test_namespace_object_and_own_kinds(tmp_path: Path) -> None:
    policy = {"metadata": {"name": "team-label"}, "spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                                                "operations": ["*"], "resources": ["*"]}]},
        "validations": [{"expression": "namespaceObject == null || "
                                       "has(namespaceObject.metadata.labels) && "
                                       "'team' in namespaceObject.metadata.labels"}]}}
    binding = {"metadata": {"name": "team-label"}, "spec": {"policyName": "team-label",
                                                          "validationActions": ["Deny"]}}
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await send(session, "POST", f"{REG}/validatingadmissionpolicies", policy)
        await send(session, "POST", f"{REG}/validatingadmissionpolicybindings", binding)
        denied = await send(session, "POST", CMS, {"metadata": {"name": "x"}})
        namespace = await send(session, "POST", "/api/v1/namespaces",
                               {"metadata": {"name": "t", "labels": {"team": "a"}}})
        allowed = await send(session, "POST", "/api/v1/namespaces/t/configmaps",
                             {"metadata": {"name": "x"}})
        del_status = (await send(session, "DELETE", f"{REG}/validatingadmissionpolicies/"
                                 "team-label", {}))[0]
    assert (denied[0], denied[1]["reason"]) == (422, "Invalid")
    assert denied[1]["message"].startswith('configmaps "x" is forbidden: ValidatingAdmission'
                                           "Policy 'team-label' with binding 'team-label' "
                                           "denied request: failed expression: namespaceObject")
    assert (namespace[0], allowed[0], del_status) == (201, 201, 200)
