"""The CSR approving controller: approve kubelet client requests their requestor may make.

As kube-controller-manager's `csrapproving` (pkg/controller/certificates/approver): a pending
request (no Approved or Denied condition, no certificate) for
`kubernetes.io/kube-apiserver-client-kubelet` that passes the kubelet client rules
(`csrsigning.check_kubelet_client`) is recognized as

1. `selfnodeclient` when its requestor (`spec.username`) is the certificate's CN (a node
   renewing its own certificate), then
2. `nodeclient` (anyone asking for a node's certificate, as a bootstrap token does);

for each recognizer in that order a SubjectAccessReview asks the API server whether the
requestor (user, uid, groups, extra of the request) may `create`
`certificatesigningrequests/<recognizer>` in certificates.k8s.io; the first allowed one adds
`Approved` with reason `AutoApproved` and upstream's message through the `approval`
subresource. A request not allowed stays pending for a person to approve or deny. No other
signer's requests are ever approved automatically.

The answer is the API server's authorizer: the SubjectAccessReview goes through the API, so
the controller follows whatever authorization the server does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from tinykube.api import certificates as certs
from tinykube.api import errors, resources
from tinykube.api.clone import clone
from tinykube.client.controller import Controller
from tinykube.client.informer import shared as shared_informer
from tinykube.client.rest import RESTClient
from tinykube.controllers.csrsigning import Request, check_kubelet_client, request_view

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
APPROVED_REASON = "AutoApproved"


@dataclasses.dataclass(frozen=True)
class Recognizer:
    subresource: str  # of certificatesigningrequests, the permission the requestor needs
    message: str
    self_only: bool  # the requestor must be the certificate's CN


RECOGNIZERS = (
    Recognizer("selfnodeclient",
               "Auto approving self kubelet client certificate after SubjectAccessReview.",
               self_only=True),
    Recognizer("nodeclient", "Auto approving kubelet client certificate after "
                             "SubjectAccessReview.", self_only=False),
)


def pending(csr: Obj) -> bool:
    """Neither approved nor denied, and not issued."""
    return not (certs.of_type(csr, certs.APPROVED) or certs.of_type(csr, certs.DENIED)
                or certs.certificate_bytes(csr))


def recognized(csr: Obj, req: Request) -> list[Recognizer]:
    """The recognizers that apply to `csr`, in the order their permission is asked."""
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_CLIENT_SIGNER:
        return []
    if check_kubelet_client(req, [str(u) for u in spec.get("usages") or []]) is not None:
        return []
    return [r for r in RECOGNIZERS if not r.self_only or spec.get("username") == req.common_name]


def access_review(csr: Obj, recognizer: Recognizer) -> dict[str, Any]:
    spec = csr.get("spec") or {}
    review_spec: dict[str, Any] = {
        "user": spec.get("username", ""), "groups": list(spec.get("groups") or []),
        "resourceAttributes": {"group": "certificates.k8s.io", "version": "*",
                               "resource": "certificatesigningrequests",
                               "subresource": recognizer.subresource, "verb": "create"}}
    if spec.get("uid"):
        review_spec["uid"] = spec["uid"]
    if spec.get("extra"):
        review_spec["extra"] = clone(dict(spec["extra"]))
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": review_spec}


def approved(csr: Obj, message: str) -> dict[str, Any]:
    """`csr` (a copy) with the Approved condition added."""
    new = clone(dict(csr))
    new.setdefault("status", {}).setdefault("conditions", []).append({
        "type": certs.APPROVED, "status": "True", "reason": APPROVED_REASON,
        "message": message})
    return new


class CSRApprovingController(Controller):
    name = "csrapproving-controller"

    def __init__(self, client: RESTClient) -> None:
        self.res = resources.must("certificates.k8s.io", "v1", "certificatesigningrequests")
        self.reviews = resources.must("authorization.k8s.io", "v1", "subjectaccessreviews")
        self.csrs = shared_informer(client, self.res)
        super().__init__(client, [self.csrs])
        self.csrs.add_handlers(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))

    async def sync(self, key: str) -> None:
        csr = self.csrs.cache.get(key)
        if csr is None or not pending(csr) or \
                (csr.get("spec") or {}).get("signerName") != KUBELET_CLIENT_SIGNER:
            return
        request = certs.parse_request((csr.get("spec") or {}).get("request"))
        tried = recognized(csr, request_view(request))
        for recognizer in tried:
            answer = await self.client.create(self.reviews, access_review(csr, recognizer))
            if (answer.get("status") or {}).get("allowed"):
                with contextlib.suppress(errors.NotFound):
                    await self.client.update(self.res, approved(csr, recognizer.message),
                                             subresource="approval")
                return
        if tried:
            log.debug("%s: recognized %s as %s but no SubjectAccessReview allowed it",
                      self.name, key, [r.subresource for r in tried])
