"""Where objects live in etcd: kube-apiserver's key layout, and the allocation keys.

An object of storage resource `<group>/<plural>` (the store's `storage_key`) named `name` in
namespace `ns` is the key `/registry/<prefix>/<ns>/<name>`, or `/registry/<prefix>/<name>` when
it is cluster-scoped, where `<prefix>` is what kube-apiserver uses (its registries' `Prefix`):
the plural alone for most built-in resources, a few historic names (`minions`, `controllers`,
`services/specs`, `services/endpoints`, `ingress`), and `<group>/<plural>` for API services,
CRDs and custom resources. `etcdctl get --prefix /registry/deployments/` therefore lists what it
lists on a kube-apiserver's etcd. Values are the object's JSON in its storage version without
`metadata.resourceVersion` (kube-apiserver stores protobuf there, and also leaves the version
out: it is the key's mod revision, set when the object is read).

Service allocations are one key per address and per NodePort under `/registry/ranges/`
(kube-apiserver keeps a bitmap in `/registry/ranges/serviceips` and `servicenodeports`):
written in the same transaction as the Service that takes them, a key per item lets etcd
refuse a second owner with a plain `create_revision == 0` comparison.
"""

from __future__ import annotations

from typing import Any

REGISTRY = "/registry/"
IP_RANGE = f"{REGISTRY}ranges/serviceips/"
PORT_RANGE = f"{REGISTRY}ranges/servicenodeports/"
COMPACT_KEY = b"compact_rev_key"  # kube-apiserver's compactor's key (outside /registry)

# storage_key -> prefix, where it is not simply the plural.
_SPECIAL = {
    "core/nodes": "minions",
    "core/replicationcontrollers": "controllers",
    "core/services": "services/specs",
    "core/endpoints": "services/endpoints",
    "networking.k8s.io/ingresses": "ingress",
    "apiregistration.k8s.io/apiservices": "apiregistration.k8s.io/apiservices",
    "apiextensions.k8s.io/customresourcedefinitions":
        "apiextensions.k8s.io/customresourcedefinitions",
}
_BY_PREFIX = {prefix: key for key, prefix in _SPECIAL.items()}
# Built-in groups whose resources are keyed by plural alone (custom resources use the group).
_BUILTIN_GROUPS = frozenset({
    "core", "apps", "batch", "autoscaling", "policy", "coordination.k8s.io",
    "discovery.k8s.io", "networking.k8s.io", "node.k8s.io", "rbac.authorization.k8s.io",
    "scheduling.k8s.io", "storage.k8s.io", "certificates.k8s.io", "events.k8s.io",
    "admissionregistration.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
    "storagemigration.k8s.io", "internal.apiserver.k8s.io"})
_PLURALS: dict[str, str] = {}  # plural -> storage_key, for built-in resources (filled lazily)


def prefix(resource: str) -> str:
    """The key prefix of a storage resource, with the trailing slash."""
    special = _SPECIAL.get(resource)
    if special is not None:
        return f"{REGISTRY}{special}/"
    group, plural = resource.split("/", 1)
    if group in _BUILTIN_GROUPS:
        _PLURALS.setdefault(plural, resource)
        return f"{REGISTRY}{plural}/"
    return f"{REGISTRY}{group}/{plural}/"


def object_key(resource: str, namespace: str, name: str) -> bytes:
    where = f"{namespace}/{name}" if namespace else name
    return f"{prefix(resource)}{where}".encode()


def _builtin(plural: str) -> str | None:
    if not _PLURALS:
        from tinykube.api import resources  # the table, once: keys name only plurals

        for res in resources.ALL:
            prefix(res.storage_key)
    resource = _PLURALS.get(plural)
    return None if resource in _SPECIAL else resource


def parse(key: bytes) -> tuple[str, str, str] | None:
    """(storage resource, namespace, name) of an object key; None for any other key (the
    allocation ranges, or keys of something else sharing the etcd)."""
    text = key.decode(errors="replace")
    if not text.startswith(REGISTRY) or text.startswith(f"{REGISTRY}ranges/"):
        return None
    parts = text[len(REGISTRY):].split("/")
    if len(parts) >= 3 and (resource := _BY_PREFIX.get(f"{parts[0]}/{parts[1]}")):
        rest = parts[2:]
    elif len(parts) >= 2 and (resource := _BY_PREFIX.get(parts[0]) or _builtin(parts[0])
                              or ""):
        rest = parts[1:]
    elif len(parts) >= 3 and "." in parts[0]:  # a custom resource: /registry/<group>/<plural>/
        resource, rest = f"{parts[0]}/{parts[1]}", parts[2:]
    else:
        return None
    if len(rest) == 1 and rest[0]:
        return resource, "", rest[0]
    if len(rest) == 2 and rest[0] and rest[1]:
        return resource, rest[0], rest[1]
    return None


def allocation_keys(spec: dict[str, Any] | None) -> set[bytes]:
    """The range keys a Service spec holds: one per cluster IP and one per NodePort."""
    spec = spec or {}
    keys = {f"{IP_RANGE}{ip}".encode() for ip in spec.get("clusterIPs") or []
            if ip and ip != "None"}
    keys |= {f"{PORT_RANGE}{p['nodePort']}".encode() for p in spec.get("ports") or []
             if p.get("nodePort")}
    return keys


def parse_allocation(key: bytes) -> tuple[str, str] | None:
    """("ip", address) or ("port", number) for a range key, else None."""
    text = key.decode(errors="replace")
    if text.startswith(IP_RANGE):
        return "ip", text[len(IP_RANGE):]
    if text.startswith(PORT_RANGE):
        return "port", text[len(PORT_RANGE):]
    return None
