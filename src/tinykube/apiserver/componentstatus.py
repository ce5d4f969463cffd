"""ComponentStatus (`kubectl get componentstatuses`): the health of what the API server stands on.

kube-apiserver computes these on each read and stores nothing: it probes the scheduler, the
controller manager and each etcd server and reports one object per component with a `Healthy`
condition. The component tinykube's API server can observe is its storage, which stands in for
etcd: `etcd-0` is Healthy while the store's last commit succeeded (message `ok`), Unhealthy
with the commit's error otherwise. The controllers and the
node agents run in their own processes and report through Leases and Node conditions, which
`kubectl get nodes` and `kubectl get leases -A` show; they are not listed here rather than
reported healthy on no evidence.

The resource is deprecated upstream (v1.19+), and every request to it carries kube's warning.
"""

from __future__ import annotations

from typing import Any

from tinykube.api import errors
from tinykube.store.cache import Store

Obj = dict[str, Any]

DEPRECATED = "v1 ComponentStatus is deprecated in v1.19+"


def _etcd(store: Store) -> Obj:
    error = store.commit_error
    condition: Obj = {"type": "Healthy", "status": "False" if error else "True",
                      "message": "" if error else "ok"}
    if error:
        condition["error"] = error
    return {"kind": "ComponentStatus", "apiVersion": "v1",
            "metadata": {"name": "etcd-0"}, "conditions": [condition]}


def components(store: Store) -> list[Obj]:
    return [_etcd(store)]


def get(store: Store, name: str) -> Obj:
    for item in components(store):
        if item["metadata"]["name"] == name:
            return item
    raise errors.NotFound.for_object("componentstatuses", "", name)


def list_of(store: Store) -> Obj:
    return {"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {},
            "items": components(store)}
