"""The default policy: every upstream ClusterRole and binding created, reconciled with kube's
autoupdate semantics, and aggregated ClusterRoles filled from their labelled roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.api import resources
from tinykube.api.clone import clone
from tinykube.apiserver import access, bootstrap, rbac, rbac_bootstrap
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.registry import Registry
from tinykube.apiserver.request_info import Attributes
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

G = "rbac.authorization.k8s.io"
DATA = yaml.safe_load(Path(rbac_bootstrap.__file__).with_name("rbac_defaults.yaml").read_text())
ROLES = {item["name"]: item for item in DATA["clusterRoles"]}
ROLE_KEY = f"{G}/clusterroles"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    reg = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    bootstrap.bootstrap(reg, api_host="127.0.0.1", api_port=6443)  # kube-system, as at start
    rbac_bootstrap.reconcile(reg)
    yield reg
    store.close()


def _stored(registry: Registry, name: str) -> dict[str, Any]:
    entry = registry.store.get(ROLE_KEY, "", name)
    assert entry is not None, name
    return entry.obj


def _aggregated(name: str) -> list[dict[str, Any]]:
    """The rules upstream's aggregated role ends with, from the data alone."""
    selector = ROLES[name]["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
    out: list[dict[str, Any]] = []
    for other in sorted(ROLES):
        labels = ROLES[other].get("labels") or {}
        if other != name and all(labels.get(k) == v for k, v in selector.items()):
            rules = ROLES[other].get("rules") or _aggregated(other)
            out.extend(r for r in rules if r not in out)
    return out


@pytest.mark.parametrize("name", sorted(ROLES))
def test_every_default_cluster_role(registry: Registry, name: str) -> None:
    role = _stored(registry, name)
    item = ROLES[name]
    assert role["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults",
                                          **(item.get("labels") or {})}
    assert role["metadata"]["annotations"] == {rbac_bootstrap.AUTOUPDATE: "true"}
    if "aggregationRule" in item:
        assert role["aggregationRule"] == item["aggregationRule"]
        assert role["rules"] == _aggregated(name) and role["rules"]
    else:
        assert role["rules"] == item["rules"]


@pytest.mark.parametrize("name", sorted(DATA["clusterRoleBindings"]))
def test_every_default_binding(registry: Registry, name: str) -> None:
    entry = registry.store.get(f"{G}/clusterrolebindings", "", name)
    assert entry is not None
    role, subjects = DATA["clusterRoleBindings"][name]
    assert entry.obj["roleRef"] == {"apiGroup": G, "kind": "ClusterRole", "name": role}
    got = [f"{s['kind']} " + (f"{s['namespace']}/{s['name']}" if s["kind"] == "ServiceAccount"
                              else s["name"]) for s in entry.obj.get("subjects") or ()]
    assert got == subjects


CONTROLLERS = DATA["controllerRoles"]
OURS = DATA["tinykubeControllerRoles"]


@pytest.mark.parametrize("prefix,name", [
    *(("system:controller:", n) for n in sorted(CONTROLLERS)),
    *(("tinykube:controller:", n) for n in sorted(OURS))])
def test_every_controller_role_is_bound_to_its_service_account(registry: Registry,
                                                               prefix: str, name: str) -> None:
    role = _stored(registry, prefix + name)
    assert role["rules"] == (CONTROLLERS if prefix.startswith("system") else OURS)[name]
    assert role["metadata"]["annotations"] == {rbac_bootstrap.AUTOUPDATE: "true"}
    binding = registry.store.get(f"{G}/clusterrolebindings", "", prefix + name)
    assert binding is not None
    assert binding.obj["roleRef"] == {"apiGroup": G, "kind": "ClusterRole",
                                      "name": prefix + name}
    assert binding.obj["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                        "namespace": "kube-system"}]


@pytest.mark.parametrize("key", sorted(DATA["namespaceRoles"]))
def test_every_namespace_role(registry: Registry, key: str) -> None:
    namespace, _, name = key.partition("/")  # kube-public's too (bootstrap-signer's)
    role = registry.store.get(f"{G}/roles", namespace, name)
    assert role is not None
    assert role.obj["rules"] == DATA["namespaceRoles"][key]
    assert role.obj["metadata"]["annotations"] == {rbac_bootstrap.AUTOUPDATE: "true"}


@pytest.mark.parametrize("key", sorted(DATA["namespaceRoleBindings"]))
def test_every_namespace_role_binding(registry: Registry, key: str) -> None:
    namespace, _, name = key.partition("/")
    binding = registry.store.get(f"{G}/rolebindings", namespace, name)
    assert binding is not None
    role, subjects = DATA["namespaceRoleBindings"][key]
    assert binding.obj["roleRef"] == {"apiGroup": G, "kind": "Role", "name": role}
    assert registry.store.get(f"{G}/roles", namespace, role) is not None
    got = [f"{s['kind']} " + (f"{s['namespace']}/{s['name']}" if s["kind"] == "ServiceAccount"
                              else s["name"]) for s in binding.obj["subjects"]]
    assert got == subjects


def test_token_cleaner_role_in_kube_system(registry: Registry) -> None:
    binding = registry.store.get(f"{G}/rolebindings", "kube-system",
                                 "system:controller:token-cleaner")
    assert binding is not None and binding.obj["roleRef"]["kind"] == "Role"
    assert binding.obj["subjects"] == [{"kind": "ServiceAccount", "name": "token-cleaner",
                                        "namespace": "kube-system"}]


def test_counts_match_upstream(registry: Registry) -> None:
    # upstream's 31 and kubeadm's system:coredns, upstream's 33 controller roles (v1.32's
    # default feature gates), and ours (controllers' and others')
    ours = len(OURS) + len(DATA["tinykubeClusterRoles"])
    assert registry.store.count(ROLE_KEY) == len(ROLES) + len(CONTROLLERS) + ours
    assert (len(ROLES), len(CONTROLLERS)) == (31 + 1, 33)
    # upstream's 12 and kubeadm's system:coredns, one per controller role, and kubeadm's
    # kubeadm:cluster-admins
    assert registry.store.count(f"{G}/clusterrolebindings") == \
        12 + 1 + len(CONTROLLERS) + ours + 1
    # upstream's 7 Roles and 7 RoleBindings (kube-system's 6, kube-public's 1)
    assert registry.store.count(f"{G}/roles") == registry.store.count(f"{G}/rolebindings") == 7


def test_the_kubelet_client_is_cluster_admin_through_rbac_not_masters(
        registry: Registry) -> None:
    """kubeadm >= 1.29: apiserver-kubelet-client is O=kubeadm:cluster-admins (k/k#121837)."""
    user = access.KUBELET_CLIENT
    assert rbac.MASTERS not in user.groups
    authorizer = rbac.RBACAuthorizer(registry.store)
    proxy = Attributes(verb="get", resource_request=True, api_group="", namespace="",
                       resource="nodes", subresource="proxy", name="n1")
    assert authorizer.allowed(user, proxy)
    # a user changing kubeadm's binding keeps the change (it is created once, not reconciled)
    key = f"{G}/clusterrolebindings"
    res = resources.must(G, "v1", "clusterrolebindings")
    registry.delete(res, "", rbac_bootstrap.KUBEADM_CLUSTER_ADMINS, {})
    assert not rbac.RBACAuthorizer(registry.store).allowed(user, proxy)
    rbac_bootstrap.reconcile(registry)
    assert registry.store.get(key, "", rbac_bootstrap.KUBEADM_CLUSTER_ADMINS) is not None


VIEW_RULE = ROLES["system:aggregate-to-view"]["rules"][0]
EXTRA = {"apiGroups": ["x"], "resources": ["y"], "verbs": ["get"]}
NO_UPDATE = {rbac_bootstrap.AUTOUPDATE: "false"}
# case: (stored rules, stored annotations or None for the default's, rules after or None)
RECONCILE: dict[str, tuple[list[dict[str, Any]] | None, dict[str, str] | None,
                           list[dict[str, Any]] | None]] = {
    "nothing missing": (None, None, None),
    "a removed rule comes back, an added one stays": (
        [EXTRA], None, [EXTRA, *ROLES["system:aggregate-to-view"]["rules"]]),
    "autoupdate false is left alone": ([EXTRA], NO_UPDATE, None),
}


@pytest.mark.parametrize("case", RECONCILE, ids=list(RECONCILE))
def test_reconciled_role(case: str) -> None:
    rules, annotations, expected = RECONCILE[case]
    wanted = next(r for r in rbac_bootstrap.default_cluster_roles()
                  if r["metadata"]["name"] == "system:aggregate-to-view")
    current = clone(wanted)
    if rules is not None:
        current["rules"] = rules
    if annotations is not None:
        current["metadata"]["annotations"] = annotations
    got = rbac_bootstrap.reconciled_role(current, wanted)
    assert (got["rules"] if got is not None else None) == expected


def test_a_changed_role_ref_is_recreated() -> None:
    wanted = rbac_bootstrap.default_cluster_role_bindings()[0]
    current = clone(wanted)
    current["roleRef"] = {**wanted["roleRef"], "name": "view"}
    current["subjects"] = [{"apiGroup": G, "kind": "User", "name": "me"}]
    got, recreate = rbac_bootstrap.reconciled_binding(current, wanted)
    assert recreate and got is not None and got["roleRef"] == wanted["roleRef"]
    assert got["subjects"] == [current["subjects"][0], *wanted["subjects"]]


def test_restart_restores_a_default_but_keeps_user_changes(registry: Registry) -> None:
    res = resources.must(G, "v1", "clusterroles")
    view = clone(_stored(registry, "system:aggregate-to-view"))
    view["rules"] = [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]
    registry.update(res, view)
    bindings = resources.must(G, "v1", "clusterrolebindings")
    registry.delete(bindings, "", "system:discovery", {})
    rbac_bootstrap.reconcile(registry)
    rules = _stored(registry, "system:aggregate-to-view")["rules"]
    assert rules[0]["apiGroups"] == ["example.com"] and VIEW_RULE in rules
    assert registry.store.get(bindings.storage_key, "", "system:discovery") is not None
    assert view["rules"][0] in _stored(registry, "view")["rules"]  # re-aggregated


def test_a_labelled_role_is_aggregated_into_edit_and_admin(registry: Registry) -> None:
    res = resources.must(G, "v1", "clusterroles")
    rule = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["create"]}
    registry.create(res, {"metadata": {"name": "widgets-edit", "labels": {
        "rbac.authorization.k8s.io/aggregate-to-edit": "true"}}, "rules": [rule]})
    rbac_bootstrap.aggregate(registry)
    assert rule in _stored(registry, "edit")["rules"]
    assert rule in _stored(registry, "admin")["rules"]
    assert rule not in _stored(registry, "view")["rules"]


@pytest.mark.parametrize("name", sorted(DATA["tinykubeClusterRoles"]))
def test_tinykube_cluster_roles_are_bound_to_their_subjects(registry: Registry,
                                                            name: str) -> None:
    """tinykube's own ClusterRoles (the nftables proxy's NetworkPolicy reads), beside
    upstream's, each bound by a binding of its name."""
    item = DATA["tinykubeClusterRoles"][name]
    assert _stored(registry, name)["rules"] == item["rules"]
    entry = registry.store.get(f"{G}/clusterrolebindings", "", name)
    assert entry is not None
    assert [f"{s['kind']} {s['name']}" for s in entry.obj["subjects"]] == item["subjects"]


def test_node_rules_are_the_system_node_role() -> None:
    """The Node authorizer's static rules are upstream's NodeRules, the `system:node` data;
    the role's binding has no subjects (nodes get it from the Node authorizer only)."""
    assert list(rbac_bootstrap.node_rules()) == ROLES["system:node"]["rules"]
    assert DATA["clusterRoleBindings"]["system:node"] == ["system:node", []]
