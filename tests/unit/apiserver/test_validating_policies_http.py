"""ValidatingAdmissionPolicy through the real API server, over HTTP: params from ConfigMaps
(by name, by selector, missing under Deny and Allow), the namespace object, Warn headers, the
Status of a denial with a reason, that policies do not judge their own kinds, and the
`authorizer` variable asking the server's RBAC for the request's user."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.unit.apiserver.harness import NOW, running_api
from tinykube.apiserver import access, rbac
from tinykube.apiserver.admission import Admission
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.app import APIServer
from tinykube.apiserver.bootstrap import bootstrap
from tinykube.apiserver.handlers import ResourceHandler
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

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


APP = {"username": "system:serviceaccount:default:app", "uid": "u1",
       "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                  "system:authenticated"]}
RBAC_API = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
LIST_SECRETS = ("authorizer.group('').resource('secrets')"
                ".namespace(object.metadata.namespace).check('list').allowed()")


@contextlib.asynccontextmanager
async def _api_with_tokens(tmp_path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    """An API server with access control (real RBAC): `admin-token` is the admin's, and
    `app-token` the `default/app` service account's."""
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR), clock=lambda: NOW)
    bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    control = access.AccessControl("admin-token",
                                   lambda t: APP if t == "app-token" else None,
                                   rbac.RBACAuthorizer(store))
    server = APIServer(ResourceHandler(registry, now=lambda: NOW, admission=Admission(registry)),
                       token="admin-token", port=0, access=control)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            yield session
    finally:
        await server.stop()
        store.close()


async def test_authorizer_lets_the_admin_through_and_denies_an_account(tmp_path: Path) -> None:
    """A policy checking `list secrets` of the request's user: the admin may, the service
    account (which may create configmaps, through a Role) may not: kube's denial; once its
    Role grants the list, it passes."""
    policy = {"metadata": {"name": "secret-listers"}, "spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                "operations": ["CREATE"],
                                                "resources": ["configmaps"]}]},
        "validations": [{"expression": LIST_SECRETS}]}}
    binding = {"metadata": {"name": "secret-listers"}, "spec": {
        "policyName": "secret-listers", "validationActions": ["Deny"]}}
    role = {"metadata": {"name": "cm-writer"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]}
    role_binding = {"metadata": {"name": "cm-writer"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-writer"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}]}
    admin = {"Authorization": "Bearer admin-token", **JSON}
    app = {"Authorization": "Bearer app-token", **JSON}
    async with _api_with_tokens(tmp_path) as session:
        for path, body in ((f"{RBAC_API}/roles", role), (f"{RBAC_API}/rolebindings", role_binding),
                           (f"{REG}/validatingadmissionpolicies", policy),
                           (f"{REG}/validatingadmissionpolicybindings", binding)):
            async with session.post(path, data=orjson.dumps(body), headers=admin) as reply:
                assert reply.status == 201, await reply.text()
        statuses = []
        for headers, name in ((admin, "by-admin"), (app, "by-app")):
            async with session.post(CMS, data=orjson.dumps({"metadata": {"name": name}}),
                                    headers=headers) as reply:
                statuses.append((reply.status, orjson.loads(await reply.read())))
        # granted `list secrets` too, the account passes
        role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})
        async with session.put(f"{RBAC_API}/roles/cm-writer", data=orjson.dumps(role),
                               headers=admin) as reply:
            assert reply.status == 200, await reply.text()
        async with session.post(CMS, data=orjson.dumps({"metadata": {"name": "by-app-2"}}),
                                headers=app) as reply:
            granted = reply.status
    assert (statuses[0][0], granted) == (201, 201)
    status, body = statuses[1]
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'configmaps "by-app" is forbidden: ValidatingAdmissionPolicy \'secret-listers\' with '
        f"binding 'secret-listers' denied request: failed expression: {LIST_SECRETS}")
