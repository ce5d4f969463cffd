"""The PATCH bodies kube-apiserver accepts, applied as pure functions over JSON-like dicts.

`apply_patch` dispatches on the request's Content-Type:

- `application/merge-patch+json`: RFC 7386 (`merge_patch`, in `merge`). Maps merge, `null`
  deletes a key, anything else (lists included) replaces. kubectl label/annotate/scale send this.
- `application/json-patch+json`: RFC 6902 (`json_patch`, in `jsonpatch`): add, remove, replace,
  move, copy and test on RFC 6901 pointers, with evanphx/json-patch v4's leniencies.
- `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch
  (`strategic_merge_patch`, in `strategic`, driven by the tables in `strategic_meta`), what
  kubectl apply, edit, set image and rollout restart send.
- `application/apply-patch+yaml`: server-side apply. The API server applies objects with
  managed fields (`api.managedfields`, which parses the body with `parse_applied`); the
  `server_side_apply` here is the ownership-free merge, kept for the `scale` subresource.

This module decodes the bodies (within `api.bounds`: a body nested deeper than its limit, or YAML
with excessive aliasing, is a 400 before any patch algorithm recurses into it) and words decoding
errors as kube-apiserver does (400, with Go's
`json: cannot unmarshal ...` text); the patch errors themselves live in `failures` and are
re-exported here, as is every public name of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import yaml

from tinykube.api import bounds, errors
from tinykube.api.patch.failures import PatchFailed, PatchRejected, go_type
from tinykube.api.patch.jsonpatch import json_patch
from tinykube.api.patch.merge import merge_patch
from tinykube.api.patch.strategic import strategic_merge_patch
from tinykube.api.patch.strategic_meta import FIELDS, KIND_PATHS, FieldMeta

__all__ = [
    "APPLY_PATCH",
    "FIELDS",
    "JSON_PATCH",
    "KIND_PATHS",
    "MAX_JSON_PATCH_OPERATIONS",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "FieldMeta",
    "Obj",
    "PatchFailed",
    "PatchRejected",
    "apply_patch",
    "json_patch",
    "merge_patch",
    "parse_applied",
    "server_side_apply",
    "strategic_merge_patch",
]


Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# In the order kube-apiserver lists them for built-in resources.
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)
MAX_JSON_PATCH_OPERATIONS = 10000


# --- dispatch -------------------------------------------------------------------------------

def apply_patch(kind: str, original: Obj, patch_body: bytes, content_type: str) -> Obj:
    """Apply a PATCH request body of `content_type` to `original` (a `kind` object)."""
    media = content_type.split(";")[0].strip().lower()
    patcher = _PATCHERS.get(media)
    if patcher is None:
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(PATCH_TYPES))
    return patcher(kind, original, patch_body)


def server_side_apply(kind: str, live: Obj, applied: Obj) -> Obj:
    """Server-side apply, simplified to a strategic merge of the applied config (see above)."""
    return strategic_merge_patch(kind, live, applied)


def _parse_json(body: bytes, prefix: str) -> Any:
    try:
        parsed = orjson.loads(body)
        bounds.check_json(body, parsed)  # the patch algorithms recurse once or twice a level
        return parsed
    except (orjson.JSONDecodeError, bounds.TooDeep) as exc:
        raise errors.BadRequest(f"{prefix}{exc}") from exc


def _parse_object(body: bytes, prefix: str) -> Obj:
    parsed = _parse_json(body, prefix)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise errors.BadRequest(f"{prefix}json: cannot unmarshal {go_type(parsed)} into Go "
                                "value of type map[string]interface {}")
    return parsed


def _parse_operations(body: bytes) -> list[Obj]:
    prefix = "error decoding patch: "
    parsed = _parse_json(body, prefix)
    if not isinstance(parsed, list):
        raise errors.BadRequest(f"{prefix}json: cannot unmarshal {go_type(parsed)} into Go "
                                "value of type []handlers.jsonPatchOp")
    for operation in parsed:
        if not isinstance(operation, dict):
            raise errors.BadRequest(f"{prefix}json: cannot unmarshal {go_type(operation)} into "
                                    "Go value of type handlers.jsonPatchOp")
        for name in ("op", "path", "from"):
            if name in operation and not isinstance(operation[name], str):
                raise errors.BadRequest(
                    f"{prefix}json: cannot unmarshal {go_type(operation[name])} into Go struct "
                    f"field jsonPatchOp.{name} of type string")
    if len(parsed) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.RequestEntityTooLarge(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(parsed)}")
    return parsed


def parse_applied(body: bytes) -> Obj:
    """An apply body: JSON (what kubectl sends) or YAML."""
    try:
        parsed = orjson.loads(body)
        bounds.check_json(body, parsed)
    except orjson.JSONDecodeError:
        try:
            parsed = bounds.load_yaml(body)
        except (yaml.YAMLError, bounds.TooDeep) as exc:
            raise errors.BadRequest(f"error decoding YAML: {exc}") from exc
    except bounds.TooDeep as exc:
        raise errors.BadRequest(f"error decoding YAML: {exc}") from exc
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise errors.BadRequest(f"error decoding YAML: json: cannot unmarshal {go_type(parsed)} "
                                "into Go value of type map[string]interface {}")
    return parsed


_PATCHERS: dict[str, Callable[[str, Obj, bytes], Obj]] = {
    JSON_PATCH: lambda _kind, obj, body: json_patch(obj, _parse_operations(body)),
    MERGE_PATCH: lambda _kind, obj, body: merge_patch(
        obj, _parse_object(body, "error decoding patch: ")),
    STRATEGIC_MERGE_PATCH: lambda kind, obj, body: strategic_merge_patch(
        kind, obj, _parse_object(body, "")),
    APPLY_PATCH: lambda kind, obj, body: server_side_apply(kind, obj, parse_applied(body)),
}
