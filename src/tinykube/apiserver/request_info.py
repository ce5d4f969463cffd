"""What a request asks to do, in the terms authorization speaks: kube's RequestInfo.

kube-apiserver's `RequestInfoFactory` reads every request into attributes before any
authorizer sees it, and RBAC rules are written against those attributes, so we resolve them
the same way:

- A path under `/api/<version>/...` or `/apis/<group>/<version>/...` with at least a resource
  segment is a resource request; anything else (`/version`, `/healthz`, `/api`, `/apis/apps`,
  `/openapi/v2`) is a non-resource request whose verb is the lower-cased HTTP method
  (`get`, `post`, `put`, ...).
- Resource verbs come from the method: POST create, GET/HEAD get, PUT update, PATCH patch,
  DELETE delete; a GET of a collection is `list`, or `watch` with `watch=true` (or the
  legacy `/watch/` path prefix); a DELETE of a collection is `deletecollection`.
- `namespaces/<ns>/<resource>/...` names a namespaced resource; `namespaces/<ns>` alone, and
  its `status`/`finalize` subresources, are the Namespace object itself (namespace and name
  both `<ns>`, as kube reports them).
- Segments after the name: the first is the subresource (`pods/log`, `serviceaccounts/token`).
- A list, watch or deletecollection with the field selector `metadata.name=NAME` is a request
  for that name (so `resourceNames` rules allow `kubectl get pod NAME --watch`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclasses.dataclass(frozen=True)
class Attributes:
    """kube's authorizer.Attributes, without the user."""

    verb: str
    path: str = ""
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    # a list's or watch's field selector, for the Node authorizer (`spec.nodeName=NODE`);
    # not part of equality, so RBAC's decision cache keys stay one per name
    field_selector: str = dataclasses.field(default="", compare=False)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "t", "true")


def _selected_name(selector: str) -> str:
    """The name a `metadata.name=NAME` field selector picks (kube authorizes the list of one
    object as a request for that name)."""
    for term in selector.split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and key.strip() == "metadata.name" and not key.endswith("!"):
            return value.strip()
    return ""


def resolve(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The request's attributes, as kube's RequestInfoFactory.NewRequestInfo resolves them."""
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource = Attributes(verb=method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = _VERBS.get(method.upper(), method.lower())
    watch_prefix = bool(rest) and rest[0] == "watch"
    if watch_prefix:
        rest, verb = rest[1:], "watch"
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if _truthy(query.get("watch")) else "list"
    elif not name and verb == "delete":
        verb = "deletecollection"
    selector = ""
    if verb in ("list", "watch", "deletecollection") and not name:
        selector = query.get("fieldSelector", "")
        name = _selected_name(selector)
    return Attributes(verb=verb, path=path, resource_request=True, api_group=group,
                      api_version=version, namespace=namespace, resource=resource,
                      subresource=subresource, name=name, field_selector=selector)
