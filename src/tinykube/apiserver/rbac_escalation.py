"""RBAC's escalation prevention: nobody grants permissions they do not hold.

Upstream this lives in the RBAC storage (`pkg/registry/rbac/*/policybased`); here it is a row
of the admission chain, run on create and update of the four RBAC kinds with the user the
request runs as (`access.current`):

- A Role or ClusterRole may be written by a user who may `escalate` it, or whose own rules
  (in the role's namespace, or cluster-wide for a ClusterRole) cover every rule in it. A
  ClusterRole with an `aggregationRule` needs `escalate` (its rules come from other roles).
- A RoleBinding or ClusterRoleBinding may be written by a user who may `bind` the role it
  refers to (`roles` or `clusterroles`, by name, in the binding's namespace), or who holds
  every permission of that role. A role that does not exist is a 404, as upstream.

The refusal is kube's: `<kind> "<name>" is forbidden: user "U" (groups=["G" ...]) is
attempting to grant RBAC permissions not currently held:` and the missing rules, one a line.
Requests made inside the API server (no `access.current`) are not checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinykube.api import errors
from tinykube.apiserver import access, rbac
from tinykube.apiserver.request_info import Attributes

if TYPE_CHECKING:
    from tinykube.apiserver.admission import Admission, Request

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
_PLURAL = {"Role": "roles", "ClusterRole": "clusterroles"}


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def compact(rule: rbac.Rule) -> str:
    """A rule as Go's `CompactString` prints it."""
    fields = (("APIGroups", "apiGroups"), ("Resources", "resources"),
              ("ResourceNames", "resourceNames"), ("NonResourceURLs", "nonResourceURLs"),
              ("Verbs", "verbs"))
    parts = [f"{label}:{_go_list(list(rule[key]))}" for label, key in fields
             if rule.get(key)]
    parts_text = ", ".join(parts).replace('APIGroups:[]', 'APIGroups:[""]')
    return "{" + parts_text + "}"


def _merged(rules: list[rbac.Rule]) -> list[rbac.Rule]:
    """One-verb rules of the same resource (or URL) merged, as kube's CompactRules does."""
    out: dict[tuple[Any, ...], Obj] = {}
    for rule in rules:
        key = tuple(tuple(rule.get(k) or ()) for k in
                    ("apiGroups", "resources", "resourceNames", "nonResourceURLs"))
        merged = out.setdefault(key, {**rule, "verbs": []})
        merged["verbs"] = [*merged["verbs"], *(v for v in rule["verbs"]
                                                if v not in merged["verbs"])]
    return list(out.values())


def _refusal(res_plural: str, name: str, user: rbac.User, missing: list[rbac.Rule]) -> Exception:
    lines = "\n".join(compact(r) for r in _merged(missing))
    return errors.Forbidden.for_object(
        res_plural, GROUP, name,
        f'user "{user.name}" (groups={_go_list(list(user.groups))}) is attempting to grant '
        f"RBAC permissions not currently held:\n{lines}")


def _may(authorizer: rbac.RBACAuthorizer, user: rbac.User, verb: str, resource: str,
         namespace: str, name: str) -> bool:
    return authorizer.allowed(user, Attributes(verb=verb, resource_request=True,
                                               api_group=GROUP, namespace=namespace,
                                               resource=resource, name=name))


def _role_rules(admission: Admission, ref: Obj, namespace: str) -> list[rbac.Rule]:
    kind, name = ref.get("kind", ""), ref.get("name", "")
    plural = _PLURAL.get(kind)
    if plural is None:
        return []
    entry = admission.registry.store.get(f"{GROUP}/{plural}",
                                         namespace if kind == "Role" else "", name)
    if entry is None:
        raise errors.NotFound.for_object(plural, GROUP, name)
    return list(entry.obj.get("rules") or ())


async def check(admission: Admission, request: Request) -> None:
    """The admission row: refuse an escalation (see the module docstring)."""
    current = access.current()
    if current is None:
        return
    user, control = current
    authorizer = control.authorizer
    kind, obj, namespace = request.res.kind, request.obj, request.namespace
    name = obj.get("metadata", {}).get("name", "")
    if kind in _PLURAL:
        if _may(authorizer, user, "escalate", request.res.plural, namespace, name):
            return
        if kind == "ClusterRole" and obj.get("aggregationRule"):
            raise errors.Forbidden.for_object(
                request.res.plural, GROUP, name,
                "must have cluster-admin privileges to use the aggregationRule")
        servant: list[rbac.Rule] = list(obj.get("rules") or ())
    else:
        ref = obj.get("roleRef") or {}
        plural = _PLURAL.get(ref.get("kind", ""), "")
        if plural and _may(authorizer, user, "bind", plural, namespace, ref.get("name", "")):
            return
        servant = _role_rules(admission, ref, namespace)
    missing = rbac.covers(authorizer.rules_for(user, namespace), servant)
    if missing:
        raise _refusal(request.res.plural, name, user, missing)
