"""The components' identities against the default policy: every controller's account is bound,
and what each may do is its upstream role's (a table of requests tinykube's controllers make,
and of requests upstream's least privilege refuses them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinykube import identities
from tinykube.apiserver import bootstrap, rbac, rbac_bootstrap
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.registry import Registry
from tinykube.apiserver.request_info import Attributes
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend


@pytest.fixture(scope="module")
def authorizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rbac.RBACAuthorizer]:
    store = Store(SQLiteBackend(tmp_path_factory.mktemp("ids") / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)  # kube-system first
    rbac_bootstrap.reconcile(registry)
    yield rbac.RBACAuthorizer(store)
    store.close()


def _user(component: str) -> rbac.User:
    name, groups = identities.COMPONENTS[component]
    return rbac.User(name, (*groups, "system:authenticated"))


def _request(text: str) -> Attributes:
    """`VERB GROUP/RESOURCE[/SUB] [NAMESPACE] [NAME]` (`core` for the legacy group, `-` for
    no namespace)."""
    verb, what, *rest = text.split()
    group, _, resource = what.partition("/")
    resource, _, sub = resource.partition("/")
    namespace, name = [*rest, "", ""][:2]
    namespace = "" if namespace == "-" else namespace
    return Attributes(verb=verb, resource_request=True, api_group="" if group == "core"
                      else group, namespace=namespace, resource=resource, subresource=sub,
                      name=name)


# (tinykube controller, request, allowed)
REQUESTS = [
    ("deployment-controller", "create apps/replicasets ns", True),
    ("deployment-controller", "patch apps/deployments/status ns d", True),  # ours: a patch
    ("deployment-controller", "delete core/pods ns p", False),
    ("replicaset-controller", "create core/pods ns", True),
    ("replicaset-controller", "create apps/replicasets ns", False),
    ("statefulset-controller", "create core/persistentvolumeclaims ns", True),
    ("statefulset-controller", "delete apps/statefulsets ns web", False),
    ("endpointslice-controller", "update discovery.k8s.io/endpointslices ns s", True),
    ("endpointslice-controller", "update core/endpoints ns s", False),
    ("endpoints-controller", "update core/endpoints ns s", True),
    ("endpointslice-mirroring-controller", "create discovery.k8s.io/endpointslices ns", True),
    ("job-controller", "create core/pods ns", True),
    ("job-controller", "create batch/jobs ns", False),
    ("cronjob-controller", "create batch/jobs ns", True),
    ("namespace-controller", "deletecollection apps/deployments ns", True),
    ("namespace-controller", "update core/namespaces/finalize - ns", True),
    ("namespace-controller", "create core/pods ns", False),
    ("garbage-collector", "delete example.com/widgets ns w", True),
    ("garbage-collector", "create core/pods ns", False),
    ("node-lifecycle-controller", "patch core/nodes/status - n1", True),
    ("node-lifecycle-controller", "delete core/pods ns p", True),
    ("horizontal-pod-autoscaler", "update apps/deployments/scale ns d", True),
    ("horizontal-pod-autoscaler", "update apps/deployments ns d", False),
    ("csrapproving-controller", "approve certificates.k8s.io/signers - "
     "kubernetes.io/kube-apiserver-client-kubelet", True),
    ("csrapproving-controller", "approve certificates.k8s.io/signers - "
     "kubernetes.io/kubelet-serving", False),
    ("serviceaccounts-controller", "create core/serviceaccounts ns", True),
    ("serviceaccounts-controller", "update core/configmaps ns kube-root-ca.crt", False),
    ("root-ca-cert-publisher", "update core/configmaps ns kube-root-ca.crt", True),
    ("token-cleaner", "delete core/secrets kube-system bootstrap-token-abcdef", True),
    ("token-cleaner", "delete core/secrets default s", False),  # a Role in kube-system only
    ("local-path-provisioner", "create core/persistentvolumes", True),  # ours
    ("local-path-provisioner", "delete core/persistentvolumeclaims ns c", False),
    ("service-selector-watch", "create core/events ns", True),  # ours
    ("ttl-after-finished-controller", "delete batch/jobs ns j", True),
    ("resourcequota-controller", "update core/resourcequotas/status ns q", True),
    ("pvc-protection-controller", "patch core/persistentvolumeclaims ns c", True),  # ours
]


@pytest.mark.parametrize("controller,request_,allowed", REQUESTS,
                         ids=[f"{c}: {r}" for c, r, _ in REQUESTS])
def test_a_controller_may_what_its_role_says(authorizer: rbac.RBACAuthorizer,
                                             controller: str, request_: str,
                                             allowed: bool) -> None:
    user = _user(identities.controller_component(controller))
    assert user.name == "system:serviceaccount:kube-system:" + \
        identities.CONTROLLER_ACCOUNTS[controller]
    assert authorizer.allowed(user, _request(request_)) is allowed


@pytest.mark.parametrize("controller", sorted(identities.CONTROLLER_ACCOUNTS))
def test_every_controller_account_is_bound(authorizer: rbac.RBACAuthorizer,
                                           controller: str) -> None:
    """Each runs as an account some default role binds: it can at least record an Event."""
    user = _user(identities.controller_component(controller))
    event = _request("create core/events kube-system")
    if controller == "namespace-controller":  # upstream's role records none
        event = _request("delete core/pods ns p")
    assert authorizer.allowed(user, event)


def test_the_manager_holds_its_lease_and_reads_everything(
        authorizer: rbac.RBACAuthorizer) -> None:
    manager = _user(identities.CONTROLLER_MANAGER)
    assert manager.name == "system:kube-controller-manager"
    lease = "coordination.k8s.io/leases kube-system"
    assert authorizer.allowed(manager, _request(f"update {lease} kube-controller-manager"))
    # kube's Role system::leader-locking-kube-controller-manager: any Lease of kube-system
    # (the scheduler's too, as in kube), and none elsewhere
    assert authorizer.allowed(manager, _request(f"update {lease} kube-scheduler"))
    assert not authorizer.allowed(manager, _request("update coordination.k8s.io/leases ns x"))
    assert authorizer.allowed(manager, _request("watch apps/deployments"))
    assert not authorizer.allowed(manager, _request("create apps/replicasets ns"))


def test_user_agents() -> None:
    assert identities.user_agent("kube-controller-manager/deployment-controller") == \
        "kube-controller-manager/v1.32.0 (linux/amd64) tinykube/deployment-controller"
    assert identities.user_agent("kube-scheduler") == \
        "kube-scheduler/v1.32.0 (linux/amd64) tinykube"
    assert identities.user_agent(identities.node_component("n1")) == \
        "kubelet/v1.32.0 (linux/amd64) tinykube"
    assert identities.node_user("n1") == ("system:node:n1", ("system:nodes",))


# (request, allowed) of the cluster DNS, kube-system/coredns: kubeadm's system:coredns, and
# tinykube's two ConfigMaps beside it
DNS_REQUESTS = [
    ("watch core/services", True), ("list discovery.k8s.io/endpointslices", True),
    ("watch core/pods", True), ("list core/namespaces", True),
    ("watch core/configmaps kube-system tinykube-dns-drills", True),
    ("list core/configmaps kube-system tinykube-dns-querylog", True),
    ("list core/configmaps kube-system", False), ("get core/secrets kube-system s", False),
    ("create core/services ns", False), ("get core/services ns s", False),
]


@pytest.mark.parametrize("request_,allowed", DNS_REQUESTS, ids=[r for r, _ in DNS_REQUESTS])
def test_the_cluster_dns_may_what_corednss_role_says(authorizer: rbac.RBACAuthorizer,
                                                     request_: str, allowed: bool) -> None:
    user = _user("coredns")
    assert user.name == "system:serviceaccount:kube-system:coredns"
    assert authorizer.allowed(user, _request(request_)) is allowed


# (request, allowed) of the service proxy, system:kube-proxy: kube's system:node-proxier, and
# tinykube's NetworkPolicy reads beside it (the nftables proxy enforces them)
PROXY_REQUESTS = [
    ("watch core/services", True), ("list discovery.k8s.io/endpointslices", True),
    ("get core/nodes - n1", True), ("create core/events ns", True),
    ("watch networking.k8s.io/networkpolicies", True), ("list core/pods", True),
    ("list core/namespaces", True),
    ("get core/secrets ns s", False), ("update core/services ns s", False),
    ("create networking.k8s.io/networkpolicies ns", False),
]


@pytest.mark.parametrize("request_,allowed", PROXY_REQUESTS,
                         ids=[r for r, _ in PROXY_REQUESTS])
def test_the_proxy_may_what_node_proxier_says(authorizer: rbac.RBACAuthorizer, request_: str,
                                              allowed: bool) -> None:
    user = _user("kube-proxy")
    assert user.name == "system:kube-proxy"
    assert authorizer.allowed(user, _request(request_)) is allowed


def test_no_binding_grants_nodes_anything_without_the_node_authorizer(
        authorizer: rbac.RBACAuthorizer) -> None:
    """RBAC alone gives a node nothing of `system:node` (the Node authorizer does)."""
    node = rbac.User(*identities.node_user("n1"))
    assert not authorizer.allowed(node, _request("list core/services"))
    assert not authorizer.allowed(node, _request("get core/nodes - n1"))
