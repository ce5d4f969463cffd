"""The Node authorizer: what a kubelet may do, decided by what is bound to its node
(kube-apiserver's `--authorization-mode=Node,RBAC`, `plugin/pkg/auth/authorizer/node`, as v1.32
has it with `AuthorizeNodeWithSelectors`, beta and on by default there).

A request is a node's when its user is `system:node:<name>` in the group `system:nodes`
(`node_identity`, kube's `nodeidentifier`); every other request gets no opinion and goes on to
RBAC. A node's request is decided by resource:

- secrets, configmaps: get, list and watch of one object (a list with `metadata.name=NAME`),
  only if the object is related to the node; persistentvolumeclaims, persistentvolumes,
  resourceclaims, volumeattachments: get only, if related (a claim's `status` also
  update/patch); serviceaccounts: only `create` of `token` for an account a pod of the node runs
  as;
- leases (only in `kube-node-lease`, named after the node) and csinodes (named after the node):
  get, create, update, patch, delete;
- nodes: get, list and watch of its own Node only (`metadata.name=NAME`); create, update,
  patch and `status` writes of any Node (NodeRestriction keeps them to its own);
- pods: get of a pod bound to it, list and watch with `spec.nodeName=NAME`; create and delete
  (mirror pods, left to NodeRestriction), `status` update/patch, `eviction` create;
- anything else: the static rules of the `system:node` ClusterRole (upstream's
  `bootstrappolicy.NodeRules()`, the same data: `rbac_defaults.yaml`), which RBAC itself no
  longer grants (its binding has no subjects).

"Related" is upstream's graph: node <- pod (`spec.nodeName`) <- secret, configmap, claim,
service account, resource claim (`api.podrefs`), claim <- volume (`spec.claimRef`) <- secret;
node <- volume attachment. `NodeGraph` keeps it from store watches of pods, volumes and volume
attachments, drained at each node request (the store publishes a write before its response is
sent, so a pod bound a moment ago is there); a watch that fell behind is started again from a
fresh list. It starts on the first node request: a cluster without node identities pays
nothing. A denial is no opinion with upstream's reason (`no relationship found between node
'n1' and this object`), which kube's 403 message ends with when RBAC denies too.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tinykube.api import podrefs
from tinykube.apiserver import rbac
from tinykube.apiserver.rbac import User
from tinykube.apiserver.request_info import Attributes
from tinykube.store.cache import Event, Store, Watcher

Obj = dict[str, Any]
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
Decision = tuple[bool, str]  # (allowed, the reason of a denial)
NO_OPINION: Decision = (False, "")
ALLOW: Decision = (True, "")
_WATCHED = ("core/pods", "core/persistentvolumes", "storage.k8s.io/volumeattachments")


def node_identity(user: User) -> tuple[str, bool]:
    """(node name, is a node): kube's default NodeIdentifier. A user named `system:node:X`
    outside `system:nodes` is no node; one inside it with an empty X is a node of no name."""
    if not user.name.startswith(NODE_PREFIX) or NODES_GROUP not in user.groups:
        return "", False
    return user.name[len(NODE_PREFIX):], True


def selects(selector: str, field: str, value: str) -> bool:
    """Whether a field selector requires `field=value` (`=` or `==`)."""
    for term in selector.split(","):
        key, op, wanted = term.partition("==") if "==" in term else term.partition("=")
        if op and not key.endswith("!") and key.strip() == field and wanted.strip() == value:
            return True
    return False


@dataclasses.dataclass(frozen=True)
class _Pod:
    node: str
    refs: tuple[tuple[str, str], ...]  # (resource, name) in the pod's namespace
    ephemeral: int  # how many ephemeral containers its refs were read with


class NodeGraph:
    """Which objects are related to which node (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._watchers: dict[str, Watcher] = {}
        self._pods: dict[tuple[str, str], _Pod] = {}
        # (resource, namespace, name) -> node -> how many of its pods reference it
        self._refs: dict[tuple[str, str, str], collections.Counter[str]] = {}
        self._pv_claims: dict[str, tuple[str, str]] = {}  # volume -> (namespace, claim)
        self._pv_secrets: dict[tuple[str, str], set[str]] = {}  # (ns, secret) -> volumes
        self._secrets_of_pv: dict[str, set[tuple[str, str]]] = {}
        self._attachments: dict[str, str] = {}  # volume attachment -> node

    def __repr__(self) -> str:
        return f"NodeGraph(pods={len(self._pods)}, references={len(self._refs)})"

    def close(self) -> None:
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers.clear()

    # -- keeping it current

    def refresh(self) -> None:
        """Apply what changed since the last look (everything, on the first)."""
        for resource in _WATCHED:
            watcher = self._watchers.get(resource)
            if watcher is None or watcher.closed:
                self._forget(resource)
                watcher = self._watchers[resource] = self.store.watch(resource, None, None)
            while not watcher.queue.empty():
                event = watcher.queue.get_nowait()
                if event is None:  # closed (fell behind): started again at the next look
                    break
                self._apply(resource, event)

    def _forget(self, resource: str) -> None:
        if resource == "core/pods":
            self._pods.clear()
            self._refs.clear()
        elif resource == "core/persistentvolumes":
            self._pv_claims.clear()
            self._pv_secrets.clear()
            self._secrets_of_pv.clear()
        else:
            self._attachments.clear()

    def _apply(self, resource: str, event: Event) -> None:
        obj = event.entry.obj
        meta = obj.get("metadata") or {}
        gone = event.type == "DELETED"
        if resource == "core/pods":
            self._set_pod(str(meta.get("namespace", "")), str(meta.get("name", "")),
                          None if gone else obj)
        elif resource == "core/persistentvolumes":
            self._set_pv(str(meta.get("name", "")), None if gone else obj)
        else:
            name = str(meta.get("name", ""))
            node = str((obj.get("spec") or {}).get("nodeName") or "")
            if gone or not node:
                self._attachments.pop(name, None)
            else:
                self._attachments[name] = node

    def _set_pod(self, namespace: str, name: str, pod: Obj | None) -> None:
        key = (namespace, name)
        old = self._pods.get(key)
        node = str(((pod or {}).get("spec") or {}).get("nodeName") or "")
        ephemeral = len(((pod or {}).get("spec") or {}).get("ephemeralContainers") or ())
        if old is not None and pod is not None and old.node == node and \
                old.ephemeral == ephemeral:
            return  # what a pod references cannot change otherwise (status writes mostly)
        if old is not None:
            del self._pods[key]
            for resource, ref in old.refs:
                counter = self._refs.get((resource, namespace, ref))
                if counter is not None:
                    counter[old.node] -= 1
                    if counter[old.node] <= 0:
                        del counter[old.node]
                    if not counter:
                        del self._refs[(resource, namespace, ref)]
        if pod is None or not node:
            return  # upstream's graph has no unscheduled pods
        refs = tuple(podrefs.pod_references(pod).edges())
        self._pods[key] = _Pod(node, refs, ephemeral)
        for resource, ref in refs:
            self._refs.setdefault((resource, namespace, ref), collections.Counter())[node] += 1

    def _set_pv(self, name: str, pv: Obj | None) -> None:
        for secret in self._secrets_of_pv.pop(name, set()):
            volumes = self._pv_secrets.get(secret)
            if volumes is not None:
                volumes.discard(name)
                if not volumes:
                    del self._pv_secrets[secret]
        self._pv_claims.pop(name, None)
        if pv is None:
            return
        claim = podrefs.pv_claim(pv)
        if claim is not None:
            self._pv_claims[name] = claim
        secrets = podrefs.pv_secrets(pv)
        if secrets:
            self._secrets_of_pv[name] = secrets
            for secret in secrets:
                self._pv_secrets.setdefault(secret, set()).add(name)

    # -- questions

    def pod_node(self, namespace: str, name: str) -> str | None:
        pod = self._pods.get((namespace, name))
        return pod.node if pod is not None else None

    def related(self, node: str, resource: str, namespace: str, name: str) -> bool:
        """Whether a path leads from the object to the node."""
        if resource == "pods":
            return self.pod_node(namespace, name) == node
        if resource == "persistentvolumes":
            claim = self._pv_claims.get(name)
            return claim is not None and self.related(node, "persistentvolumeclaims", *claim)
        if resource == "volumeattachments":
            return self._attachments.get(name) == node
        if node in self._refs.get((resource, namespace, name), ()):
            return True
        if resource == "secrets":
            return any(self.related(node, "persistentvolumes", "", pv)
                       for pv in self._pv_secrets.get((namespace, name), ()))
        return False


Rules = Callable[[], Sequence[rbac.Rule]]


class NodeAuthorizer:
    """Decides the requests of nodes (see the module docstring); no opinion on the others."""

    def __init__(self, store: Store, rules: Rules) -> None:
        self.store = store
        self.graph: NodeGraph | None = None  # made on the first node request
        self._rules = rules

    def __repr__(self) -> str:
        return f"NodeAuthorizer({self.graph!r})"

    def close(self) -> None:
        if self.graph is not None:
            self.graph.close()

    def authorize(self, user: User, attrs: Attributes) -> Decision:
        node, is_node = node_identity(user)
        if not is_node:
            return NO_OPINION
        if not node:
            return False, f'unknown node for user "{user.name}"'
        if attrs.resource_request:
            decide = _BY_RESOURCE.get((attrs.api_group, attrs.resource))
            if decide is not None:
                return decide(self, node, attrs)
        if any(rbac.rule_allows(rule, attrs) for rule in self._rules()):
            return ALLOW
        return NO_OPINION

    def _graph(self) -> NodeGraph:
        if self.graph is None:
            self.graph = NodeGraph(self.store)
        self.graph.refresh()
        return self.graph

    def related(self, node: str, attrs: Attributes) -> Decision:
        if not attrs.name:
            return False, "No Object name found"
        if self._graph().related(node, attrs.resource, attrs.namespace, attrs.name):
            return ALLOW
        return False, f"no relationship found between node '{node}' and this object"

    # -- per resource, as upstream's authorizeX

    def read_namespaced(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "list", "watch"):
            return False, "can only read resources of this type"
        if attrs.subresource:
            return False, "cannot read subresource"
        if not attrs.namespace:
            return False, "can only read namespaced object of this type"
        return self.related(node, attrs)

    def get(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb != "get":
            return False, "can only get individual resources of this type"
        if attrs.subresource:
            return False, "cannot get subresource"
        return self.related(node, attrs)

    def claim(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource != "status":
            return self.get(node, attrs)
        if attrs.verb not in ("update", "patch"):
            return False, "can only get/update/patch this type"
        return self.related(node, attrs)

    def token(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb != "create" or not attrs.name:
            return False, "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return False, "can only create token subresource of serviceaccount"
        return self.related(node, attrs)

    def lease(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return False, "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return False, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system ' \
                          "namespace"
        if attrs.verb != "create" and attrs.name != node:
            return False, "can only access node lease with the same name as the requesting node"
        return ALLOW

    def csinode(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return False, "can only get, create, update, patch, or delete a CSINode"
        if attrs.subresource:
            return False, "cannot authorize CSINode subresources"
        if attrs.verb != "create" and attrs.name != node:
            return False, "can only access CSINode with the same name as the requesting node"
        return ALLOW

    def nodes(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource == "status":
            return ALLOW if attrs.verb in ("update", "patch") else NO_OPINION
        if attrs.subresource:
            return NO_OPINION
        if attrs.verb in ("create", "update", "patch"):
            return ALLOW  # NodeRestriction keeps a node to its own Node
        if attrs.verb in ("get", "list", "watch"):
            if attrs.name == node:
                return ALLOW
            if not attrs.name:
                return False, f"node '{node}' cannot read all nodes, only its own Node object"
            return False, f"node '{node}' cannot read '{attrs.name}', only its own Node object"
        return NO_OPINION

    def pods(self, node: str, attrs: Attributes) -> Decision:
        verb, sub = attrs.verb, attrs.subresource
        if not sub:
            if verb == "get":
                return self.get(node, attrs)
            if verb in ("list", "watch"):
                if selects(attrs.field_selector, "spec.nodeName", node):
                    return ALLOW
                if attrs.name:
                    return self.related(node, attrs)
                return False, "can only list/watch pods with spec.nodeName field selector"
            if verb in ("create", "delete"):
                return ALLOW  # mirror pods, kept to the node's own by NodeRestriction
        elif (sub, verb) in (("status", "update"), ("status", "patch"), ("eviction", "create")):
            return ALLOW
        return NO_OPINION


_BY_RESOURCE: dict[tuple[str, str], Callable[[NodeAuthorizer, str, Attributes], Decision]] = {
    ("", "secrets"): NodeAuthorizer.read_namespaced,
    ("", "configmaps"): NodeAuthorizer.read_namespaced,
    ("", "persistentvolumeclaims"): NodeAuthorizer.claim,
    ("", "persistentvolumes"): NodeAuthorizer.get,
    ("resource.k8s.io", "resourceclaims"): NodeAuthorizer.get,
    ("storage.k8s.io", "volumeattachments"): NodeAuthorizer.get,
    ("", "serviceaccounts"): NodeAuthorizer.token,
    ("coordination.k8s.io", "leases"): NodeAuthorizer.lease,
    ("storage.k8s.io", "csinodes"): NodeAuthorizer.csinode,
    ("", "nodes"): NodeAuthorizer.nodes,
    ("", "pods"): NodeAuthorizer.pods,
}
