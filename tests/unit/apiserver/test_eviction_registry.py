"""The eviction subresource against a real registry, and the DaemonSet template generation.

`eviction.evict` is driven with a mocked aiohttp request (only its method and Content-Type are
read); the registry and its SQLite store are real, with an injected clock.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from tinykube.api import disruption, errors, resources
from tinykube.apiserver import app, eviction
from tinykube.apiserver.allocators import ServiceAllocator
from tinykube.apiserver.registry import Registry
from tinykube.settings import DEFAULT_SERVICE_CIDR
from tinykube.store.cache import Store
from tinykube.store.sqlite import SQLiteBackend

Obj = dict[str, Any]
NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)
PODS = resources.must("", "v1", "pods")
PDBS = resources.must("policy", "v1", "poddisruptionbudgets")
DAEMONSETS = resources.must("apps", "v1", "daemonsets")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    store = Store(SQLiteBackend(tmp_path / "state.db"))
    registry = Registry(store, ServiceAllocator(DEFAULT_SERVICE_CIDR), clock=lambda: NOW)
    registry.create(resources.must("", "v1", "namespaces"), {"metadata": {"name": "default"}})
    return registry


def running_pod(registry: Registry, name: str) -> None:
    registry.create(PODS, {"metadata": {"name": name, "namespace": "default",
                                        "labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    pod = copy.deepcopy(registry.get(PODS, "default", name).obj)
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    registry.update(PODS, pod, subresource="status")


def budget(registry: Registry, allowed: int) -> None:
    registry.create(PDBS, {"metadata": {"name": "web", "namespace": "default"},
                           "spec": {"minAvailable": 1,
                                    "selector": {"matchLabels": {"app": "web"}}}})
    pdb = copy.deepcopy(registry.get(PDBS, "default", "web").obj)
    pdb["status"] = {"disruptionsAllowed": allowed, "currentHealthy": 2, "desiredHealthy": 1,
                     "expectedPods": 2, "observedGeneration": 1}
    registry.update(PDBS, pdb, subresource="status")


def evict(registry: Registry, name: str, body: Obj | None = None, method: str = "POST",
          dry_run: bool = False) -> Obj:
    request = make_mocked_request(method, f"/api/v1/namespaces/default/pods/{name}/eviction",
                                  headers={"Content-Type": "application/json"})
    raw = orjson.dumps(body if body is not None else {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
    return eviction.evict(registry, request, raw, "default", name, query_dry_run=dry_run)


def test_eviction_records_the_disruption_then_deletes(registry: Registry) -> None:
    running_pod(registry, "web-1")
    budget(registry, 1)
    assert evict(registry, "web-1") == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                        "status": "Success", "code": 201}
    with pytest.raises(errors.NotFound):
        registry.get(PODS, "default", "web-1")  # unbound: no grace period to wait out
    status = registry.get(PDBS, "default", "web").obj["status"]
    assert status["disruptionsAllowed"] == 0
    assert status["disruptedPods"] == {"web-1": "2026-11-27T12:00:00Z"}


def test_exhausted_budget_keeps_the_pod(registry: Registry) -> None:
    running_pod(registry, "web-1")
    budget(registry, 0)
    with pytest.raises(errors.TooManyRequests):
        evict(registry, "web-1")
    assert registry.get(PODS, "default", "web-1")


def test_dry_run_changes_nothing(registry: Registry) -> None:
    running_pod(registry, "web-1")
    budget(registry, 1)
    evict(registry, "web-1", dry_run=True)
    assert registry.get(PODS, "default", "web-1")
    assert registry.get(PDBS, "default", "web").obj["status"]["disruptionsAllowed"] == 1


BAD = [
    ("missing-pod", "nope", None, "POST", errors.NotFound, 'pods "nope" not found'),
    ("name-mismatch", "web-1", {"kind": "Eviction", "metadata": {"name": "x"}}, "POST",
     errors.BadRequest, "name in URL does not match name in Eviction object"),
    ("not-an-eviction", "web-1", {"kind": "Pod", "metadata": {"name": "web-1"}}, "POST",
     errors.BadRequest, "not a Eviction object: Pod"),
    ("get", "web-1", None, "GET", errors.MethodNotAllowed,
     "the server does not allow this method on the requested resource (GET)"),
]


@pytest.mark.parametrize(("name", "body", "method", "error", "message"),
                         [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_evictions(registry: Registry, name: str, body: Obj | None, method: str,
                       error: type[errors.APIError], message: str) -> None:
    running_pod(registry, "web-1")
    with pytest.raises(error) as raised:
        evict(registry, name, body, method)
    assert raised.value.message == message


def test_daemonset_template_generation_moves_with_the_template(registry: Registry) -> None:
    key = "deprecated.daemonset.template.generation"
    registry.create(DAEMONSETS, {"metadata": {"name": "agent", "namespace": "default",
                                              "annotations": {key: "7"}},
                                 "spec": {"selector": {"matchLabels": {"app": "a"}},
                                          "template": {"metadata": {"labels": {"app": "a"}},
                                                       "spec": {"containers": [
                                                           {"name": "c", "image": "x"}]}}}})
    ds = copy.deepcopy(registry.get(DAEMONSETS, "default", "agent").obj)  # stored: not ours
    assert ds["metadata"]["annotations"][key] == "1"
    ds["spec"]["minReadySeconds"] = 5
    ds["metadata"]["annotations"].pop(key)
    ds = copy.deepcopy(registry.update(DAEMONSETS, ds).obj)
    assert ds["metadata"]["annotations"][key] == "1"  # not the template: kept, even if dropped
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "y"
    ds = registry.update(DAEMONSETS, ds).obj
    assert ds["metadata"]["annotations"][key] == "2"
    assert ds["metadata"]["generation"] == 3


@pytest.mark.parametrize(("retry", "header"), [(10, "10"), (0, None)], ids=["delay", "none"])
def test_retry_after_header_from_the_status_details(retry: int, header: str | None) -> None:
    response = app._status_response(disruption.too_many_requests("busy", retry_after=retry))
    assert response.status == 429
    assert response.headers.get("Retry-After") == header
