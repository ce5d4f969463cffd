"""The API server's own endpoints: `default/kubernetes` Endpoints and EndpointSlice name the
API server's address and port, as kube-apiserver's endpoint reconciler writes them, and are
put back when they are missing or stale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tinykube.api import resources
from tinykube.apiserver import bootstrap
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

ENDPOINTS = resources.must("", "v1", "endpoints")
SLICES = resources.must("discovery.k8s.io", "v1", "endpointslices")
SERVICES = resources.must("", "v1", "services")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    return Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR))


def get(registry: Registry, res: resources.Resource) -> dict[str, Any]:
    entry = registry.store.get(res.storage_key, "default", "kubernetes")
    assert entry is not None
    return entry.obj


def test_bootstrap_creates_the_kubernetes_endpoints(registry: Registry) -> None:
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    endpoints = get(registry, ENDPOINTS)
    assert endpoints["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                                     "ports": [{"name": "https", "port": 6443,
                                                "protocol": "TCP"}]}]
    assert endpoints["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    slice_ = get(registry, SLICES)
    assert slice_["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert slice_["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]
    assert get(registry, SERVICES)["spec"]["ports"][0]["targetPort"] == 6443


def _delete_endpoints(registry: Registry) -> None:
    registry.delete(ENDPOINTS, "default", "kubernetes", {})


def _edit_endpoints(registry: Registry) -> None:
    edited = dict(get(registry, ENDPOINTS))
    edited["subsets"] = [{"addresses": [{"ip": "127.0.0.9"}], "ports": [{"port": 1}]}]
    registry.update(ENDPOINTS, edited)


def _delete_slice(registry: Registry) -> None:
    registry.delete(SLICES, "default", "kubernetes", {})


@pytest.mark.parametrize("damage", [
    pytest.param(_delete_endpoints, id="endpoints-deleted"),
    pytest.param(_edit_endpoints, id="endpoints-edited"),
    pytest.param(_delete_slice, id="slice-deleted"),
])
def test_reconcile_puts_the_endpoints_back(registry: Registry,
                                           damage: Callable[[Registry], None]) -> None:
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    want = get(registry, ENDPOINTS)["subsets"], get(registry, SLICES)["endpoints"]
    damage(registry)
    bootstrap.reconcile_endpoints(registry, api_host="127.0.0.1", api_port=6443)
    assert (get(registry, ENDPOINTS)["subsets"], get(registry, SLICES)["endpoints"]) == want


def test_restart_on_another_port_moves_every_pointer(registry: Registry) -> None:
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=7443)
    assert get(registry, ENDPOINTS)["subsets"][0]["ports"][0]["port"] == 7443
    assert get(registry, SLICES)["ports"][0]["port"] == 7443
    assert get(registry, SERVICES)["spec"]["ports"][0]["targetPort"] == 7443
    assert get(registry, SERVICES)["spec"]["ports"][0]["port"] == 443


def test_reconcile_of_current_endpoints_writes_nothing(registry: Registry) -> None:
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    before = registry.store.resource_version
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    bootstrap.reconcile_endpoints(registry, api_host="127.0.0.1", api_port=6443)
    assert registry.store.resource_version == before


def test_bootstrap_creates_kinds_default_storage_class(registry: Registry) -> None:
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    entry = registry.store.get("storage.k8s.io/storageclasses", "", "standard")
    assert entry is not None
    sc = entry.obj
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == \
        ("rancher.io/local-path", "Delete", "WaitForFirstConsumer")
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}


def test_a_changed_default_class_is_kept_at_restart(registry: Registry) -> None:
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    res = resources.must("storage.k8s.io", "v1", "storageclasses")
    sc = registry.store.get(res.storage_key, "", "standard")
    assert sc is not None
    registry.update(res, {**sc.obj, "metadata": {**sc.obj["metadata"], "annotations": {}}})
    bootstrap.bootstrap(registry, api_host="127.0.0.1", api_port=6443)
    again = registry.store.get(res.storage_key, "", "standard")
    assert again is not None and again.obj["metadata"].get("annotations") in (None, {})
