"""Which refused events the recorder drops quietly: the Status bodies kube-apiserver (and
tinykube's registry) send, decoded by the REST client as a real refusal would be."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.client import events
from tinykube.client.rest import error_from_status

TERMINATING = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
               "reason": "Forbidden",
               "message": 'events "" is forbidden: unable to create new content in namespace t1 '
                          "because it is being terminated",
               "details": {"name": "", "kind": "events", "causes": [
                   {"reason": "NamespaceTerminating", "field": "metadata.namespace",
                    "message": "namespace t1 is being terminated"}]}}
GONE = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
        "reason": "NotFound", "message": 'namespaces "t1" not found',
        "details": {"name": "t1", "kind": "namespaces"}}
OTHER_FORBIDDEN = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                   "reason": "Forbidden", "message": "events is forbidden: User cannot create"}
OTHER_NAMESPACE_GONE = {**GONE, "message": 'namespaces "t2" not found',
                        "details": {"name": "t2", "kind": "namespaces"}}
INVALID = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
           "reason": "Invalid", "message": "Event is invalid", "details": {"causes": []}}


@pytest.mark.parametrize(("status", "quiet"), [
    pytest.param(TERMINATING, True, id="namespace-terminating"),
    pytest.param(GONE, True, id="namespace-gone"),
    pytest.param(OTHER_FORBIDDEN, False, id="forbidden-otherwise"),
    pytest.param(OTHER_NAMESPACE_GONE, False, id="another-namespace-not-found"),
    pytest.param(INVALID, False, id="invalid"),
])
def test_only_a_namespace_going_away_is_expected(status: dict[str, Any], quiet: bool) -> None:
    assert events._expected(error_from_status(status, status["code"]), "t1") is quiet
