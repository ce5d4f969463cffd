"""The default RBAC policy, created and reconciled at start, and ClusterRole aggregation.

`default_*()` read `rbac_defaults.yaml` (upstream's bootstrap policy testdata, see its header)
into the ClusterRoles and ClusterRoleBindings kube-apiserver creates, with the controller roles
(`system:controller:NAME`, each bound to the ServiceAccount kube-system/NAME), the namespaced
Roles and RoleBindings of kube-system and kube-public (token-cleaner's, the leader-locking
ones, ...), tinykube's own `tinykube:controller:NAME` beside them (see `identities`), and
tinykube's ClusterRoles for other users (`tinykubeClusterRoles`: the nftables proxy's
NetworkPolicy reads). `tests/unit/apiserver/test_rbac_golden.py` compares the result with
upstream's v1.32 golden files (`tests/golden/rbac-v1.32/`) and lists where we differ.
`reconcile` applies them with kube's `rbac.authorization.kubernetes.io/autoupdate` semantics
(the storage post-start hook `ensure-rbac`): a missing object is created; an existing one
whose annotation is not `"false"` gets what it lacks (rules, aggregation selectors, labels and
annotations of a role; subjects of a binding; a binding whose roleRef changed is deleted and
made anew, since roleRef is immutable); extra rules and subjects a user added stay. An object
annotated `"false"` is left as it is.

Aggregation (kube-controller-manager's clusterrole-aggregation controller): a ClusterRole with
an `aggregationRule` has as `rules` the rules of every other ClusterRole that one of its
selectors matches, in name order, without duplicates. `aggregated_rules` is that decision;
`aggregate_forever` runs it on every ClusterRole change. It runs inside the API server here
(through the registry, as a post-start hook would), not in the controller manager.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any

import yaml

from tinykube.api import errors, resources, selectors
from tinykube.api.clone import clone
from tinykube.apiserver.registry import Registry
from tinykube.store.cache import Entry

log = logging.getLogger(__name__)
Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_DATA = Path(__file__).with_name("rbac_defaults.yaml")


def _subject(text: str) -> Obj:
    kind, _, name = text.partition(" ")
    if kind == "ServiceAccount":
        namespace, _, account = name.partition("/")
        return {"kind": kind, "name": account, "namespace": namespace}
    return {"apiGroup": GROUP, "kind": kind, "name": name}


def _meta(name: str, labels: Obj | None = None) -> Obj:
    return {"name": name, "labels": {**BOOTSTRAPPING, **(labels or {})},
            "annotations": {AUTOUPDATE: "true"}}


#: libyaml's loader where PyYAML has it: the policy file parses in 15 ms instead of 125 ms,
#: on every start's path to ready (our own file: no need for `api.bounds`' limits).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _data() -> Obj:
    data = yaml.load(_DATA.read_text(), Loader=_LOADER)
    assert isinstance(data, dict)
    return data


#: The prefixes of the controller roles (`controllerRoles`: upstream's; `tinykubeControllerRoles`:
#: ours), each bound to the ServiceAccount kube-system/NAME a controller runs as.
CONTROLLER_PREFIX, OUR_CONTROLLER_PREFIX = "system:controller:", "tinykube:controller:"
CONTROLLER_NAMESPACE = "kube-system"


def _controller_items() -> list[tuple[str, str, list[Obj]]]:
    """(role name, account, rules) of every controller ClusterRole, upstream's then ours."""
    data = _data()
    return [(f"{prefix}{account}", account, rules)
            for prefix, key in ((CONTROLLER_PREFIX, "controllerRoles"),
                                (OUR_CONTROLLER_PREFIX, "tinykubeControllerRoles"))
            for account, rules in (data.get(key) or {}).items()]


NODE_ROLE = "system:node"


@functools.cache
def node_rules() -> tuple[Obj, ...]:
    """The `system:node` ClusterRole's rules: upstream's `bootstrappolicy.NodeRules()`, which
    the Node authorizer grants every node (the role's own binding has no subjects)."""
    role = next(r for r in _data()["clusterRoles"] if r["name"] == NODE_ROLE)
    return tuple(role["rules"])


def default_cluster_roles() -> list[Obj]:
    out = []
    items = [*_data()["clusterRoles"],
             *({"name": name, "rules": rules} for name, _, rules in _controller_items()),
             *({"name": name, "rules": item["rules"]}
               for name, item in (_data().get("tinykubeClusterRoles") or {}).items())]
    for item in items:
        role: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole",
                     "metadata": _meta(item["name"], item.get("labels"))}
        if "aggregationRule" in item:
            role["aggregationRule"] = item["aggregationRule"]
        role["rules"] = item.get("rules") or []
        out.append(role)
    return out


def default_cluster_role_bindings() -> list[Obj]:
    out = []
    bindings = {**_data()["clusterRoleBindings"],
                **{name: [name, [f"ServiceAccount {CONTROLLER_NAMESPACE}/{account}"]]
                   for name, account, _ in _controller_items()},
                **{name: [name, item["subjects"]]
                   for name, item in (_data().get("tinykubeClusterRoles") or {}).items()}}
    for name, (role, subjects) in bindings.items():
        binding: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
                        "metadata": _meta(name),
                        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}}
        if subjects:
            binding["subjects"] = [_subject(s) for s in subjects]
        out.append(binding)
    return out


def _namespaced(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def default_roles() -> list[Obj]:
    """The namespaced Roles (`namespaceRoles`: kube-system's and kube-public's)."""
    out: list[Obj] = []
    for key, rules in (_data().get("namespaceRoles") or {}).items():
        namespace, name = _namespaced(key)
        out.append({"apiVersion": f"{GROUP}/v1", "kind": "Role",
                    "metadata": {**_meta(name), "namespace": namespace}, "rules": rules})
    return out


def default_role_bindings() -> list[Obj]:
    """The namespaced RoleBindings (`namespaceRoleBindings`), each to a Role of its namespace."""
    out: list[Obj] = []
    for key, (role, subjects) in (_data().get("namespaceRoleBindings") or {}).items():
        namespace, name = _namespaced(key)
        out.append({"apiVersion": f"{GROUP}/v1", "kind": "RoleBinding",
                    "metadata": {**_meta(name), "namespace": namespace},
                    "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": role},
                    "subjects": [_subject(s) for s in subjects]})
    return out


# --- reconciliation -------------------------------------------------------------------

def _merge_meta(current: Obj, wanted: Obj) -> None:
    meta = current["metadata"]
    for key in ("labels", "annotations"):
        meta[key] = {**wanted["metadata"][key], **(meta.get(key) or {})}


def reconciled_role(current: Obj, wanted: Obj) -> Obj | None:
    """The ClusterRole to store instead of `current`, or None when nothing is missing."""
    if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return None
    out = clone(current)
    _merge_meta(out, wanted)
    if "aggregationRule" in wanted:
        have = (out.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        missing = [s for s in wanted["aggregationRule"]["clusterRoleSelectors"]
                   if s not in have]
        out["aggregationRule"] = {"clusterRoleSelectors": [*have, *missing]}
    else:
        rules = list(out.get("rules") or [])
        out["rules"] = rules + [r for r in wanted["rules"] if r not in rules]
    return out if out != current else None


def reconciled_binding(current: Obj, wanted: Obj) -> tuple[Obj | None, bool]:
    """(the binding to store, whether the old one must be deleted first: roleRef changed)."""
    if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return None, False
    out = clone(current)
    _merge_meta(out, wanted)
    subjects = list(out.get("subjects") or [])
    missing = [s for s in wanted.get("subjects") or [] if s not in subjects]
    if subjects or missing:
        out["subjects"] = subjects + missing
    if out.get("roleRef") != wanted["roleRef"]:
        out["roleRef"] = wanted["roleRef"]
        return out, True
    return (out if out != current else None), False


def _ensure(registry: Registry, plural: str, wanted: Obj) -> None:
    res = resources.must(GROUP, "v1", plural)
    name, namespace = wanted["metadata"]["name"], wanted["metadata"].get("namespace", "")
    entry = registry.store.get(res.storage_key, namespace, name)
    if entry is None:
        with contextlib.suppress(errors.AlreadyExists):
            registry.create(res, clone(wanted))
        return
    if plural in ("clusterroles", "roles"):
        update, recreate = reconciled_role(entry.obj, wanted), False
    else:
        update, recreate = reconciled_binding(entry.obj, wanted)
    if update is None:
        return
    if recreate:
        registry.delete(res, namespace, name, {})
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            update["metadata"].pop(key, None)
        registry.create(res, update)
    else:
        registry.update(res, update)


# kubeadm init's own binding (not upstream's bootstrap policy): its group is the one of
# kubeadm's admin.conf and, since 1.29, of the apiserver-kubelet-client certificate
# (kubernetes/kubernetes#121837), so the API server's kubelet identity is cluster-admin
# through RBAC instead of system:masters
KUBEADM_CLUSTER_ADMINS = "kubeadm:cluster-admins"


def kubeadm_cluster_admins() -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": KUBEADM_CLUSTER_ADMINS},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [_subject(f"Group {KUBEADM_CLUSTER_ADMINS}")]}


def _create_missing(registry: Registry, wanted: Obj) -> None:
    """kubeadm creates its binding once and leaves it to the user afterwards."""
    res = resources.must(GROUP, "v1", "clusterrolebindings")
    if registry.store.get(res.storage_key, "", wanted["metadata"]["name"]) is None:
        with contextlib.suppress(errors.AlreadyExists):
            registry.create(res, clone(wanted))


def reconcile(registry: Registry) -> None:
    """Create or complete the default policy (at every start), then aggregate once."""
    _create_missing(registry, kubeadm_cluster_admins())
    wanted = [("clusterroles", r) for r in default_cluster_roles()] + \
        [("clusterrolebindings", b) for b in default_cluster_role_bindings()] + \
        [("roles", r) for r in default_roles()] + \
        [("rolebindings", b) for b in default_role_bindings()]
    for plural, obj in wanted:
        # another API server (etcd) may be reconciling the same object: its write stands
        with contextlib.suppress(errors.Conflict, errors.NotFound, errors.AlreadyExists):
            _ensure(registry, plural, obj)
    aggregate(registry)


# --- aggregation ----------------------------------------------------------------------

def aggregated_rules(role: Obj, roles: list[Obj]) -> list[Obj] | None:
    """The rules an aggregated ClusterRole has, from all ClusterRoles; None if not aggregated."""
    rule = role.get("aggregationRule")
    if not isinstance(rule, dict):
        return None
    chosen = [selectors.from_label_selector(s) for s in rule.get("clusterRoleSelectors") or ()
              if isinstance(s, dict)]
    name = role["metadata"]["name"]
    out: list[Obj] = []
    for other in sorted(roles, key=lambda r: r["metadata"]["name"]):
        if other["metadata"]["name"] == name:
            continue
        labels = other["metadata"].get("labels")
        if any(selectors.match_labels(sel, labels) for sel in chosen):
            out.extend(r for r in other.get("rules") or () if r not in out)
    return out


def _aggregate_pass(registry: Registry) -> list[Entry]:
    """Write every aggregated ClusterRole whose rules differ from what it aggregates; the
    entries of the writes made."""
    res = resources.must(GROUP, "v1", "clusterroles")
    roles = [e.obj for e in registry.store.list(res.storage_key)]
    writes = []
    for role in roles:
        rules = aggregated_rules(role, roles)
        if rules is not None and rules != (role.get("rules") or []):
            updated = clone(role)
            updated["rules"] = rules
            with contextlib.suppress(errors.Conflict, errors.NotFound):
                writes.append(registry.update(res, updated))
    return writes


def aggregate(registry: Registry) -> None:
    """Aggregate, repeated while something changed (an aggregated role may itself be
    aggregated: edit into admin). On SQLite a write is visible at once; on etcd it is in
    flight until confirmed, so `aggregate_settled` follows this one."""
    for _ in range(10):  # bounded: chains of aggregation are short
        if not _aggregate_pass(registry):
            return


async def aggregate_settled(registry: Registry) -> None:
    """`aggregate`, waiting for each pass's writes before the next: on etcd a write is
    confirmed by etcd later, and one made over a write still in flight (the bootstrap's
    creates, or the previous pass's update) fails as stale and is made again by the next
    pass."""
    for _ in range(10):
        writes = _aggregate_pass(registry)
        if not writes:
            return
        for entry in writes:
            with contextlib.suppress(errors.APIError):
                await registry.store.confirm(entry)


async def _aggregate_logged(registry: Registry) -> None:
    try:
        await aggregate_settled(registry)
    except errors.APIError as error:
        log.warning("aggregating ClusterRoles: %s", error)


async def aggregate_forever(registry: Registry) -> None:
    """Re-aggregate after every ClusterRole change (a task of the API server)."""
    res = resources.must(GROUP, "v1", "clusterroles")
    while True:
        watcher = registry.store.watch(res.storage_key, None, registry.store.resource_version)
        try:
            await _aggregate_logged(registry)  # what the start's own pass could not confirm
            while not watcher.closed:
                event = await watcher.queue.get()
                if event is None:
                    break
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                await _aggregate_logged(registry)
        finally:
            watcher.close()
