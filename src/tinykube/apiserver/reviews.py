"""Reviews: what `kubectl auth whoami`, `kubectl auth can-i [--list]`, webhooks and aggregated
servers ask the server about identities and permissions.

These resources are create-only and never stored: the answer is computed from the request, the
caller's identity (after impersonation, so `--as` asks about someone else) and RBAC:

- `SelfSubjectReview` (authentication.k8s.io/v1): the caller's user info;
- `SelfSubjectAccessReview`: may the caller do `spec.resourceAttributes` (namespace, verb,
  group, resource, subresource, name) or `spec.nonResourceAttributes` (path, verb)?
- `SubjectAccessReview` and the namespaced `LocalSubjectAccessReview`: the same question for
  `spec.user`/`groups`/`uid`/`extra` (taken as given: no `system:authenticated` is added);
- `SelfSubjectRulesReview`: the rules that apply to the caller in `spec.namespace`, as the
  RBAC authorizer's RulesFor lists them (`incomplete: true` for a node, whose rules the Node
  authorizer does not enumerate, as upstream's says; `false` for everyone else);
- `TokenReview` (authentication.k8s.io/v1): who `spec.token` is (the admin token, or a live
  ServiceAccount token), or `authenticated: false`.

The decision is the request path's own (`rbac.RBACAuthorizer.allowed`, `system:masters`
first), so a review and the request it asks about never disagree. `answer` is pure given its
arguments: the handler parses the body (JSON, YAML or protobuf) and sends the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tinykube.api import errors
from tinykube.apiserver import nodeauthz, rbac
from tinykube.apiserver.rbac import User
from tinykube.apiserver.request_info import Attributes

Obj = dict[str, Any]
Authenticate = Callable[[str], "User | None"]  # a token -> its user, or None


@dataclasses.dataclass(frozen=True)
class Context:
    """Who asks (after impersonation), with what the answers need."""

    user: User
    authorizer: rbac.RBACAuthorizer
    authenticate: Authenticate
    namespace: str = ""  # the URL's (LocalSubjectAccessReview)


def _attributes(spec: Obj) -> Attributes:
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        return Attributes(verb=str(resource.get("verb", "")), resource_request=True,
                          api_group=str(resource.get("group", "")),
                          api_version=str(resource.get("version", "")),
                          namespace=str(resource.get("namespace", "")),
                          resource=str(resource.get("resource", "")),
                          subresource=str(resource.get("subresource", "")),
                          name=str(resource.get("name", "")))
    other = spec.get("nonResourceAttributes") or {}
    return Attributes(verb=str(other.get("verb", "")), path=str(other.get("path", "")))


def _subject(spec: Obj) -> User:
    extra = spec.get("extra") if isinstance(spec.get("extra"), dict) else {}
    return User(str(spec.get("user", "")), tuple(spec.get("groups") or ()),
                str(spec.get("uid", "")),
                tuple((k, tuple(v)) for k, v in sorted((extra or {}).items())))


def _access_review(kind: str, spec: Any, ctx: Context) -> Obj:
    group = "authorization.k8s.io"
    if not isinstance(spec, dict) or bool(spec.get("resourceAttributes")) == bool(
            spec.get("nonResourceAttributes")):
        raise errors.Invalid(kind, group, "", [errors.FieldError.invalid(
            "spec.resourceAttributes", None,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
    attrs = _attributes(spec)
    if kind == "SelfSubjectAccessReview":
        return {"allowed": ctx.authorizer.allowed(ctx.user, attrs)}
    causes = []
    if not spec.get("user") and not spec.get("groups"):
        causes.append(errors.FieldError.invalid(
            "spec.user", "", "at least one of user or group must be specified"))
    if kind == "LocalSubjectAccessReview" and attrs.namespace != ctx.namespace:
        causes.append(errors.FieldError.invalid(
            "spec.resourceAttributes.namespace", attrs.namespace,
            "must match metadata.namespace"))
    if causes:
        raise errors.Invalid(kind, group, "", causes)
    return {"allowed": ctx.authorizer.allowed(_subject(spec), attrs)}


def _rules_review(spec: Any, ctx: Context) -> Obj:
    namespace = spec.get("namespace", "") if isinstance(spec, dict) else ""
    if rbac.MASTERS in ctx.user.groups:  # the privileged-group authorizer's own rules
        rules: list[rbac.Rule] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                                  {"verbs": ["*"], "nonResourceURLs": ["*"]}]
    else:
        rules = []
    rules += ctx.authorizer.rules_for(ctx.user, str(namespace))
    resource_rules = [{k: list(r[k]) for k in ("verbs", "apiGroups", "resources",
                                                "resourceNames") if r.get(k)}
                      for r in rules if r.get("resources")]
    url_rules = [{"verbs": list(r.get("verbs") or ()),
                  "nonResourceURLs": list(r["nonResourceURLs"])}
                 for r in rules if r.get("nonResourceURLs")]
    out: Obj = {"resourceRules": resource_rules, "nonResourceRules": url_rules,
                "incomplete": False}
    if nodeauthz.node_identity(ctx.user)[1]:
        out.update(incomplete=True,
                   evaluationError="node authorizer does not support user rule resolution")
    return out


def _token_review(spec: Any, ctx: Context) -> Obj:
    token = spec.get("token") if isinstance(spec, dict) else None
    if not isinstance(token, str) or not token:
        raise errors.Invalid("TokenReview", "authentication.k8s.io", "", [
            errors.FieldError.required("spec.token", "")])
    user = ctx.authenticate(token)
    if user is not None:
        return {"authenticated": True, "user": user.info(),
                "audiences": list(spec.get("audiences") or [])}
    return {"authenticated": False, "error": "invalid bearer token"}


def answer(kind: str, body: Any, ctx: Context) -> Obj:
    """The review `body` sent for `kind`, with the server's status filled in."""
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of a {kind} must be an object")
    spec = body.get("spec")
    if kind.endswith("SubjectAccessReview"):
        status: Obj = _access_review(kind, spec, ctx)
    elif kind == "SelfSubjectRulesReview":
        status = _rules_review(spec, ctx)
    elif kind == "TokenReview":
        status = _token_review(spec, ctx)
    else:
        status = {"userInfo": ctx.user.info()}
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    result: Obj = {"kind": kind, "apiVersion": body.get("apiVersion") or "",
                   "metadata": {**(metadata or {}), "creationTimestamp": None}}
    if ctx.namespace:
        result["metadata"]["namespace"] = ctx.namespace
    if isinstance(spec, dict):
        result["spec"] = spec
    result["status"] = status
    return result
