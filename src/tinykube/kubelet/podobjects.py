"""The API objects the node's pods' volumes read, fetched the way a node may read them.

Under the Node authorizer a kubelet may not list Secrets, ConfigMaps, claims or volumes; it may
read those its pods use, one at a time. So, as the kubelet's watch-based ConfigMap and Secret
managers (`pkg/kubelet/util/manager`) and its volume manager do:

- each ConfigMap and Secret a pod of the node names (`volumes.references`) gets a watch of its
  own: a list and watch in its namespace with the field selector `metadata.name=NAME`, started
  when the first pod that names it appears and stopped when the last is gone; its changes go to
  `on_change` (the agent re-syncs the pods that use it, so their files follow);
- claims and their PersistentVolumes are read with a GET at every sync of a pod that mounts one
  (`fetch_claims`), until its volumes are set up; the volume manager's retry re-syncs the pod.

Lookups (`Objects` of `volumes`) are synchronous, from what was watched or fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.client.informer import Informer
from tinykube.client.rest import RESTClient
from tinykube.kubelet import volumes as pod_volumes

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]
WATCHED = ("configmaps", "secrets")
SYNC_WAIT = 5.0  # seconds a sync waits for a new object watch's first list
Key = tuple[str, str, str]  # (resource, namespace, name)


class PodObjects:
    """Watches and fetches of the objects the node's pods use (see the module docstring)."""

    def __init__(self, client: RESTClient, on_change: Callable[[str, Obj], None]) -> None:
        self.client = client
        self.on_change = on_change
        self._watches: dict[Key, tuple[Informer, asyncio.Task[None]]] = {}
        self._users: dict[Key, set[str]] = {}  # -> the uids of the pods that use it
        self._of_pod: dict[str, set[Key]] = {}
        self._claims: dict[tuple[str, str], Obj] = {}
        self._volumes: dict[str, Obj] = {}

    def __repr__(self) -> str:
        return f"PodObjects(watches={len(self._watches)}, claims={len(self._claims)})"

    # -- ConfigMaps and Secrets

    def track(self, pod: Obj) -> None:
        """Watch what the pod's volumes name (once per object, however many pods)."""
        uid, namespace = str(pod["metadata"].get("uid")), str(pod["metadata"]["namespace"])
        wanted = {(plural, namespace, name) for plural, name in pod_volumes.references(pod)
                  if plural in WATCHED and name}
        for key in self._of_pod.get(uid, set()) - wanted:
            self._release(uid, key)
        for key in wanted:
            self._users.setdefault(key, set()).add(uid)
            if key not in self._watches:
                self._watches[key] = self._watch(*key)
        self._of_pod[uid] = wanted

    def forget(self, pod: Obj) -> None:
        uid = str(pod["metadata"].get("uid"))
        for key in self._of_pod.pop(uid, set()):
            self._release(uid, key)

    def _release(self, uid: str, key: Key) -> None:
        users = self._users.get(key, set())
        users.discard(uid)
        if not users:
            self._users.pop(key, None)
            watch = self._watches.pop(key, None)
            if watch is not None:
                watch[1].cancel()

    def _watch(self, plural: str, namespace: str, name: str) -> tuple[Informer, asyncio.Task[None]]:
        informer = Informer(self.client, resources.must("", "v1", plural), namespace=namespace,
                            field_selector=f"metadata.name={name}")

        def changed(obj: Obj) -> None:
            self.on_change(plural, obj)
        informer.add_handlers(on_add=changed, on_update=lambda _old, new: changed(new),
                              on_delete=changed)
        task = asyncio.create_task(informer.run(), name=f"kubelet/{plural}/{namespace}/{name}")
        return informer, task

    async def wait_synced(self, pod: Obj) -> None:
        """Wait (a little) until the watches of the pod's objects have listed once."""
        informers = [self._watches[key][0] for key in self._of_pod.get(
            str(pod["metadata"].get("uid")), ()) if key in self._watches]
        if informers and not all(i.has_synced for i in informers):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_WAIT):
                    await asyncio.gather(*(i.wait_synced() for i in informers))

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        watch = self._watches.get((plural, namespace, name))
        return watch[0].cache.get(f"{namespace}/{name}") if watch is not None else None

    # -- claims and volumes

    async def fetch_claims(self, pod: Obj) -> None:
        """GET the pod's claims and their bound volumes (a missing one is dropped)."""
        namespace = str(pod["metadata"]["namespace"])
        for plural, name in pod_volumes.references(pod):
            if plural != "persistentvolumeclaims" or not name:
                continue
            claim = await self._fetch("persistentvolumeclaims", name, namespace)
            if claim is None:
                self._claims.pop((namespace, name), None)
                continue
            self._claims[(namespace, name)] = claim
            volume = str((claim.get("spec") or {}).get("volumeName") or "")
            if volume:
                found = await self._fetch("persistentvolumes", volume, None)
                if found is None:
                    self._volumes.pop(volume, None)
                else:
                    self._volumes[volume] = found

    async def _fetch(self, plural: str, name: str, namespace: str | None) -> Obj | None:
        try:
            found: Obj = await self.client.get(resources.must("", "v1", plural), name,
                                               namespace)
            return found
        except errors.NotFound:
            return None
        except errors.APIError as exc:
            log.warning("reading %s %s: %s", plural, name, exc)
            return None

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self._claims.get((namespace, name))

    def volume(self, name: str) -> Obj | None:
        return self._volumes.get(name)

    def close(self) -> None:
        for _informer, task in self._watches.values():
            task.cancel()
        self._watches.clear()
