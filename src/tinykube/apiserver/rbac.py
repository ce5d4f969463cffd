"""RBAC: who may do what, decided from the stored Roles, ClusterRoles and their bindings.

The decision is kube's RBAC authorizer (`plugin/pkg/auth/authorizer/rbac`), preceded by the
privileged-group authorizer kube-apiserver puts first (members of `system:masters` may do
everything, whatever RBAC holds):

- A ClusterRoleBinding grants its ClusterRole's rules everywhere; a RoleBinding grants its
  Role's (or a ClusterRole's) rules in the binding's namespace only, so only to requests with
  that namespace.
- A subject matches a user by kind: `User` by name, `Group` by one of the user's groups,
  `ServiceAccount` as `system:serviceaccount:<ns>:<name>` (an empty namespace in a RoleBinding
  means the binding's own).
- A rule allows a resource request when it has the verb (or `*`), the API group (or `*`), the
  resource as `resource` or `resource/subresource` (or `*`, or `*/subresource`), and either no
  `resourceNames` or the request's name among them; a non-resource request when it has the
  verb and a `nonResourceURLs` entry equal to the path or a `prefix*` the path starts with.

`RBACAuthorizer` runs on every request, so it keeps an index of the bindings by subject (built
from the store) and, per (user, groups), the rules that apply cluster-wide and per namespace,
plus recent decisions. Watches on the four RBAC resources tell it when to drop all of that;
the store publishes a write before the write's response is sent, so the next request sees it.

`covers` is kube's escalation check (`validation.Covers`): do a user's rules include every
permission of a role?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tinykube.api import errors
from tinykube.apiserver.request_info import Attributes
from tinykube.store.cache import Store

Obj = dict[str, Any]
Rule = Mapping[str, Any]

MASTERS = "system:masters"
SA_PREFIX = "system:serviceaccount:"
_G = "rbac.authorization.k8s.io"
RESOURCES = tuple(f"{_G}/{r}"
                  for r in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"))
_DECISIONS = 100_000  # cached decisions, at most (dropped all at once when full)


@dataclasses.dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) identity: kube's user.Info."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def info(self) -> Obj:
        """As UserInfo in a review."""
        out: Obj = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


# --- rules ----------------------------------------------------------------------------

def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = values or ()
    return "*" in values or wanted in values


def _resource_matches(rule: Rule, attrs: Attributes) -> bool:
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for resource in rule.get("resources") or ():
        if resource in ("*", combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url in ("*", path) or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    """kube's RuleAllows."""
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    names = rule.get("resourceNames") or ()
    return (_has(rule.get("apiGroups"), attrs.api_group) and _resource_matches(rule, attrs)
            and (not names or attrs.name in names))


def _pieces(rule: Rule) -> Iterable[Attributes]:
    """A rule broken into one-verb, one-resource (or URL), one-name requests."""
    for verb in rule.get("verbs") or ():
        for url in rule.get("nonResourceURLs") or ():
            yield Attributes(verb=verb, path=url)
        for group in rule.get("apiGroups") or ():
            for combined in rule.get("resources") or ():
                resource, _, sub = combined.partition("/")
                for name in rule.get("resourceNames") or ("",):
                    yield Attributes(verb=verb, resource_request=True, api_group=group,
                                     resource=resource, subresource=sub, name=name)


def _covers_piece(owner: Rule, piece: Attributes) -> bool:
    """Whether one owner rule includes one piece: wildcards in the piece need wildcards in the
    owner (holding `get pods` does not cover granting `* pods`)."""
    if "*" not in (owner.get("verbs") or ()) and piece.verb not in (owner.get("verbs") or ()):
        return False
    if not piece.resource_request:
        urls = owner.get("nonResourceURLs") or ()
        return any(u == piece.path or (u.endswith("*") and piece.path.startswith(u[:-1]))
                   for u in urls)
    if not _has(owner.get("apiGroups"), piece.api_group):
        return False
    combined = f"{piece.resource}/{piece.subresource}" if piece.subresource else piece.resource
    resources = owner.get("resources") or ()
    if not ("*" in resources or combined in resources or (
            piece.subresource and f"*/{piece.subresource}" in resources)):
        return False
    names = owner.get("resourceNames") or ()
    return not names or (bool(piece.name) and piece.name in names)


def covers(owner: Sequence[Rule], servant: Iterable[Rule]) -> list[Rule]:
    """The servant rules (as pieces) that no owner rule includes; empty: owner covers all."""
    missing: list[Rule] = []
    for rule in servant:
        for piece in _pieces(rule):
            if not any(_covers_piece(o, piece) for o in owner):
                missing.append(_as_rule(piece))
    return missing


def _as_rule(piece: Attributes) -> Rule:
    if not piece.resource_request:
        return {"verbs": [piece.verb], "nonResourceURLs": [piece.path]}
    resource = f"{piece.resource}/{piece.subresource}" if piece.subresource else piece.resource
    rule: Obj = {"verbs": [piece.verb], "apiGroups": [piece.api_group], "resources": [resource]}
    if piece.name:
        rule["resourceNames"] = [piece.name]
    return rule


# --- the authorizer -------------------------------------------------------------------

def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> str | None:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return f"u:{name}"
    if kind == "Group":
        return f"g:{name}"
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return f"u:{SA_PREFIX}{namespace}:{name}" if namespace else None
    return None


def _user_keys(user: User) -> list[str]:
    return [f"u:{user.name}", *(f"g:{g}" for g in user.groups)]


@dataclasses.dataclass
class _Grants:
    """The rules that apply to one user: everywhere, and per namespace."""

    cluster: list[Rule]
    namespaced: dict[str, list[Rule]]


#: an authorizer asked before RBAC (the Node authorizer): (allowed, the reason of a denial)
FirstAuthorizer = Callable[[User, Attributes], tuple[bool, str]]


class RBACAuthorizer:
    """Decides requests from the store's RBAC objects (see the module docstring), after
    `first` (kube-apiserver's `--authorization-mode=Node,RBAC`: the Node authorizer)."""

    def __init__(self, store: Store, first: FirstAuthorizer | None = None) -> None:
        self.store = store
        self.first = first
        self._seen: dict[str, tuple[int, int]] = {}  # resource -> store.generation seen
        self._cluster_index: dict[str, list[str]] = {}  # subject -> ClusterRole names
        self._namespace_index: dict[str, list[tuple[str, str, str]]] = {}  # -> (ns, kind, name)
        self._grants: dict[tuple[str, tuple[str, ...]], _Grants] = {}
        self._decisions: dict[tuple[str, tuple[str, ...], Attributes], bool] = {}
        self._built = False

    def __repr__(self) -> str:
        return f"RBACAuthorizer(users={len(self._grants)})"

    # -- freshness: drop everything when an RBAC object changed

    def _changed(self) -> bool:
        """Whether an RBAC object may have changed since the last build: the store's
        generation of each RBAC resource, which every write and every event from the store
        (an etcd watch's too, for writes through another API server) moves on."""
        current = {resource: self.store.generation(resource) for resource in RESOURCES}
        changed = not self._built or current != self._seen
        self._seen = current
        return changed

    def _refresh(self) -> None:
        if not self._changed():
            return
        self._grants.clear()
        self._decisions.clear()
        self._cluster_index, self._namespace_index = {}, {}
        for entry in self.store.list(f"{_G}/clusterrolebindings"):
            ref = entry.obj.get("roleRef") or {}
            for subject in entry.obj.get("subjects") or ():
                key = _subject_key(subject, "")
                if key is not None and ref.get("kind") == "ClusterRole":
                    self._cluster_index.setdefault(key, []).append(ref.get("name", ""))
        for entry in self.store.list(f"{_G}/rolebindings"):
            ref = entry.obj.get("roleRef") or {}
            namespace = entry.obj["metadata"].get("namespace", "")
            for subject in entry.obj.get("subjects") or ():
                key = _subject_key(subject, namespace)
                if key is not None:
                    self._namespace_index.setdefault(key, []).append(
                        (namespace, ref.get("kind", ""), ref.get("name", "")))
        self._built = True

    def close(self) -> None:
        """Nothing to release: freshness is read from the store's generations."""

    # -- rules of a user

    def _role_rules(self, kind: str, namespace: str, name: str) -> list[Rule]:
        if kind == "ClusterRole":
            entry = self.store.get(f"{_G}/clusterroles", "", name)
        elif kind == "Role":
            entry = self.store.get(f"{_G}/roles", namespace, name)
        else:
            return []
        return list(entry.obj.get("rules") or ()) if entry is not None else []

    def _grants_of(self, user: User) -> _Grants:
        key = (user.name, user.groups)
        grants = self._grants.get(key)
        if grants is None:
            grants = _Grants([], {})
            for subject in _user_keys(user):
                for role in self._cluster_index.get(subject, ()):
                    grants.cluster.extend(self._role_rules("ClusterRole", "", role))
                for namespace, kind, role in self._namespace_index.get(subject, ()):
                    grants.namespaced.setdefault(namespace, []).extend(
                        self._role_rules(kind, namespace, role))
            self._grants[key] = grants
        return grants

    def rules_for(self, user: User, namespace: str) -> list[Rule]:
        """Every rule that applies to `user` in `namespace` ("" = cluster scope only), as
        SelfSubjectRulesReview lists them."""
        self._refresh()
        grants = self._grants_of(user)
        return [*grants.cluster, *(grants.namespaced.get(namespace, ()) if namespace else ())]

    # -- decisions

    def allowed(self, user: User, attrs: Attributes) -> bool:
        """The decision for one request (system:masters first, then `first`, then RBAC)."""
        return self.decide(user, attrs)[0]

    def decide(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, why not): the union of kube's authorizers, whose 403 message ends with
        the reasons of those that had no opinion."""
        if MASTERS in user.groups:
            return True, ""
        reason = ""
        if self.first is not None:
            allowed, reason = self.first(user, attrs)
            if allowed:
                return True, ""
        return self._rbac_allows(user, attrs), reason

    def _rbac_allows(self, user: User, attrs: Attributes) -> bool:
        self._refresh()
        key = (user.name, user.groups, attrs)
        decision = self._decisions.get(key)
        if decision is None:
            grants = self._grants_of(user)
            rules = grants.cluster
            if attrs.namespace and attrs.resource_request:
                rules = [*rules, *grants.namespaced.get(attrs.namespace, ())]
            decision = any(rule_allows(rule, attrs) for rule in rules)
            if len(self._decisions) >= _DECISIONS:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision


# --- kube's Forbidden -------------------------------------------------------------------

def forbidden_message(user: User, attrs: Attributes) -> str:
    """What kube's authorization filter says a user cannot do."""
    if not attrs.resource_request:
        return f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.api_group}" {where}')


def forbidden(user: User, attrs: Attributes, reason: str = "") -> errors.Forbidden:
    """kube's 403 for a denied request (`apierrors.NewForbidden` of the resource)."""
    message = forbidden_message(user, attrs) + (f": {reason}" if reason else "")
    if not attrs.resource_request:
        return errors.Forbidden(f"forbidden: {message}", details={})
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    details: Obj = {}
    if attrs.name:
        details["name"] = attrs.name
        text = f'{qualified} "{attrs.name}" is forbidden: {message}'
    else:
        text = f"{qualified} is forbidden: {message}"
    if attrs.api_group:
        details["group"] = attrs.api_group
    details["kind"] = attrs.resource
    return errors.Forbidden(text, details=details)
