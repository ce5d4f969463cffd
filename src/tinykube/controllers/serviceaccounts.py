"""Every namespace's `default` ServiceAccount and `kube-root-ca.crt` ConfigMap.

Two small upstream controllers in one: the service account controller makes sure each active
namespace has a ServiceAccount named `default` (manifests and scripts rely on it: pods run as it
unless they name another), and the root CA publisher keeps a ConfigMap `kube-root-ca.crt` in each
active namespace whose `ca.crt` is the cluster's CA bundle, so in-cluster clients can verify the
API server. Both are recreated when deleted, and the ConfigMap's data is put back when changed.
Terminating namespaces are left alone (the namespace controller is emptying them).

Keys are namespace names. `plan` is the pure decision: what to create or update, given the
namespace, whether its `default` ServiceAccount exists, and the ConfigMap's current data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from tinykube.api import errors, resources
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICE_ACCOUNT = "default"
ROOT_CA = "kube-root-ca.crt"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a namespace is missing."""

    create_account: bool = False
    root_ca: Obj | None = None  # the ConfigMap to create or update, if any
    update_root_ca: bool = False  # root_ca exists with other data: update it


def plan(namespace: Mapping[str, Any] | None, *, has_account: bool,
         root_ca: Mapping[str, Any] | None, ca_bundle: str | None) -> Plan:
    """The objects an active namespace needs (nothing for a missing or terminating one)."""
    if namespace is None or namespace["metadata"].get("deletionTimestamp"):
        return Plan()
    name = namespace["metadata"]["name"]
    wanted = None
    if ca_bundle and (root_ca is None or root_ca.get("data") != {"ca.crt": ca_bundle}):
        wanted = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": ROOT_CA, "namespace": name}, "data": {"ca.crt": ca_bundle}}
        if root_ca is not None:
            wanted["metadata"] = {**root_ca["metadata"]}
    return Plan(create_account=not has_account, root_ca=wanted,
                update_root_ca=wanted is not None and root_ca is not None)


def service_account(namespace: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}}


class ServiceAccountsController(Controller):
    name = "serviceaccounts-controller"

    def __init__(self, client: RESTClient, *, root_ca_client: RESTClient | None = None) -> None:
        # upstream's two controllers in one: the service-account controller (`client`) and
        # the root-ca-cert-publisher (`root_ca_client`, for kube-root-ca.crt), each with the
        # identity of its own upstream counterpart
        self.root_ca_client = root_ca_client or client
        self.ns_res = resources.must("", "v1", "namespaces")
        self.sa_res = resources.must("", "v1", "serviceaccounts")
        self.cm_res = resources.must("", "v1", "configmaps")
        self.namespaces = shared_informer(client, self.ns_res)
        self.accounts = shared_informer(client, self.sa_res,
                                        field_selector=f"metadata.name={SERVICE_ACCOUNT}")
        self.root_cas = shared_informer(client, self.cm_res,
                                        field_selector=f"metadata.name={ROOT_CA}")
        super().__init__(client, [self.namespaces, self.accounts, self.root_cas])
        ca = client.config.ca_data
        self.ca_bundle = ca.decode() if ca else None  # None: plain HTTP, nothing to publish
        self.namespaces.add_handlers(on_add=self.enqueue,
                                     on_update=lambda _old, new: self.enqueue(new))
        for informer in (self.accounts, self.root_cas):
            informer.add_handlers(on_update=lambda _old, new: self._enqueue_namespace(new),
                                  on_delete=self._enqueue_namespace)

    def _enqueue_namespace(self, obj: Mapping[str, Any]) -> None:
        self.queue.add(str(obj["metadata"].get("namespace", "")))

    async def sync(self, key: str) -> None:
        decision = plan(self.namespaces.cache.get(key),
                        has_account=self.accounts.cache.get(f"{key}/{SERVICE_ACCOUNT}")
                        is not None,
                        root_ca=self.root_cas.cache.get(f"{key}/{ROOT_CA}"),
                        ca_bundle=self.ca_bundle)
        try:
            if decision.create_account:
                await self._create(self.sa_res, service_account(key), key)
            if decision.root_ca is not None and decision.update_root_ca:
                await self.root_ca_client.update(self.cm_res, decision.root_ca)
            elif decision.root_ca is not None:
                await self._create(self.cm_res, decision.root_ca, key, self.root_ca_client)
        except errors.NotFound:  # the namespace went away meanwhile
            return

    async def _create(self, res: resources.Resource, obj: Obj, namespace: str,
                      client: RESTClient | None = None) -> None:
        with contextlib.suppress(errors.AlreadyExists):  # made by someone else meanwhile
            await (client or self.client).create(res, obj, namespace)
