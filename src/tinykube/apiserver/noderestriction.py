"""NodeRestriction: the admission plugin that keeps a node's writes to its own objects
(kube's `plugin/pkg/admission/noderestriction`, v1.32), beside the Node authorizer
(`nodeauthz`), which decides by verb and relationship and leaves these checks of the object to
admission.

Only requests of nodes (`nodeauthz.node_identity`) are looked at; each refusal is kube's 403
with upstream's message (`nodes "n2" is forbidden: node "n1" is not allowed to modify node
"n2"`):

- pods: a node creates only mirror pods (annotation `kubernetes.io/config.mirror`) bound to
  itself, owned by its own Node (one controller reference, its uid, no blockOwnerDeletion),
  naming no service account, Secret, ConfigMap, claim or cluster trust bundle; it deletes only
  pods bound to it, and updates no pod but through `status`; `status` only of pods bound to
  it, without changing their labels or resource claim statuses; `eviction` only of pods bound to
  it;
- nodes: only its own Node; not created with a `configSource`, `spec.taints` not changed, and
  no label under `node-restriction.kubernetes.io/` nor another `kubernetes.io`/`k8s.io` label
  the kubelet does not set itself (`KUBELET_LABELS`) added, changed or removed;
- persistentvolumeclaims: only `status`, and there only `capacity`, `conditions` and the
  allocated resources;
- serviceaccounts/token: only bound to a pod (with its uid) scheduled on the node;
- leases and csinodes: only the node's own name (leases in `kube-node-lease`).

Upstream runs it for create, update and delete, subresources included; tinykube's other
built-in plugins skip subresources, so the handlers call `check` for every write themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tinykube.api import errors, podrefs
from tinykube.apiserver.nodeauthz import NODE_LEASE_NAMESPACE, node_identity
from tinykube.apiserver.rbac import User

Obj = Mapping[str, Any]
CREATE, UPDATE, DELETE = "CREATE", "UPDATE", "DELETE"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RESTRICTED_LABEL_NAMESPACE = "node-restriction.kubernetes.io"
# kubelet's own labels (`kubelet/pkg/apis.IsKubeletLabel`), and its label namespaces
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch"})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_PVC_STATUS_FIELDS = ("capacity", "conditions", "allocatedResources",
                      "allocatedResourceStatuses")


@dataclasses.dataclass(frozen=True)
class Write:
    """One write as the plugin sees it: `obj` the new object (a create's or update's body, a
    TokenRequest or an Eviction), `old` the stored one."""

    operation: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    obj: Obj | None = None
    old: Obj | None = None


Lookup = Callable[[str, str, str], "Obj | None"]  # (storage key, namespace, name) -> object


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def _spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def check(user: User, write: Write, lookup: Lookup) -> None:
    """Raise kube's 403 if a node may not make this write; nothing for other users."""
    node, is_node = node_identity(user)
    if not is_node or (write.operation in (UPDATE, DELETE) and write.old is None):
        return  # the write itself answers 404 for a missing object
    refusal = refuse(node, write, lookup) if node else \
        f'could not determine node from user "{user.name}"'
    if refusal is not None:
        name = write.name or str(_meta(write.obj).get("name") or
                                 _meta(write.obj).get("generateName") or "")
        raise errors.Forbidden.for_object(write.resource, write.group, name, refusal)


def refuse(node: str, write: Write, lookup: Lookup) -> str | None:
    """Why node `node` may not make the write (None: it may)."""
    key = (write.group, write.resource)
    if key == ("", "pods"):
        return _pod(node, write, lookup)
    if key == ("", "nodes"):
        return _node(node, write)
    if key == ("", "persistentvolumeclaims"):
        return _claim_status(node, write) if write.subresource == "status" \
            else "may only update PVC status"
    if key == ("", "serviceaccounts"):
        return _token(node, write, lookup)
    if key == ("coordination.k8s.io", "leases"):
        if write.namespace != NODE_LEASE_NAMESPACE:
            return f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        return None if _name_of(write) == node else \
            "can only access node lease with the same name as the requesting node"
    if key == ("storage.k8s.io", "csinodes"):
        return None if _name_of(write) == node else \
            "can only access CSINode with the same name as the requesting node"
    return None


def _name_of(write: Write) -> str:
    return str(_meta(write.obj).get("name") or "") if write.operation == CREATE else write.name


# --- pods ----------------------------------------------------------------------------------

def _pod(node: str, write: Write, lookup: Lookup) -> str | None:
    if write.subresource == "status":
        return _pod_status(node, write)
    if write.subresource == "eviction":
        return _pod_eviction(node, write, lookup)
    if write.subresource:
        return f"unexpected pod subresource \"{write.subresource}\", only 'status' and " \
               "'eviction' are allowed"
    if write.operation == CREATE:
        return _mirror_pod(node, write.obj or {}, lookup)
    if write.operation == DELETE:
        if _spec(write.old).get("nodeName") != node:
            return f'node "{node}" can only delete pods with spec.nodeName set to itself'
        return None
    return f'unexpected operation "{write.operation}", node "{node}" can only create and ' \
           "delete mirror pods"


def _mirror_pod(node: str, pod: Obj, lookup: Lookup) -> str | None:
    if MIRROR_ANNOTATION not in (_meta(pod).get("annotations") or {}):
        return f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only ' \
               "create mirror pods"
    if _spec(pod).get("nodeName") != node:
        return f'node "{node}" can only create pods with spec.nodeName set to itself'
    refusal = _owner(node, list(_meta(pod).get("ownerReferences") or ()), lookup)
    if refusal is not None:
        return refusal
    refs = podrefs.pod_references(pod)
    if _spec(pod).get("serviceAccountName"):
        return f'node "{node}" can not create pods that reference a service account'
    if refs.secrets:
        return f'node "{node}" can not create pods that reference secrets'
    if refs.configmaps:
        return f'node "{node}" can not create pods that reference configmaps'
    for volume in _spec(pod).get("volumes") or ():
        for source in (volume.get("projected") or {}).get("sources") or ():
            if "clusterTrustBundle" in source:
                return f'node "{node}" can not create pods that reference clustertrustbundles'
    if any("persistentVolumeClaim" in v for v in _spec(pod).get("volumes") or ()):
        return f'node "{node}" can not create pods that reference persistentvolumeclaims'
    return None


def _owner(node: str, owners: list[Obj], lookup: Lookup) -> str | None:
    if len(owners) > 1:
        return f'node "{node}" can only create pods with a single owner reference set to itself'
    if not owners or owners[0].get("apiVersion") != "v1" or owners[0].get("kind") != "Node" \
            or owners[0].get("name") != node:
        return f'node "{node}" can only create pods with an owner reference set to itself'
    owner = owners[0]
    if owner.get("controller") is not True:
        return f'node "{node}" can only create pods with a controller owner reference set to ' \
               "itself"
    if owner.get("blockOwnerDeletion") is True:
        return f'node "{node}" must not set blockOwnerDeletion on an owner reference'
    stored = lookup("core/nodes", "", node)
    if stored is None:
        raise errors.NotFound.for_object("nodes", "", node)
    uid = _meta(stored).get("uid")
    if owner.get("uid") != uid:
        return f"node {node} UID mismatch: expected {owner.get('uid')} got {uid}"
    return None


def _pod_status(node: str, write: Write) -> str | None:
    if write.operation != UPDATE:
        return f'unexpected operation "{write.operation}"'
    if _spec(write.old).get("nodeName") != node:
        return f'node "{node}" can only update pod status for pods with spec.nodeName set to ' \
               "itself"
    if (_meta(write.obj).get("labels") or {}) != (_meta(write.old).get("labels") or {}):
        return f'node "{node}" cannot update labels through pod status'
    if _claim_statuses(write.obj) != _claim_statuses(write.old):
        return f'node "{node}" cannot update resource claim statues'
    return None


def _claim_statuses(pod: Obj | None) -> list[tuple[Any, Any]]:
    statuses = ((pod or {}).get("status") or {}).get("resourceClaimStatuses") or ()
    return [(c.get("name"), c.get("resourceClaimName")) for c in statuses]


def _pod_eviction(node: str, write: Write, lookup: Lookup) -> str | None:
    if write.operation != CREATE:
        return f"unexpected operation {write.operation}"
    name = write.name or str(_meta(write.obj).get("name") or "")
    if not name:
        return "could not determine pod from request data"
    pod = lookup("core/pods", write.namespace, name)
    if pod is None:
        raise errors.NotFound.for_object("pods", "", name)
    if _spec(pod).get("nodeName") != node:
        return f"node {node} can only evict pods with spec.nodeName set to itself"
    return None


# --- nodes, claims, tokens -------------------------------------------------------------------

def _node(node: str, write: Write) -> str | None:
    name = _name_of(write) if write.operation == CREATE else write.name
    if name != node:
        return f'node "{node}" is not allowed to modify node "{name}"'
    labels = _meta(write.obj).get("labels") or {}
    if write.operation == CREATE:
        if _spec(write.obj).get("configSource") is not None:
            return f'node "{node}" is not allowed to create pods with a non-nil configSource'
        forbidden = forbidden_labels(modified_labels(labels, {}))
        if forbidden:
            return f'node "{node}" is not allowed to set the following labels: ' \
                   f"{', '.join(forbidden)}"
    elif write.operation == UPDATE:
        source = _spec(write.obj).get("configSource")
        if source is not None and source != _spec(write.old).get("configSource"):
            return f'node "{node}" is not allowed to update configSource to a new non-nil ' \
                   "configSource"
        if (_spec(write.obj).get("taints") or []) != (_spec(write.old).get("taints") or []):
            return f'node "{node}" is not allowed to modify taints'
        forbidden = forbidden_labels(modified_labels(labels,
                                                     _meta(write.old).get("labels") or {}))
        if forbidden:
            return f"is not allowed to modify labels: {', '.join(forbidden)}"
    return None


def modified_labels(new: Mapping[str, str], old: Mapping[str, str]) -> set[str]:
    return {k for k in {*new, *old} if new.get(k) != old.get(k) or (k in new) != (k in old)}


def _label_namespace(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    return prefix if slash else ""


def _in(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    return key in KUBELET_LABELS or any(_in(_label_namespace(key), ns)
                                        for ns in KUBELET_LABEL_NAMESPACES)


def forbidden_labels(keys: set[str]) -> list[str]:
    """The labels a node may not add, change or remove (sorted)."""
    found = set()
    for key in keys:
        namespace = _label_namespace(key)
        if _in(namespace, RESTRICTED_LABEL_NAMESPACE):
            found.add(key)
        if (_in(namespace, "kubernetes.io") or _in(namespace, "k8s.io")) and \
                not is_kubelet_label(key):
            found.add(key)
    return sorted(found)


def _without_status_fields(claim: Obj | None) -> dict[str, Any]:
    meta = {k: v for k, v in _meta(claim).items() if k not in ("resourceVersion",
                                                                "managedFields")}
    status = {k: v for k, v in ((claim or {}).get("status") or {}).items()
              if k not in _PVC_STATUS_FIELDS}
    return {**(claim or {}), "metadata": meta, "status": status}


def _claim_status(node: str, write: Write) -> str | None:
    if write.operation != UPDATE:
        return f'unexpected operation "{write.operation}"'
    new, old = _without_status_fields(write.obj), _without_status_fields(write.old)
    if new != old:
        changed = sorted(k for k in {*new, *old} if new.get(k) != old.get(k))
        return f'node "{node}" is not allowed to update fields other than status.capacity ' \
               f"and status.conditions: {', '.join(changed)}"
    return None


def _token(node: str, write: Write, lookup: Lookup) -> str | None:
    if write.operation != CREATE or write.subresource != "token":
        return None
    ref = _spec(write.obj).get("boundObjectRef") or {}
    if not isinstance(ref, Mapping) or ref.get("apiVersion") != "v1" or \
            ref.get("kind") != "Pod" or not ref.get("name"):
        return "node requested token not bound to a pod"
    if not ref.get("uid"):
        return "node requested token with a pod binding without a uid"
    pod = lookup("core/pods", write.namespace, str(ref["name"]))
    if pod is None:
        raise errors.NotFound.for_object("pods", "", str(ref["name"]))
    if _meta(pod).get("uid") != ref["uid"]:
        return f"the UID in the bound object reference ({ref['uid']}) does not match the UID " \
               "in record. The object might have been deleted and then recreated"
    if _spec(pod).get("nodeName") != node:
        return "node requested token bound to a pod scheduled on a different node"
    return None

