"""The local-path provisioner: a directory per PersistentVolume, as kind's
local-path-provisioner (`rancher.io/local-path`) makes them.

An external provisioner, through the API only: the PV controller names the provisioner on a
claim (`volume.kubernetes.io/storage-provisioner`) whose class has no matching volume; for a
claim naming `rancher.io/local-path` and, as local-path needs, a node
(`volume.kubernetes.io/selected-node`, which the scheduler writes for `WaitForFirstConsumer`
classes), this controller

1. records `Provisioning` ("External provisioner is provisioning volume for claim ..."),
2. makes the directory `<volumes dir>/<node>/pvc-<claim uid>_<namespace>_<claim>` (mode 0777,
   as local-path's helper pod does; the volumes directory is `volumes/` in the data directory,
   one subdirectory per node, since each node is a host with its own disk),
3. creates the PersistentVolume `pvc-<claim uid>`: `hostPath` with type `DirectoryOrCreate` at
   that path, `nodeAffinity` requiring `kubernetes.io/hostname` to be the node, the claim's
   access modes, request and volume mode, the class's name, reclaim policy and mount options,
   `claimRef` to the claim (so the PV controller binds exactly that pair) and
   `pv.kubernetes.io/provisioned-by: rancher.io/local-path`, and records
   `ProvisioningSucceeded`.

A claim with no node gets local-path's `ProvisioningFailed` ("configuration error, no node was
specified"). A volume it provisioned that is `Released` with reclaim policy `Delete` has its
directory removed and is deleted (the pv-protection finalizer then goes, since it is not
bound). Only paths inside the volumes directory are ever made or removed: a volume whose path
lies elsewhere (edited by hand) is left alone with a `VolumeFailedDelete` event.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinykube.api import errors, resources
from tinykube.client import events
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import volumematch as vm
from tinykube.controllers.nodeaffinity import node_labels

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]

PROVISIONER = "rancher.io/local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"
CLAIM, VOLUME = "claim:", "volume:"


def volume_name(pvc: Obj) -> str:
    return f"pvc-{pvc['metadata']['uid']}"


def volume_path(volumes_dir: Path, node: str, pvc: Obj) -> Path:
    meta = pvc["metadata"]
    return volumes_dir / node / f"{volume_name(pvc)}_{meta['namespace']}_{meta['name']}"


def inside(volumes_dir: Path, path: str) -> Path | None:
    """`path` resolved, if it lies strictly inside `volumes_dir`; else None."""
    resolved = Path(path).resolve()
    root = volumes_dir.resolve()
    return resolved if resolved != root and resolved.is_relative_to(root) else None


def new_volume(pvc: Obj, sc: Obj, node: Obj, path: Path) -> dict[str, Any]:
    """The PersistentVolume local-path-provisioner creates for `pvc` on `node`."""
    spec = pvc.get("spec", {})
    hostname = node_labels(node).get(HOSTNAME_LABEL, node["metadata"]["name"])
    pv_spec: dict[str, Any] = {
        "accessModes": list(spec.get("accessModes") or []),
        "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {})
                     .get("storage", "0")},
        "claimRef": vm.claim_ref(pvc),
        "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
        "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
        "storageClassName": sc["metadata"]["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
    }
    if sc.get("mountOptions"):
        pv_spec["mountOptions"] = list(sc["mountOptions"])
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": volume_name(pvc),
                         "annotations": {vm.PROVISIONED_BY: PROVISIONER,
                                         "local.path.provisioner/selected-node":
                                             node["metadata"]["name"]}},
            "spec": pv_spec}


def _make_directory(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)


class LocalPathProvisioner(Controller):
    name = "local-path-provisioner"

    def __init__(self, client: RESTClient, volumes_dir: Path) -> None:
        self.volumes_dir = volumes_dir.resolve()
        self.pvc_res = resources.must("", "v1", "persistentvolumeclaims")
        self.pv_res = resources.must("", "v1", "persistentvolumes")
        self.claims = shared_informer(client, self.pvc_res)
        self.volumes = shared_informer(client, self.pv_res)
        self.classes = shared_informer(client, resources.must("storage.k8s.io", "v1",
                                                              "storageclasses"))
        self.nodes = shared_informer(client, resources.must("", "v1", "nodes"))
        super().__init__(client, [self.claims, self.volumes, self.classes, self.nodes])
        self.recorder = events.Recorder(client, f"{PROVISIONER}_tinykube")
        self.claims.add_handlers(
            on_add=lambda c: self.queue.add(CLAIM + vm.claim_key(c)),
            on_update=lambda _o, c: self.queue.add(CLAIM + vm.claim_key(c)))
        self.volumes.add_handlers(
            on_add=lambda v: self.queue.add(VOLUME + v["metadata"]["name"]),
            on_update=lambda _o, v: self.queue.add(VOLUME + v["metadata"]["name"]))

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            pvc = self.claims.cache.get(key[len(CLAIM):])
            if pvc is not None and self._wants_volume(pvc):
                await self.provision(pvc)
        elif key.startswith(VOLUME):
            pv = self.volumes.cache.get(key[len(VOLUME):])
            if pv is not None and self._to_delete(pv):
                await self.delete(pv)

    def _wants_volume(self, pvc: Obj) -> bool:
        return (vm.annotations_of(pvc).get(vm.STORAGE_PROVISIONER) == PROVISIONER
                and not pvc.get("spec", {}).get("volumeName")
                and not pvc["metadata"].get("deletionTimestamp")
                and self.volumes.cache.get(volume_name(pvc)) is None)

    @staticmethod
    def _to_delete(pv: Obj) -> bool:
        return (vm.annotations_of(pv).get(vm.PROVISIONED_BY) == PROVISIONER
                and (pv.get("status") or {}).get("phase") == "Released"
                and pv.get("spec", {}).get("persistentVolumeReclaimPolicy") == "Delete"
                and not pv["metadata"].get("deletionTimestamp"))

    async def provision(self, pvc: Obj) -> None:
        sc = self.classes.cache.get(vm.claim_class(pvc))
        if sc is None or sc.get("provisioner") != PROVISIONER:
            return  # the PV controller reports a missing class
        node_name = vm.annotations_of(pvc).get(vm.SELECTED_NODE)
        node = self.nodes.cache.get(node_name) if node_name else None
        if node is None:
            await self.recorder.event(pvc, "Warning", "ProvisioningFailed",
                                      f'failed to provision volume with StorageClass '
                                      f'"{sc["metadata"]["name"]}": configuration error, no '
                                      "node was specified")
            return
        await self.recorder.event(pvc, "Normal", "Provisioning",
                                  "External provisioner is provisioning volume for claim "
                                  f'"{vm.claim_key(pvc)}"')
        path = volume_path(self.volumes_dir, node["metadata"]["name"], pvc)
        if inside(self.volumes_dir, str(path)) is None:  # a node name like `..`
            await self.recorder.event(pvc, "Warning", "ProvisioningFailed",
                                      f"path {str(path)!r} is not inside the volumes directory")
            return
        await asyncio.to_thread(_make_directory, path)
        try:
            await self.client.create(self.pv_res, new_volume(pvc, sc, node, path))
        except errors.AlreadyExists:
            return
        await self.recorder.event(pvc, "Normal", "ProvisioningSucceeded",
                                  f"Successfully provisioned volume {volume_name(pvc)}")

    async def delete(self, pv: Obj) -> None:
        path = (pv.get("spec", {}).get("hostPath") or {}).get("path") or ""
        target = inside(self.volumes_dir, path)
        if target is None:
            await self.recorder.event(pv, "Warning", "VolumeFailedDelete",
                                      f"path {path!r} is not inside the volumes directory "
                                      f"{str(self.volumes_dir)!r}: not removed")
            return
        await asyncio.to_thread(shutil.rmtree, target, ignore_errors=True)
        try:
            await self.client.delete(self.pv_res, pv["metadata"]["name"])
        except errors.NotFound:
            return
