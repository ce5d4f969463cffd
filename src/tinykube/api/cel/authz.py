"""kube's authorizer library (`k8s.io/apiserver/pkg/cel/library/authz.go`) for admission CEL.

The `authorizer` variable of ValidatingAdmissionPolicy, MutatingAdmissionPolicy and webhooks'
matchConditions asks the API server's authorizer whether a user may do something:

    authorizer.group('apps').resource('deployments').subresource('scale')
        .namespace('ns').name('web').check('update').allowed()
    authorizer.path('/healthz').check('get').allowed()
    authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('list')
    authorizer.requestResource.check('delete')   # the request's own resource

Every value of the chain is opaque, as the other libraries' are (`library.py`): a map tagged
with one key, which only these functions read: `{"@authz": user}` (an Authorizer),
`{"@authz.group": ...}`, `{"@authz.resource": ...}`, `{"@authz.path": ...}` (the checks being
built) and `{"@authz.decision": ...}` (a Decision). The `authorizer` variable is the request
user's Authorizer with one more key, `requestResource` (kube declares it as a variable of its
own, `authorizer.requestResource`, which reads the same).

`check(verb)` asks the authorizer bound to the evaluation (`bind`, which the engine enters
around each run with the callable its caller gave): `(attributes) -> (decision, reason)`,
where attributes are kube's authorizer.Attributes as a dict (`user`, `groups`, `uid`,
`verb`, `resourceRequest`, `apiGroup`, `apiVersion` `*`, `resource`, `subresource`,
`namespace`, `name`, or `path`) and decision is `Allow`, `Deny` or `NoOpinion`; an exception
it raises is the decision's error (`errored()`, `error()`), with decision NoOpinion. With no
authorizer bound, `check` fails the evaluation. The Decision: `allowed()` is true only for
Allow, `reason()` the authorizer's reason, `errored()` and `error()`
its error (or false and "").

kube also has `fieldSelector`/`labelSelector` on a resource check (the AuthorizeWithSelectors
gate); they are kept in the attributes but tinykube's RBAC ignores selectors, as kube's does.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]
Authorize = Callable[[Obj], tuple[str, str]]  # attributes -> (decision, reason)

AUTHORIZER, GROUP, RESOURCE, PATH, DECISION = (
    "@authz", "@authz.group", "@authz.resource", "@authz.path", "@authz.decision")
SA_PREFIX = "system:serviceaccount:"

_BOUND: contextvars.ContextVar[Authorize | None] = contextvars.ContextVar("authorize",
                                                                          default=None)


class AuthzError(ValueError):
    """A function of the library refused its receiver or arguments."""


@contextlib.contextmanager
def bind(authorize: Authorize | None) -> Iterator[None]:
    """Make `authorize` what `check` asks, for the evaluations run inside."""
    token = _BOUND.set(authorize)
    try:
        yield
    finally:
        _BOUND.reset(token)


def principal(user: Obj) -> Obj:
    """The identity an Authorizer checks for, from a userInfo (username, uid, groups)."""
    return {"user": str(user.get("username", "")), "uid": str(user.get("uid", "")),
            "groups": [str(g) for g in user.get("groups") or []]}


def variable(user: Obj, request_resource: Obj | None = None) -> Obj:
    """The `authorizer` variable: `user`'s Authorizer and, for a request on a resource,
    `requestResource` (group, resource, subresource, namespace, name)."""
    value: Obj = {AUTHORIZER: principal(user)}
    if request_resource is not None:
        value["requestResource"] = {RESOURCE: {**principal(user), **request_resource}}
    return value


def _read(value: Any, tag: str, function: str) -> Obj:
    if isinstance(value, dict) and isinstance(value.get(tag), dict):
        return dict(value[tag])
    raise AuthzError(f"no such overload: {function}")


def service_account(authz: Any, namespace: str, name: str) -> Obj:
    """kube's `serviceAccount`: an Authorizer for the service account's identity."""
    _read(authz, AUTHORIZER, "serviceAccount")
    return {AUTHORIZER: {"user": f"{SA_PREFIX}{namespace}:{name}", "uid": "",
                         "groups": ["system:serviceaccounts",
                                    f"system:serviceaccounts:{namespace}"]}}


def path(authz: Any, value: str) -> Obj:
    return {PATH: {**_read(authz, AUTHORIZER, "path"), "path": str(value)}}


def group(authz: Any, value: str) -> Obj:
    return {GROUP: {**_read(authz, AUTHORIZER, "group"), "apiGroup": str(value)}}


def resource(check: Any, value: str) -> Obj:
    return {RESOURCE: {**_read(check, GROUP, "resource"), "resource": str(value)}}


def _setter(field: str) -> Callable[[Any, str], Obj]:
    def set_field(check: Any, value: str) -> Obj:
        return {RESOURCE: {**_read(check, RESOURCE, field), field: str(value)}}
    return set_field


def attributes(check: Any, verb: str) -> Obj:
    """kube's authorizer.AttributesRecord of a resource or path check."""
    if isinstance(check, dict) and PATH in check:
        built = _read(check, PATH, "check")
        return {**built, "verb": str(verb), "resourceRequest": False}
    built = _read(check, RESOURCE, "check")
    out: Obj = {"user": built["user"], "uid": built.get("uid", ""), "groups": built["groups"],
                "verb": str(verb), "resourceRequest": True, "apiVersion": "*"}
    for field in ("apiGroup", "resource", "subresource", "namespace", "name",
                  "fieldSelector", "labelSelector"):
        out[field] = str(built.get(field, ""))
    return out


def check(built: Any, verb: str) -> Obj:
    """Ask the bound authorizer; its exception is the Decision's error."""
    attrs = attributes(built, verb)
    authorize = _BOUND.get()
    if authorize is None:
        raise AuthzError("no authorizer is available to this evaluation")
    try:
        decision, reason = authorize(attrs)
    except Exception as exc:  # the authorizer's error is the decision's, as in kube
        return {DECISION: {"decision": "NoOpinion", "reason": "", "error": str(exc) or
                           type(exc).__name__}}
    return {DECISION: {"decision": decision, "reason": reason, "error": ""}}


def _decision(value: Any, function: str) -> Obj:
    return _read(value, DECISION, function)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "serviceAccount": service_account, "path": path, "group": group, "resource": resource,
    "subresource": _setter("subresource"), "namespace": _setter("namespace"),
    "name": _setter("name"), "fieldSelector": _setter("fieldSelector"),
    "labelSelector": _setter("labelSelector"), "check": check,
    "allowed": lambda d: _decision(d, "allowed")["decision"] == "Allow",
    "reason": lambda d: str(_decision(d, "reason")["reason"]),
    "errored": lambda d: bool(_decision(d, "errored")["error"]),
    "error": lambda d: str(_decision(d, "error")["error"]),
}
