"""Conversion webhook answers as a table: what upstream's webhookConverter accepts and how it
words what it refuses; metadata other than labels and annotations comes back from the original."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.apiserver import crd_conversion as cc
from tinykube.apiserver.webhooks import CallFailed

SENT = [{"apiVersion": "g/v1", "kind": "K",
         "metadata": {"name": "a", "uid": "u", "labels": {"x": "1"}}, "spec": {"v": 1}}]


def answer(objects: Any = None, *, uid: str = "id", status: str = "Success",
           message: str = "", api_version: str = "apiextensions.k8s.io/v1") -> dict[str, Any]:
    result: dict[str, Any] = {"status": status}
    if message:
        result["message"] = message
    return {"apiVersion": api_version, "kind": "ConversionReview",
            "response": {"uid": uid, "result": result,
                         "convertedObjects": objects if objects is not None else []}}


def converted(**changes: Any) -> dict[str, Any]:
    return {"apiVersion": "g/v2", "kind": "K",
            "metadata": {"name": "renamed", "uid": "other", "labels": {"y": "2"}},
            "spec": {"w": 1}, **changes}


REFUSED = [
    ({}, cc.InvalidResponse, "no response provided"),
    (answer([converted()], uid="x"), cc.InvalidResponse, 'expected response.uid="id", got "x"'),
    (answer([converted()], api_version="apiextensions.k8s.io/v1beta1"), cc.InvalidResponse,
     "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got "
     "apiextensions.k8s.io/v1beta1, Kind=ConversionReview"),
    (answer([], status="Failure", message="cannot convert"), CallFailed, "cannot convert"),
    (answer([], status="Failure"), CallFailed,
     "response.result.status was 'Failure', not 'Success'"),
    (answer([]), cc.InvalidResponse, "expected 1 converted objects, got 0"),
    (answer([converted(apiVersion="g/v1")]), cc.InvalidResponse,
     'invalid converted object at index 0: invalid apiVersion "g/v1", expected "g/v2"'),
    (answer([converted(kind="L")]), cc.InvalidResponse,
     'invalid converted object at index 0: invalid kind "L", expected "K"'),
]


@pytest.mark.parametrize(("got", "error", "message"), REFUSED)
def test_refused_answers(got: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        cc.converted_objects("v1", "id", "g/v2", SENT, got)
    assert str(caught.value) == message


def test_metadata_restored_but_labels_and_annotations() -> None:
    out = cc.converted_objects("v1", "id", "g/v2", SENT, answer([converted()]))
    assert out == [{"apiVersion": "g/v2", "kind": "K", "spec": {"w": 1},
                    "metadata": {"name": "a", "uid": "u", "labels": {"y": "2"}}}]


def test_review_version_and_request() -> None:
    assert cc.review_version({"conversionReviewVersions": ["v2", "v1beta1"]}) == "v1beta1"
    assert cc.review_version({}) is None
    assert cc.review("v1", "id", "g/v2", SENT) == {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "id", "desiredAPIVersion": "g/v2", "objects": SENT}}
