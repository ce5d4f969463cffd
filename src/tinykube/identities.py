"""Who tinykube's own components are to the API server: kube's users for them.

A table (`COMPONENTS`): component -> the user it authenticates as (a static token, see
`apiserver.static_tokens`) and the User-Agent it sends, so the audit log and RBAC see
`system:kube-scheduler` where kube-apiserver would. Only the components listed have an
identity of their own; the others still share the admin's credential (the README says which).

Each node agent of `tinykube up` is its node, as a kubelet is: `system:node:<name>` in
`system:nodes` (`node_user`), the identity kube's Node authorizer and NodeRestriction know
(`apiserver.nodeauthz`, `apiserver.noderestriction`): it reads only its own Node and Lease, its
pods and what they reference. Its credential is a static token too, not a client certificate
as kubeadm's `kubelet.conf` has: the components reach the API server over a private unix socket
in plain HTTP, where there is no TLS handshake to carry a certificate, and the token file is how
every other component of `up` authenticates. A node that joins with `tinykube node --token`
gets a certificate instead (`join`), as a kubelet's TLS bootstrap does. The service proxy of
both network modes (and the netns mode's routes to joined nodes' pods) is kube-proxy's user,
`system:kube-proxy`, bound by kube's default policy to `system:node-proxier`; the nftables
proxy also enforces NetworkPolicies, which kube leaves to the network plugin, so tinykube binds
that user to its own `tinykube:network-policy-enforcer` as well (`apiserver/rbac_defaults.yaml`).

The controllers run as kube-controller-manager does with `--use-service-account-credentials`
(kubeadm's setting): the manager itself is `system:kube-controller-manager` (its Lease, its
shared informers' lists and watches, the token controller, which must work before any account
has a token), and each controller writes with a client of its own that authenticates as the
service account `system:serviceaccount:kube-system:NAME` (`CONTROLLER_ACCOUNTS`), bound to
upstream's ClusterRole `system:controller:NAME` (and, where tinykube's controller needs more,
to tinykube's `tinykube:controller:NAME`: `apiserver/rbac_defaults.yaml`). Its user agent is
the manager's with `/NAME` appended, as client-go's `rest.AddUserAgent` makes it. Upstream
mints those accounts' tokens with TokenRequest; tinykube's are static tokens, like the
scheduler's.

Imports nothing: `cluster` (which makes the tokens) and `components` (which uses them) both
read it.
"""

from __future__ import annotations

VERSION = "v1.32.0"
CONTROLLER_MANAGER = "kube-controller-manager"
SA_NAMESPACE = "kube-system"

#: tinykube's controller (its `Controller.name`) -> the kube-system service account it runs
#: as: upstream's controller's account, or one of tinykube's own for the controllers kube has
#: not (local-path-provisioner, service-selector-watch). Not here: the token controller, which
#: runs as the manager itself, as upstream's does.
CONTROLLER_ACCOUNTS: dict[str, str] = {
    "horizontal-pod-autoscaler": "horizontal-pod-autoscaler",
    "node-lifecycle-controller": "node-controller",
    "node-ipam": "node-controller",  # upstream's nodeipam runs as node-controller too
    "statefulset-controller": "statefulset-controller",
    "deployment-controller": "deployment-controller",
    "persistentvolume-binder": "persistent-volume-binder",
    "local-path-provisioner": "local-path-provisioner",
    "pvc-protection-controller": "pvc-protection-controller",
    "pv-protection-controller": "pv-protection-controller",
    "replicaset-controller": "replicaset-controller",
    "replication-controller": "replication-controller",
    "daemonset-controller": "daemon-set-controller",
    "disruption-controller": "disruption-controller",
    "endpointslice-controller": "endpointslice-controller",
    "endpoints-controller": "endpoint-controller",
    "endpointslice-mirroring-controller": "endpointslicemirroring-controller",
    "namespace-controller": "namespace-controller",
    "serviceaccounts-controller": "service-account-controller",
    "root-ca-cert-publisher": "root-ca-cert-publisher",  # half of serviceaccounts-controller
    "job-controller": "job-controller",
    "cronjob-controller": "cronjob-controller",
    "ttl-after-finished-controller": "ttl-after-finished-controller",
    "csrapproving-controller": "certificate-controller",
    "csrsigning-controller": "certificate-controller",
    "garbage-collector": "generic-garbage-collector",
    "resourcequota-controller": "resourcequota-controller",
    "service-selector-watch": "service-selector-watch",
    "token-cleaner": "token-cleaner",
}

SA_GROUPS = ("system:serviceaccounts", f"system:serviceaccounts:{SA_NAMESPACE}")


def account_user(account: str) -> str:
    return f"system:serviceaccount:{SA_NAMESPACE}:{account}"


def controller_component(controller: str) -> str:
    """The `COMPONENTS` key of a controller's client: `kube-controller-manager/ACCOUNT`."""
    return f"{CONTROLLER_MANAGER}/{CONTROLLER_ACCOUNTS[controller]}"


# component -> (user, groups); bound by kube's default policy (apiserver/rbac_defaults.yaml)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kube-scheduler": ("system:kube-scheduler", ()),
    # the service proxy: userspace (host network) or nftables (netns, with NetworkPolicies)
    "kube-proxy": ("system:kube-proxy", ()),
    CONTROLLER_MANAGER: ("system:kube-controller-manager", ()),
    # the cluster DNS, as kubeadm's CoreDNS: bound to system:coredns (and tinykube's
    # tinykube:controller:coredns for its drill and query-log ConfigMaps)
    "coredns": (account_user("coredns"), SA_GROUPS),
    **{f"{CONTROLLER_MANAGER}/{account}": (account_user(account), SA_GROUPS)
       for account in sorted(set(CONTROLLER_ACCOUNTS.values()))},
}


KUBELET = "kubelet"
NODES_GROUP = "system:nodes"


def node_user(node: str) -> tuple[str, tuple[str, ...]]:
    """A node's (user, groups): kube's `system:node:<name>` in `system:nodes`."""
    return f"system:node:{node}", (NODES_GROUP,)


def node_component(node: str) -> str:
    """The component name of a node's agent, `kubelet/NODE` (its token's key)."""
    return f"{KUBELET}/{node}"


def user_agent(component: str) -> str:
    """kube's form: `NAME/VERSION (OS/ARCH) kubernetes/COMMIT`, with tinykube for the commit;
    a controller's (`kube-controller-manager/ACCOUNT`) has `/ACCOUNT` at the end, a node
    agent's (`kubelet/NODE`) is the kubelet's."""
    name, _, account = component.partition("/")
    if name == KUBELET:
        account = ""
    return f"{name}/{VERSION} (linux/amd64) tinykube" + (f"/{account}" if account else "")
