"""The PersistentVolume controller: binds claims to volumes and reclaims released volumes.

A port of kube-controller-manager's `persistentvolume-binder`
(`pkg/controller/volume/persistentvolume/pv_controller.go`), through the API only. One queue
carries two kinds of keys, `claim:<ns>/<name>` and `volume:<name>`; every claim, volume,
StorageClass and node event maps to the keys it concerns, and each sync re-reads the caches.

Claims (`sync_claim`):

1. Not yet bound (no `pv.kubernetes.io/bind-completed`) and naming no volume: the best match
   (`volumematch.find_matching_volume`) is bound. Without one the claim stays `Pending` with
   kube's event: `WaitForFirstConsumer` while its class waits for a pod and the scheduler has
   not chosen a node (`volume.kubernetes.io/selected-node`), `ProvisioningFailed` when its class
   does not exist, `ExternalProvisioning` (after annotating the claim with its class's
   provisioner, which is what an external provisioner such as `localpath.py` waits for), or
   `FailedBinding` when it asks for no class.
2. Naming a volume (`spec.volumeName`, pre-bound by the user): bound to it if it is free or
   pre-bound to the claim and satisfies it, else `VolumeMismatch`; a missing volume is waited for.
3. Bound: kept `Bound`, or `Lost` (`ClaimLost`, `ClaimMisbound`) when its volume is gone or is
   bound to another claim.

Binding writes, in kube's order: the volume's `claimRef` (plus `pv.kubernetes.io/bound-by-
controller: "yes"` when the controller chose it), its phase `Bound`, the claim's `volumeName`
with `bind-completed` (and `bound-by-controller` when the controller set the name), then the
claim's status: phase `Bound`, the volume's access modes and capacity. Every volume write is an
update at the cached resourceVersion, so two claims never take one volume; the volumes written
are remembered until the cache shows them (kube's "assume cache"), so the next claim does not
pick a volume the cache still shows Available.

Volumes (`sync_volume`): no `claimRef`, or one without a uid (pre-bound), is `Available`; bound
to a claim that exists is `Bound`; whose claim is gone is `Released`, then reclaimed by its
policy: `Retain` keeps it `Released`; `Delete` of a provisioned volume
(`pv.kubernetes.io/provisioned-by`) is left to its provisioner, which deletes it; `Delete` of
a static volume and `Recycle` fail (`Failed`, with kube's events), since no in-tree deleter or
recycler runs here.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.api.meta import rfc3339
from tinykube.api.storageclasses import default_storage_class
from tinykube.client import events
from tinykube.client.controller import Controller, StaleCacheError
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import volumematch as vm

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]

CLAIM, VOLUME = "claim:", "volume:"
EXTERNAL_PROVISIONING = (
    "Waiting for a volume to be created either by the external provisioner '{}' or manually by "
    "the system administrator. If volume creation is delayed, please verify that the "
    "provisioner is running and correctly registered.")


def _rv(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"

    def __init__(self, client: RESTClient) -> None:
        self.pvc_res = resources.must("", "v1", "persistentvolumeclaims")
        self.pv_res = resources.must("", "v1", "persistentvolumes")
        self.claims = shared_informer(client, self.pvc_res)
        self.volumes = shared_informer(client, self.pv_res)
        self.classes = shared_informer(client, resources.must("storage.k8s.io", "v1",
                                                              "storageclasses"))
        self.nodes = shared_informer(client, resources.must("", "v1", "nodes"))
        super().__init__(client, [self.claims, self.volumes, self.classes, self.nodes])
        self.recorder = events.Recorder(client, "persistentvolume-controller")
        self._assumed: dict[str, Obj] = {}  # volume name -> the newer object we wrote
        self.claims.add_handlers(on_add=self._on_claim, on_update=lambda _o, n: self._on_claim(n),
                                 on_delete=self._on_claim)
        self.volumes.add_handlers(on_add=self._on_volume,
                                  on_update=lambda _o, n: self._on_volume(n),
                                  on_delete=self._on_volume)
        self.classes.add_handlers(on_add=lambda _c: self._requeue_pending(),
                                  on_update=lambda _o, _n: self._requeue_pending())

    # --- events -> keys ---------------------------------------------------------------------

    def _on_claim(self, pvc: Obj) -> None:
        self.queue.add(CLAIM + vm.claim_key(pvc))
        if pvc.get("spec", {}).get("volumeName"):
            self.queue.add(VOLUME + pvc["spec"]["volumeName"])

    def _on_volume(self, pv: Obj) -> None:
        self.queue.add(VOLUME + pv["metadata"]["name"])
        ref = pv.get("spec", {}).get("claimRef") or {}
        if ref.get("name"):
            self.queue.add(f"{CLAIM}{ref.get('namespace', '')}/{ref['name']}")
        elif (pv.get("status") or {}).get("phase") == "Available":
            self._requeue_pending()  # a new free volume may fit a waiting claim

    def _requeue_pending(self) -> None:
        for pvc in self.claims.cache.list():
            if (pvc.get("status") or {}).get("phase", "Pending") == "Pending":
                self.queue.add(CLAIM + vm.claim_key(pvc))

    # --- reading ------------------------------------------------------------------------------

    def _volume(self, name: str) -> Obj | None:
        cached = self.volumes.cache.get(name)
        assumed = self._assumed.get(name)
        if assumed is None:
            return cached
        if cached is None or _rv(cached) >= _rv(assumed):
            del self._assumed[name]  # the cache caught up (or the volume is gone)
            return cached
        return assumed

    def _all_volumes(self) -> list[Obj]:
        names = {pv["metadata"]["name"] for pv in self.volumes.cache.list()}
        return [pv for name in sorted(names) if (pv := self._volume(name)) is not None]

    def _class_map(self) -> dict[str, Obj]:
        return {sc["metadata"]["name"]: sc for sc in self.classes.cache.list()}

    # --- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        if key.startswith(CLAIM):
            pvc = self.claims.cache.get(key[len(CLAIM):])
            if pvc is not None:
                await self.sync_claim(pvc)
        elif key.startswith(VOLUME):
            pv = self._volume(key[len(VOLUME):])
            if pv is not None:
                await self.sync_volume(pv)

    async def sync_claim(self, pvc: Obj) -> None:
        if vm.annotations_of(pvc).get(vm.BIND_COMPLETED) is None:
            await self._sync_unbound(pvc)
        else:
            await self._sync_bound(pvc)

    async def _sync_unbound(self, pvc: Obj) -> None:
        name = pvc.get("spec", {}).get("volumeName")
        if name:
            await self._sync_prebound_claim(pvc, name)
            return
        classes = self._class_map()
        if await self._assign_default_class(pvc, classes):
            return  # its update brings the claim back
        selected = vm.annotations_of(pvc).get(vm.SELECTED_NODE)
        delay = vm.is_delay_binding(pvc, classes) and not selected
        node = self.nodes.cache.get(selected) if selected else None
        pv = vm.find_matching_volume(pvc, self._all_volumes(), node, delay)
        if pv is not None:
            await self._bind(pv, pvc)
            return
        await self._set_claim_phase(pvc, "Pending")
        class_name = vm.claim_class(pvc)
        if delay:
            await self.recorder.event(pvc, "Normal", "WaitForFirstConsumer",
                                      "waiting for first consumer to be created before binding")
        elif not class_name:
            await self.recorder.event(pvc, "Normal", "FailedBinding",
                                      "no persistent volumes available for this claim and no "
                                      "storage class is set")
        elif class_name not in classes:
            await self.recorder.event(pvc, "Warning", "ProvisioningFailed",
                                      f'storageclass.storage.k8s.io "{class_name}" not found')
        else:
            await self._ask_provisioner(pvc, str(classes[class_name].get("provisioner") or ""))

    async def _assign_default_class(self, pvc: Obj, classes: Mapping[str, Obj]) -> bool:
        """Retroactive default StorageClass assignment (KEP-3333): a claim that names no class
        at all (not even `""`) gets the default class once there is one."""
        if pvc.get("spec", {}).get("storageClassName") is not None or \
                vm.BETA_STORAGE_CLASS in vm.annotations_of(pvc):
            return False
        default = default_storage_class(list(classes.values()))
        if default is None:
            return False
        updated = copy.deepcopy(dict(pvc))
        updated["spec"]["storageClassName"] = default["metadata"]["name"]
        try:
            await self.client.update(self.pvc_res, updated, pvc["metadata"]["namespace"])
        except errors.Conflict as exc:
            raise StaleCacheError(f"claim {vm.claim_key(pvc)} changed") from exc
        return True

    async def _ask_provisioner(self, pvc: Obj, provisioner: str) -> None:
        """`setClaimProvisioner`: name the provisioner on the claim, for it to act on."""
        current = vm.annotations_of(pvc)
        if current.get(vm.STORAGE_PROVISIONER) != provisioner or \
                current.get(vm.BETA_STORAGE_PROVISIONER) != provisioner:
            await self.client.patch(self.pvc_res, pvc["metadata"]["name"], {"metadata": {
                "annotations": {vm.STORAGE_PROVISIONER: provisioner,
                                vm.BETA_STORAGE_PROVISIONER: provisioner}}},
                pvc["metadata"]["namespace"], patch_type="merge")
        await self.recorder.event(pvc, "Normal", "ExternalProvisioning",
                                  EXTERNAL_PROVISIONING.format(provisioner))

    async def _sync_prebound_claim(self, pvc: Obj, name: str) -> None:
        pv = self._volume(name)
        if pv is None or (pv.get("spec", {}).get("claimRef") and not vm.is_bound_to(pv, pvc)):
            await self._set_claim_phase(pvc, "Pending")  # missing, or another claim's
            return
        mismatch = vm.volume_mismatch(pv, pvc)
        if mismatch is not None and not pv.get("spec", {}).get("claimRef"):
            await self._set_claim_phase(pvc, "Pending")
            await self.recorder.event(pvc, "Warning", "VolumeMismatch",
                                      f'Cannot bind to requested volume "{name}": {mismatch}')
            return
        await self._bind(pv, pvc)

    async def _sync_bound(self, pvc: Obj) -> None:
        name = pvc.get("spec", {}).get("volumeName")
        if not name:
            await self._lose(pvc, "ClaimLost", "Bound claim has lost reference to "
                                               "PersistentVolume. Data on the volume is lost!")
            return
        pv = self._volume(name)
        if pv is None:
            await self._lose(pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. "
                                               "Data on the volume is lost!")
        elif not pv.get("spec", {}).get("claimRef") or vm.is_bound_to(pv, pvc):
            await self._bind(pv, pvc)
        else:
            await self._lose(pvc, "ClaimMisbound", "Two claims are bound to the same volume, "
                                                   "this one is bound incorrectly")

    async def _lose(self, pvc: Obj, reason: str, message: str) -> None:
        if (pvc.get("status") or {}).get("phase") != "Lost":
            await self._set_claim_phase(pvc, "Lost")
            await self.recorder.event(pvc, "Warning", reason, message)

    # --- binding ------------------------------------------------------------------------------

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        pv = await self._bind_volume(pv, pvc)
        pvc = await self._bind_claim(pvc, pv)
        status = {"phase": "Bound", "accessModes": list(pv["spec"].get("accessModes") or []),
                  "capacity": {"storage": (pv["spec"].get("capacity") or {}).get("storage")}}
        current = pvc.get("status") or {}
        if any(current.get(k) != v for k, v in status.items()):
            await self.client.patch(self.pvc_res, pvc["metadata"]["name"], {"status": status},
                                    pvc["metadata"]["namespace"], patch_type="merge",
                                    subresource="status")

    async def _bind_volume(self, pv: Obj, pvc: Obj) -> Obj:
        """`bindVolumeToClaim` and the volume's phase `Bound`; returns the volume as written."""
        ref = pv.get("spec", {}).get("claimRef") or {}
        if not ref or ref.get("uid") != pvc["metadata"].get("uid"):
            updated = copy.deepcopy(dict(pv))
            if not vm.is_bound_to(pv, pvc):
                meta = updated["metadata"]
                meta["annotations"] = {**(meta.get("annotations") or {}),
                                       vm.BOUND_BY_CONTROLLER: "yes"}
            updated["spec"]["claimRef"] = vm.claim_ref(pvc)
            try:
                pv = await self.client.update(self.pv_res, updated)
            except errors.Conflict as exc:
                raise StaleCacheError(f"volume {pv['metadata']['name']} changed") from exc
            self._assumed[pv["metadata"]["name"]] = pv
        if (pv.get("status") or {}).get("phase") != "Bound":
            pv = await self._set_volume_phase(pv, "Bound")
        return pv

    async def _bind_claim(self, pvc: Obj, pv: Obj) -> Obj:
        """`bindClaimToVolume`: `volumeName` and the binding annotations."""
        name = pv["metadata"]["name"]
        wanted = {vm.BIND_COMPLETED: "yes"}
        if pvc.get("spec", {}).get("volumeName") != name:
            wanted[vm.BOUND_BY_CONTROLLER] = "yes"
        current = vm.annotations_of(pvc)
        if pvc.get("spec", {}).get("volumeName") == name and \
                all(current.get(k) == v for k, v in wanted.items()):
            return pvc
        updated = copy.deepcopy(dict(pvc))
        updated["spec"]["volumeName"] = name
        updated["metadata"]["annotations"] = {**current, **wanted}
        try:
            return await self.client.update(self.pvc_res, updated,
                                            pvc["metadata"]["namespace"])
        except errors.Conflict as exc:
            raise StaleCacheError(f"claim {vm.claim_key(pvc)} changed") from exc

    async def _set_claim_phase(self, pvc: Obj, phase: str) -> None:
        if (pvc.get("status") or {}).get("phase") != phase:
            await self.client.patch(self.pvc_res, pvc["metadata"]["name"],
                                    {"status": {"phase": phase}}, pvc["metadata"]["namespace"],
                                    patch_type="merge", subresource="status")

    async def _set_volume_phase(self, pv: Obj, phase: str, message: str = "") -> Obj:
        status: dict[str, Any] = {"phase": phase, "lastPhaseTransitionTime": rfc3339()}
        if message:
            status["message"] = message
        written = await self.client.patch(self.pv_res, pv["metadata"]["name"],
                                          {"status": status}, patch_type="merge",
                                          subresource="status")
        self._assumed[pv["metadata"]["name"]] = written
        return written

    # --- volumes ------------------------------------------------------------------------------

    async def sync_volume(self, pv: Obj) -> None:
        ref = pv.get("spec", {}).get("claimRef") or {}
        phase = (pv.get("status") or {}).get("phase")
        if not ref or not ref.get("uid"):
            if phase != "Available":
                await self._set_volume_phase(pv, "Available")
            return
        pvc = self.claims.cache.get(f"{ref.get('namespace', '')}/{ref.get('name', '')}")
        if pvc is not None and pvc["metadata"].get("uid") != ref.get("uid"):
            pvc = None  # a new claim of the same name: ours is gone
        if pvc is None:
            await self._released(pv, phase)
            return
        bound_to = pvc.get("spec", {}).get("volumeName")
        if not bound_to:
            self.queue.add(CLAIM + vm.claim_key(pvc))  # the claim's sync finishes the binding
        elif bound_to == pv["metadata"]["name"]:
            if phase != "Bound":
                await self._set_volume_phase(pv, "Bound")
        elif vm.annotations_of(pv).get(vm.BOUND_BY_CONTROLLER):
            await self._unbind(pv)  # the claim took another volume: free this one

    async def _unbind(self, pv: Obj) -> None:
        updated = copy.deepcopy(dict(pv))
        updated["spec"].pop("claimRef", None)
        updated["metadata"]["annotations"] = {
            k: v for k, v in vm.annotations_of(pv).items() if k != vm.BOUND_BY_CONTROLLER}
        try:
            written = await self.client.update(self.pv_res, updated)
        except errors.Conflict as exc:
            raise StaleCacheError(f"volume {pv['metadata']['name']} changed") from exc
        await self._set_volume_phase(written, "Available")

    async def _released(self, pv: Obj, phase: str | None) -> None:
        """The claim is gone: `Released`, then the reclaim policy (`reclaimVolume`)."""
        if phase == "Failed":
            return
        if phase != "Released":
            pv = await self._set_volume_phase(pv, "Released")
        policy = pv.get("spec", {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Retain" or vm.annotations_of(pv).get(vm.PROVISIONED_BY):
            return  # kept; or deleted by the provisioner that made it
        name = pv["metadata"]["name"]
        if policy == "Recycle":
            reason, message = "VolumeFailedRecycle", "No recycler plugin found for the volume!"
        else:
            reason = "VolumeFailedDelete"
            message = (f'error getting deleter volume plugin for volume "{name}": no deletable '
                       "volume plugin matched")
        await self._set_volume_phase(pv, "Failed", message)
        await self.recorder.event(pv, "Warning", reason, message)
