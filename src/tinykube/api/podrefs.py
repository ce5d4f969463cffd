"""The API objects a pod (or a PersistentVolume) names: kube's `podutil.VisitPodSecretNames`,
`VisitPodConfigmapNames` and the node authorizer graph's edges, as one pure function each.

A pod references:

- Secrets: `imagePullSecrets`, every container's (init and ephemeral too) `envFrom[].secretRef`
  and `env[].valueFrom.secretKeyRef`, `secret` volumes and projected `secret` sources, and the
  `secretRef`s of the in-tree volume plugins (azureFile's `secretName`, cephfs, cinder,
  flexVolume, iscsi, rbd, scaleIO, storageos; csi's `nodePublishSecretRef`);
- ConfigMaps: `envFrom[].configMapRef`, `env[].valueFrom.configMapKeyRef`, `configMap` volumes
  and projected `configMap` sources;
- PersistentVolumeClaims: `persistentVolumeClaim.claimName`, and `<pod>-<volume>` for an
  `ephemeral` volume (the claim the ephemeral volume controller makes);
- its ServiceAccount (`serviceAccountName`) and its ResourceClaims (`resourceClaims[]`'s
  `resourceClaimName`, and the generated names in `status.resourceClaimStatuses`).

A PersistentVolume references its claim (`spec.claimRef`) and the Secrets of its plugin
(`pv_secrets`). Every name is in the pod's (or the claim's) namespace unless the reference
names one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]

# in-tree volume plugins whose `secretRef` (a LocalObjectReference) names a Secret
_SECRET_REF_PLUGINS = ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos")
_CSI_SECRET_REFS = ("controllerPublishSecretRef", "nodeStageSecretRef", "nodePublishSecretRef",
                    "controllerExpandSecretRef", "nodeExpandSecretRef")
_PV_SECRET_REF_PLUGINS = ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO",
                          "storageos")


@dataclasses.dataclass(frozen=True)
class PodRefs:
    """The names a pod references, by kind (all in the pod's namespace)."""

    secrets: frozenset[str] = frozenset()
    configmaps: frozenset[str] = frozenset()
    claims: frozenset[str] = frozenset()
    service_account: str = ""
    resource_claims: frozenset[str] = frozenset()

    def edges(self) -> Iterable[tuple[str, str]]:
        """(resource, name) of every reference, as the node authorizer's graph keys them."""
        for name in self.secrets:
            yield "secrets", name
        for name in self.configmaps:
            yield "configmaps", name
        for name in self.claims:
            yield "persistentvolumeclaims", name
        if self.service_account:
            yield "serviceaccounts", self.service_account
        for name in self.resource_claims:
            yield "resourceclaims", name


def _containers(spec: Obj) -> Iterable[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, Mapping):
                yield container


def _name(ref: Any, key: str = "name") -> str:
    return str(ref.get(key) or "") if isinstance(ref, Mapping) else ""


def _env_refs(spec: Obj, secrets: set[str], configmaps: set[str]) -> None:
    for container in _containers(spec):
        for source in container.get("envFrom") or ():
            if isinstance(source, Mapping):
                secrets.add(_name(source.get("secretRef")))
                configmaps.add(_name(source.get("configMapRef")))
        for env in container.get("env") or ():
            value_from = env.get("valueFrom") if isinstance(env, Mapping) else None
            if isinstance(value_from, Mapping):
                secrets.add(_name(value_from.get("secretKeyRef")))
                configmaps.add(_name(value_from.get("configMapKeyRef")))


def _volume_refs(pod_name: str, spec: Obj, secrets: set[str], configmaps: set[str],
                 claims: set[str]) -> None:
    for volume in spec.get("volumes") or ():
        if not isinstance(volume, Mapping):
            continue
        projected = volume.get("projected") or {}
        for source in [volume, *(projected.get("sources") or ())]:
            if not isinstance(source, Mapping):
                continue
            secret = source.get("secret")
            if isinstance(secret, Mapping):
                secrets.add(_name(secret, "secretName") or _name(secret))
            configmaps.add(_name(source.get("configMap")))
        for plugin in _SECRET_REF_PLUGINS:
            secrets.add(_name((volume.get(plugin) or {}).get("secretRef")))
        secrets.add(_name(volume.get("azureFile"), "secretName"))
        secrets.add(_name((volume.get("csi") or {}).get("nodePublishSecretRef")))
        claims.add(_name(volume.get("persistentVolumeClaim"), "claimName"))
        if isinstance(volume.get("ephemeral"), Mapping):
            claims.add(f"{pod_name}-{volume.get('name', '')}")


def pod_references(pod: Obj) -> PodRefs:
    """Every object the pod names (see the module docstring)."""
    spec = pod.get("spec") or {}
    secrets: set[str] = {_name(ref) for ref in spec.get("imagePullSecrets") or ()}
    configmaps: set[str] = set()
    claims: set[str] = set()
    _env_refs(spec, secrets, configmaps)
    _volume_refs(str((pod.get("metadata") or {}).get("name") or ""), spec, secrets, configmaps,
                 claims)
    resource_claims = {_name(c, "resourceClaimName") for c in spec.get("resourceClaims") or ()}
    resource_claims |= {_name(c, "resourceClaimName")
                        for c in (pod.get("status") or {}).get("resourceClaimStatuses") or ()}
    return PodRefs(frozenset(secrets - {""}), frozenset(configmaps - {""}),
                   frozenset(claims - {""}), str(spec.get("serviceAccountName") or ""),
                   frozenset(resource_claims - {""}))


def pv_secrets(pv: Obj) -> set[tuple[str, str]]:
    """(namespace, name) of the Secrets a PersistentVolume's plugin reads (a reference without
    a namespace: the claim's, as upstream's `VisitPVSecretNames` defaults it)."""
    spec = pv.get("spec") or {}
    claim_ns = str((spec.get("claimRef") or {}).get("namespace") or "")
    found: set[tuple[str, str]] = set()

    def add(ref: Any, key: str = "name", ns_key: str = "namespace") -> None:
        name = _name(ref, key)
        if name:
            found.add((_name(ref, ns_key) or claim_ns, name))

    for plugin in _PV_SECRET_REF_PLUGINS:
        add((spec.get(plugin) or {}).get("secretRef"))
    add(spec.get("azureFile"), "secretName", "secretNamespace")
    for key in _CSI_SECRET_REFS:
        add((spec.get("csi") or {}).get(key))
    return found


def pv_claim(pv: Obj) -> tuple[str, str] | None:
    """(namespace, name) of the claim a PersistentVolume is bound to, if any."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if isinstance(ref, Mapping) and ref.get("name") and ref.get("namespace"):
        return str(ref["namespace"]), str(ref["name"])
    return None
