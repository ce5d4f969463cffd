"""Webhook conversion of custom resources (`spec.conversion.strategy: Webhook`), as
apiextensions-apiserver's `webhookConverter` does it.

Objects are stored in the CRD's storage version; a read, a watch or a write in another served
version sends them to the CRD's conversion webhook in one ConversionReview (`v1`, or `v1beta1`
when that is the only version the webhook lists) with `desiredAPIVersion`, and takes back
`convertedObjects`, checked as upstream checks them: as many as sent, each in the desired
apiVersion and of the same kind, and only its labels and annotations may differ in metadata
(the rest of the metadata is put back from the original). The call goes through
`webhooks.Dispatcher.post` (TLS with `caBundle`, `url` or Service endpoints, bounded pool and
answer size) with upstream's 30 second timeout.

Failures are answered as upstream's: 500 `conversion webhook for <group/version, Kind=K>
failed: Post "URL": ...` (the call), `... returned invalid response: ...` (the answer), or the
webhook's own `result.message` when it says Failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from tinykube.api import errors
from tinykube.api.resources import Resource
from tinykube.apiserver.webhooks import CallFailed, Dispatcher

Obj = dict[str, Any]
TIMEOUT = 30  # seconds, upstream's for conversion webhooks
REVIEW_VERSIONS = ("v1", "v1beta1")


class InvalidResponse(Exception):
    pass


def review_version(webhook: Obj) -> str | None:
    versions = webhook.get("conversionReviewVersions") or []
    return next((v for v in versions if v in REVIEW_VERSIONS), None)


def review(version: str, uid: str, desired: str, objects: Sequence[Obj]) -> Obj:
    return {"apiVersion": f"apiextensions.k8s.io/{version}", "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": list(objects)}}


def converted_objects(version: str, uid: str, desired: str, sent: Sequence[Obj],
                      answer: Any) -> list[Obj]:
    """The answer's objects, checked, with the originals' metadata but labels/annotations."""
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        raise InvalidResponse("no response provided")
    if answer.get("apiVersion") != f"apiextensions.k8s.io/{version}" or \
            answer.get("kind") != "ConversionReview":
        raise InvalidResponse(f"expected webhook response of apiextensions.k8s.io/{version}, "
                              f"Kind=ConversionReview, got {answer.get('apiVersion', '')}, "
                              f"Kind={answer.get('kind', '')}")
    if response.get("uid") != uid:
        raise InvalidResponse(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    result: Obj = response["result"] if isinstance(response.get("result"), dict) else {}
    if result.get("status") != "Success":
        raise CallFailed(str(result.get("message") or
                             f"response.result.status was '{result.get('status', '')}', not "
                             "'Success'"))
    objects = response.get("convertedObjects")
    if not isinstance(objects, list) or len(objects) != len(sent):
        count = len(objects) if isinstance(objects, list) else 0
        raise InvalidResponse(f"expected {len(sent)} converted objects, got {count}")
    return [_checked(i, original, got, desired) for i, (original, got)
            in enumerate(zip(sent, objects, strict=True))]


def _checked(index: int, original: Obj, got: Any, desired: str) -> Obj:
    where = f"invalid converted object at index {index}"
    if not isinstance(got, dict):
        raise InvalidResponse(f"{where}: not an object")
    if got.get("apiVersion") != desired:
        raise InvalidResponse(f'{where}: invalid apiVersion "{got.get("apiVersion", "")}", '
                              f'expected "{desired}"')
    if got.get("kind") != original.get("kind"):
        raise InvalidResponse(f'{where}: invalid kind "{got.get("kind", "")}", expected '
                              f'"{original.get("kind", "")}"')
    meta = dict(original.get("metadata") or {})
    new_meta: Obj = got["metadata"] if isinstance(got.get("metadata"), dict) else {}
    for field in ("labels", "annotations"):  # upstream's restoreObjectMeta
        if new_meta.get(field):
            meta[field] = new_meta[field]
        else:
            meta.pop(field, None)
    return {**got, "metadata": meta}


def _gvk(obj: Obj) -> str:
    return f"{obj.get('apiVersion', '')}, Kind={obj.get('kind', '')}"


class Converter:
    """Converts custom resources through their CRD's webhook."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def __repr__(self) -> str:
        return f"crd_conversion.Converter({self.dispatcher!r})"

    async def convert(self, res: Resource, objects: Sequence[Obj], desired: str) -> list[Obj]:
        """`objects` in `desired` (those already in it are left alone)."""
        todo = [i for i, obj in enumerate(objects) if obj.get("apiVersion") != desired]
        if not todo:
            return list(objects)
        sent = [objects[i] for i in todo]
        got = await self._call(res.custom.webhook or {}, sent, desired)
        out = list(objects)
        for i, obj in zip(todo, got, strict=True):
            out[i] = obj
        return out

    async def _call(self, webhook: Obj, sent: list[Obj], desired: str) -> list[Obj]:
        gvk = _gvk(sent[0])
        version = review_version(webhook)
        if version is None:
            raise errors.InternalError(
                f"Internal error occurred: conversion webhook for {gvk} failed: webhook does "
                "not accept known "
                "ConversionReview versions (v1, v1beta1)")
        uid = str(uuid.uuid4())
        body = orjson.dumps(review(version, uid, desired, sent))
        try:
            answer = await self.dispatcher.post(webhook.get("clientConfig") or {}, TIMEOUT, body)
            return converted_objects(version, uid, desired, sent, answer)
        except CallFailed as exc:
            raise errors.InternalError(
                f"Internal error occurred: conversion webhook for {gvk} failed: {exc}") from exc
        except InvalidResponse as exc:
            raise errors.InternalError(
                f"Internal error occurred: conversion webhook for {gvk} returned invalid "
                f"response: {exc}") from exc
