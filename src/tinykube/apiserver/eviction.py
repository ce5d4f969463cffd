"""The `pods/<name>/eviction` subresource: delete a pod unless that breaks its disruption budget.

`POST /api/v1/namespaces/NS/pods/NAME/eviction` with a policy/v1 (or v1beta1) `Eviction`
body, as `kubectl drain` sends it. The decision is `api.disruption.decide_eviction` (upstream's
EvictionREST.Create); this module is its I/O, done against the registry in one step of the
event loop, so the check of the budget, its status write and the pod's deletion cannot
interleave with another eviction (upstream retries on conflicts to get the same effect):

1. the body must be an Eviction naming the pod of the URL (400 otherwise); the pod must exist
   (404 `pods "x" not found`);
2. the budgets of the pod's namespace are read; an allowed eviction that counts against a
   budget writes the budget's status first (`disruptionsAllowed` decremented, the pod in
   `disruptedPods`), as upstream does, so the disruption controller does not count it healthy;
3. the pod is deleted with the Eviction's `deleteOptions` (grace period, preconditions,
   propagation, dryRun, also `?dryRun=All`), and the answer is `Status Success` with code 201.

A budget with no room answers 429 TooManyRequests, `Cannot evict pod as it would violate the
pod's disruption budget.`, with a `DisruptionBudget` cause, which kubectl drain prints and
retries after 5 s.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinykube.api import disruption, errors, resources
from tinykube.api.clone import clone
from tinykube.apiserver import codec
from tinykube.apiserver.registry import Registry

Obj = dict[str, Any]
_PDB = ("policy", "v1", "poddisruptionbudgets")


def _eviction_body(raw: bytes, content_type: str, name: str) -> Obj:
    body = codec.parse_body(raw, content_type) if raw.strip() else None
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        kind = body.get("kind") if isinstance(body, dict) else type(body).__name__
        raise errors.BadRequest(f"not a Eviction object: {kind}")
    if (body.get("metadata") or {}).get("name") != name:
        raise errors.BadRequest("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.BadRequest("deleteOptions must be an object")
    return body


def evict(registry: Registry, request: web.Request, raw: bytes, namespace: str, name: str,
          *, query_dry_run: bool) -> Obj:
    """Evict pod `namespace/name` as the Eviction in `raw` asks; the Status to answer."""
    if request.method != "POST":
        raise errors.MethodNotAllowed(
            f"the server does not allow this method on the requested resource "
            f"({request.method})")
    body = _eviction_body(raw, request.headers.get("Content-Type", codec.JSON), name)
    options = clone(body.get("deleteOptions") or {})
    if query_dry_run and not options.get("dryRun"):
        options["dryRun"] = ["All"]
    dry_run = bool(options.get("dryRun"))
    pods_res = resources.must("", "v1", "pods")
    pod = registry.get(pods_res, namespace, name)
    pdb_res = resources.must(*_PDB)
    budgets = [e.obj for e in registry.store.list(pdb_res.storage_key, namespace)]
    outcome = disruption.decide_eviction(pod.obj, budgets, registry.clock(), dry_run=dry_run)
    if outcome.enforce_rv and not (options.get("preconditions") or {}).get("resourceVersion"):
        options.setdefault("preconditions", {})["resourceVersion"] = str(pod.rv)
    if outcome.budget_status is not None:
        pdb = clone(registry.get(pdb_res, namespace, outcome.budget).obj)
        pdb["status"] = outcome.budget_status
        registry.update(pdb_res, pdb, subresource="status")
    registry.delete(pods_res, namespace, name, options, dry_run=dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}
