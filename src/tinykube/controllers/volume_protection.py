"""StorageObjectInUseProtection: the `pvc-protection` and `pv-protection` controllers.

The admission plugin of the same name puts `kubernetes.io/pvc-protection` on every claim and
`kubernetes.io/pv-protection` on every volume when they are created; deleting one then only
sets its `deletionTimestamp` (`kubectl get` shows `Terminating`) until these controllers take
the finalizer off:

- a claim's, once no pod that may still run (not `Succeeded` or `Failed`) names it in its
  volumes. The cache says so first; as kube's controller does, the live pod list of the
  namespace confirms it before the finalizer goes, so a pod created a moment ago still holds it;
- a volume's, once it is not `Bound` to a claim.

Pod events re-queue the deleting claims they name, so the claim goes as soon as its last pod
does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.client.controller import Controller, split_key
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers import volumematch as vm

Obj = Mapping[str, Any]
PVC_FINALIZER = "kubernetes.io/pvc-protection"
PV_FINALIZER = "kubernetes.io/pv-protection"


def _deleting_with(obj: Obj, finalizer: str) -> bool:
    meta = obj.get("metadata", {})
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])


def uses_claim(pods: Iterable[Obj], name: str) -> bool:
    return any((pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
               and name in vm.claim_names(pod) for pod in pods)


async def remove_finalizer(client: RESTClient, res: resources.Resource, obj: Obj,
                           finalizer: str) -> None:
    meta = obj["metadata"]
    remaining = [f for f in meta.get("finalizers") or [] if f != finalizer]
    patch = {"metadata": {"finalizers": remaining or None,
                          "resourceVersion": meta.get("resourceVersion")}}
    try:
        await client.patch(res, meta["name"], patch, meta.get("namespace") or None,
                           patch_type="merge")
    except errors.NotFound:
        return


class PVCProtectionController(Controller):
    name = "pvc-protection-controller"

    def __init__(self, client: RESTClient) -> None:
        self.pvc_res = resources.must("", "v1", "persistentvolumeclaims")
        self.pods_res = resources.must("", "v1", "pods")
        self.claims = shared_informer(client, self.pvc_res)
        self.pods = shared_informer(client, self.pods_res)
        super().__init__(client, [self.claims, self.pods])
        self.claims.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.pods.add_handlers(on_update=lambda _o, n: self._on_pod(n), on_delete=self._on_pod)

    def _on_pod(self, pod: Obj) -> None:
        namespace = pod["metadata"].get("namespace", "")
        for name in vm.claim_names(pod):
            self.queue.add(f"{namespace}/{name}")

    async def sync(self, key: str) -> None:
        pvc = self.claims.cache.get(key)
        if pvc is None or not _deleting_with(pvc, PVC_FINALIZER):
            return
        namespace, name = split_key(key)
        cached = [p for p in self.pods.cache.list()
                  if p["metadata"].get("namespace") == namespace]
        if uses_claim(cached, name):
            return
        live = await self.client.list(self.pods_res, namespace)
        if uses_claim(live.get("items") or [], name):
            return
        await remove_finalizer(self.client, self.pvc_res, pvc, PVC_FINALIZER)


class PVProtectionController(Controller):
    name = "pv-protection-controller"

    def __init__(self, client: RESTClient) -> None:
        self.pv_res = resources.must("", "v1", "persistentvolumes")
        self.volumes = shared_informer(client, self.pv_res)
        super().__init__(client, [self.volumes])
        self.volumes.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        pv = self.volumes.cache.get(key)
        if pv is None or not _deleting_with(pv, PV_FINALIZER):
            return
        if (pv.get("status") or {}).get("phase") == "Bound":
            return
        await remove_finalizer(self.client, self.pv_res, pv, PV_FINALIZER)
