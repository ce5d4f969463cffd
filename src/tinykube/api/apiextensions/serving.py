"""What the HTTP layer does differently for a custom resource, as kube's crdHandler does:

- request bodies are JSON or YAML only: a protobuf body is 415 (custom resources have no
  protobuf encoding);
- patches are JSON patch, merge patch or apply: a strategic merge patch is 415 (there are no Go
  struct tags to merge by), with kube's list of accepted types;
- no creates while the CRD is being deleted (405, "create not allowed while custom resource
  definition is terminating");
- the scale subresource reads and writes the paths the CRD names (`specReplicasPath`,
  `statusReplicasPath`, `labelSelectorPath`).
"""

from __future__ import annotations

from typing import Any

from tinykube.api import errors
from tinykube.api.apiextensions.model import CustomKind
from tinykube.api.apiextensions.printing import evaluate

Obj = dict[str, Any]
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/apply-patch+yaml")
BODY_TYPES = ("application/json", "application/yaml")


def check_request(method: str, content_type: str, target: Any) -> None:
    media = content_type.split(";")[0].strip().lower()
    if method in ("POST", "PUT") and media.startswith("application/vnd.kubernetes.protobuf"):
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(BODY_TYPES))
    custom: CustomKind = target.res.custom
    if custom.terminating and method == "POST" and target.is_collection:
        error = errors.MethodNotAllowed(
            "create not allowed while custom resource definition is terminating")
        raise error


def check_patch_type(content_type: str) -> None:
    if content_type == "application/strategic-merge-patch+json":
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(PATCH_TYPES))


def _steps(path: str) -> list[str]:
    return [p for p in path.split(".") if p]


def scale_of(custom: CustomKind, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale of a custom resource (kube's scale subresource for CRs)."""
    scale = custom.scale or {}
    meta = obj["metadata"]
    spec_replicas = evaluate(scale.get("specReplicasPath", ""), obj)
    status_replicas = evaluate(scale.get("statusReplicasPath", ""), obj)
    selector = evaluate(scale.get("labelSelectorPath", ""), obj) \
        if scale.get("labelSelectorPath") else None
    status: Obj = {"replicas": status_replicas if isinstance(status_replicas, int) else 0}
    if isinstance(selector, str) and selector:
        status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": spec_replicas if isinstance(spec_replicas, int) else 0},
        "status": status,
    }


def set_replicas(custom: CustomKind, obj: Obj, replicas: int) -> None:
    """Write `replicas` at the CRD's specReplicasPath, creating the objects on the way."""
    steps = _steps((custom.scale or {}).get("specReplicasPath", ".spec.replicas"))
    node = obj
    for step in steps[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[steps[-1]] = replicas
