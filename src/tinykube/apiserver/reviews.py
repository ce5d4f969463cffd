"""Self reviews: what `kubectl auth whoami` and `kubectl auth can-i [--list]` ask the server.

These resources are create-only and never stored: the answer is computed from the request and
the caller's identity. tinykube has one identity, the admin whose bearer token is in the
kubeconfig, and it may do everything (as `system:masters` may on a real cluster), so:

- `SelfSubjectReview` (authentication.k8s.io/v1) answers the admin's user info;
- `SelfSubjectAccessReview` (authorization.k8s.io/v1) answers `allowed: true` for any verb on
  any resource or non-resource URL;
- `SelfSubjectRulesReview` (authorization.k8s.io/v1) answers the one rule that allows all;
- `SubjectAccessReview` and the namespaced `LocalSubjectAccessReview` (what webhooks and
  aggregated servers ask about someone else) answer `allowed: true`: tinykube stores RBAC
  objects but authorizes every authenticated request, so anyone may do anything;
- `TokenReview` (authentication.k8s.io/v1) authenticates `spec.token` as the admin when it is
  the admin's bearer token the request itself came with, as its service account when it is a
  live ServiceAccount token (`apiserver.sa_tokens`), and answers `authenticated: false` for
  any other token.

`answer` is pure: the handler parses the body (JSON, YAML or protobuf) and sends the result.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from tinykube.api import errors

Obj = dict[str, Any]
Authenticate = Callable[[str], "Obj | None"]  # a token -> its user, or None

ADMIN: Obj = {"username": "tinykube-admin",
              "groups": ["system:masters", "system:authenticated"]}

_ALL_RESOURCES: Obj = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
_ALL_URLS: Obj = {"verbs": ["*"], "nonResourceURLs": ["*"]}


def _access_review(kind: str, spec: Any, namespace: str) -> Obj:
    group = "authorization.k8s.io"
    if not isinstance(spec, dict) or bool(spec.get("resourceAttributes")) == bool(
            spec.get("nonResourceAttributes")):
        raise errors.Invalid(kind, group, "", [errors.FieldError.invalid(
            "spec.resourceAttributes", None,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
    if kind == "SelfSubjectAccessReview":
        return {"allowed": True}
    causes = []
    if not spec.get("user") and not spec.get("groups"):
        causes.append(errors.FieldError.invalid(
            "spec.user", "", "at least one of user or group must be specified"))
    attributes = spec.get("resourceAttributes")
    if kind == "LocalSubjectAccessReview" and isinstance(attributes, dict) and \
            attributes.get("namespace", "") != namespace:
        causes.append(errors.FieldError.invalid(
            "spec.resourceAttributes.namespace", attributes.get("namespace", ""),
            "must match metadata.namespace"))
    if causes:
        raise errors.Invalid(kind, group, "", causes)
    return {"allowed": True, "reason": "tinykube authorizes every authenticated request"}


def _token_review(spec: Any, bearer: str, authenticate: Authenticate) -> Obj:
    token = spec.get("token") if isinstance(spec, dict) else None
    if not isinstance(token, str) or not token:
        raise errors.Invalid("TokenReview", "authentication.k8s.io", "", [
            errors.FieldError.required("spec.token", "")])
    user = ADMIN if bearer and hmac.compare_digest(token, bearer) else authenticate(token)
    if user is not None:
        return {"authenticated": True, "user": user,
                "audiences": list(spec.get("audiences") or [])}
    return {"authenticated": False, "error": "invalid bearer token"}


def _nobody(token: str) -> Obj | None:
    return None


def answer(kind: str, body: Any, *, namespace: str = "", bearer: str = "",
           authenticate: Authenticate = _nobody) -> Obj:
    """The review `body` sent for `kind`, with the server's status filled in; `namespace` is
    the URL's (LocalSubjectAccessReview), `bearer` the admin token the request came with and
    `authenticate` the ServiceAccount token check (TokenReview)."""
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of a {kind} must be an object")
    spec = body.get("spec")
    if kind.endswith("SubjectAccessReview"):
        status: Obj = _access_review(kind, spec, namespace)
    elif kind == "SelfSubjectRulesReview":
        status = {"resourceRules": [_ALL_RESOURCES], "nonResourceRules": [_ALL_URLS],
                  "incomplete": False}
    elif kind == "TokenReview":
        status = _token_review(spec, bearer, authenticate)
    else:
        status = {"userInfo": ADMIN}
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    result: Obj = {"kind": kind, "apiVersion": body.get("apiVersion") or "",
                   "metadata": {**(metadata or {}), "creationTimestamp": None}}
    if namespace:
        result["metadata"]["namespace"] = namespace
    if isinstance(spec, dict):
        result["spec"] = spec
    result["status"] = status
    return result
