"""The CSR approver: which requests it asks about, what it asks, what it writes."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.controllers.csrapproving import (
    RECOGNIZERS,
    access_review,
    approved,
    pending,
    recognized,
)
from tinykube.controllers.csrsigning import Request

KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
NODE = Request(common_name="system:node:n1", organizations=("system:nodes",))
USAGES = ["digital signature", "client auth"]
SELF, ANY = RECOGNIZERS


def _csr(signer: str = KUBELET, username: str = "bootstrap", usages: list[str] = USAGES,
         **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "c"}, "status": status,
            "spec": {"signerName": signer, "username": username, "groups": ["g"],
                     "usages": usages}}


@pytest.mark.parametrize(("csr", "req", "expected"), [
    pytest.param(_csr(), NODE, [ANY], id="bootstrap-nodeclient"),
    pytest.param(_csr(username="system:node:n1"), NODE, [SELF, ANY], id="self-renewal"),
    pytest.param(_csr(signer="kubernetes.io/kube-apiserver-client"), NODE, [],
                 id="other-signer"),
    pytest.param(_csr(), Request("system:node:n1", ("devs",)), [], id="not-a-kubelet-client"),
    pytest.param(_csr(usages=["client auth"]), NODE, [], id="wrong-usages"),
])
def test_recognized(csr: dict[str, Any], req: Request, expected: list[Any]) -> None:
    assert recognized(csr, req) == expected


@pytest.mark.parametrize(("status", "expected"), [
    pytest.param({}, True, id="new"),
    pytest.param({"conditions": [{"type": "Approved", "status": "True"}]}, False,
                 id="approved"),
    pytest.param({"conditions": [{"type": "Denied", "status": "True"}]}, False, id="denied"),
    pytest.param({"certificate": "Y2VydA=="}, False, id="issued"),
])
def test_pending(status: dict[str, Any], expected: bool) -> None:
    assert pending(_csr(**status)) is expected


def test_access_review_asks_for_the_requestor() -> None:
    csr = _csr()
    csr["spec"].update(uid="u-1", extra={"scopes": ["a"]})
    assert access_review(csr, ANY) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "bootstrap", "groups": ["g"], "uid": "u-1", "extra": {"scopes": ["a"]},
                 "resourceAttributes": {
                     "group": "certificates.k8s.io", "version": "*",
                     "resource": "certificatesigningrequests", "subresource": "nodeclient",
                     "verb": "create"}}}


def test_approved_adds_the_condition_to_a_copy() -> None:
    csr = _csr()
    new = approved(csr, SELF.message)
    assert csr["status"] == {}
    assert new["status"]["conditions"] == [{
        "type": "Approved", "status": "True", "reason": "AutoApproved",
        "message": "Auto approving self kubelet client certificate after SubjectAccessReview."}]
