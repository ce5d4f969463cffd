"""Self reviews: what `kubectl auth whoami` and `kubectl auth can-i [--list]` ask the server.

These resources are create-only and never stored: the answer is computed from the request and
the caller's identity. tinykube has one identity, the admin whose bearer token is in the
kubeconfig, and it may do everything (as `system:masters` may on a real cluster), so:

- `SelfSubjectReview` (authentication.k8s.io/v1) answers the admin's user info;
- `SelfSubjectAccessReview` (authorization.k8s.io/v1) answers `allowed: true` for any verb on
  any resource or non-resource URL;
- `SelfSubjectRulesReview` (authorization.k8s.io/v1) answers the one rule that allows all.

`answer` is pure: the handler parses the body (JSON, YAML or protobuf) and sends the result.
"""

from __future__ import annotations

from typing import Any

from tinykube.api import errors

Obj = dict[str, Any]

ADMIN: Obj = {"username": "tinykube-admin",
              "groups": ["system:masters", "system:authenticated"]}

_ALL_RESOURCES: Obj = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
_ALL_URLS: Obj = {"verbs": ["*"], "nonResourceURLs": ["*"]}


def answer(kind: str, body: Any) -> Obj:
    """The review `body` sent for `kind`, with the server's status filled in."""
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of a {kind} must be an object")
    spec = body.get("spec")
    if kind == "SelfSubjectAccessReview":
        if not isinstance(spec, dict) or not (spec.get("resourceAttributes")
                                              or spec.get("nonResourceAttributes")):
            raise errors.Invalid(kind, "authorization.k8s.io", "", [errors.FieldError.invalid(
                "spec.resourceAttributes", None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
        status: Obj = {"allowed": True}
    elif kind == "SelfSubjectRulesReview":
        status = {"resourceRules": [_ALL_RESOURCES], "nonResourceRules": [_ALL_URLS],
                  "incomplete": False}
    else:
        status = {"userInfo": ADMIN}
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    result: Obj = {"kind": kind, "apiVersion": body.get("apiVersion") or "",
                   "metadata": {**(metadata or {}), "creationTimestamp": None}}
    if isinstance(spec, dict):
        result["spec"] = spec
    result["status"] = status
    return result
