"""Status bodies byte for byte as kube-apiserver writes them: Go's field order, then a newline.

The golden bodies are kube-apiserver v1.32's answers to the same failures (what
`curl -s` prints); clients such as the official Python client quote them verbatim.
"""

from __future__ import annotations

import pytest

from tinykube.api import errors
from tinykube.api.remotecommand import exit_status

GOLDEN = {
    "not-found": (
        errors.NotFound.for_object("pods", "", "x"),
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"pods \\"x\\" not found","reason":"NotFound",'
        b'"details":{"name":"x","kind":"pods"},"code":404}\n'),
    "not-found-in-group": (
        errors.NotFound.for_object("deployments", "apps", "web"),
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"deployments.apps \\"web\\" not found","reason":"NotFound",'
        b'"details":{"name":"web","group":"apps","kind":"deployments"},"code":404}\n'),
    "unknown-path": (
        errors.NotFound.path(),
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"the server could not find the requested resource","reason":"NotFound",'
        b'"details":{},"code":404}\n'),
    "invalid-with-cause": (
        errors.Invalid("Service", "", "svc", [errors.FieldError.invalid(
            "spec.ports[0].port", 0, "must be between 1 and 65535, inclusive")]),
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"Service \\"svc\\" is invalid: spec.ports[0].port: Invalid value: 0: must '
        b'be between 1 and 65535, inclusive","reason":"Invalid","details":{"name":"svc",'
        b'"kind":"Service","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: 0: '
        b'must be between 1 and 65535, inclusive","field":"spec.ports[0].port"}]},"code":422}\n'),
    "no-details": (
        errors.BadRequest("bad"),
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"bad",'
        b'"reason":"BadRequest","code":400}\n'),
}


@pytest.mark.parametrize(("error", "body"), GOLDEN.values(), ids=GOLDEN.keys())
def test_error_body_is_kube_apiserver_bytes(error: errors.APIError, body: bytes) -> None:
    assert error.body() == body


def test_status_json_orders_fields_whatever_the_dict_order() -> None:
    shuffled = {"code": 410, "details": {"causes": [{"field": "f", "message": "m", "reason": "r"}],
                                         "kind": "k", "name": "n"},
                "reason": "Expired", "message": "gone", "status": "Failure",
                "metadata": {"continue": "t"}, "apiVersion": "v1", "kind": "Status"}
    assert errors.status_json(shuffled) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{"continue":"t"},"status":"Failure",'
        b'"message":"gone","reason":"Expired","details":{"name":"n","kind":"k","causes":'
        b'[{"reason":"r","message":"m","field":"f"}]},"code":410}')


def test_exec_exit_status_is_go_compact_json() -> None:
    """The kubelet's error-stream Status, as Go's json.Marshal writes it (no newline)."""
    assert errors.status_json(exit_status(3)) == (
        b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit '
        b'code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":'
        b'"ExitCode","message":"3"}]}}')


def test_status_json_leaves_out_what_go_omitempty_leaves_out() -> None:
    """Empty strings, zero and null go; metadata (a struct) and empty details (a pointer) stay."""
    assert errors.status_json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "message": "", "reason": "",
                               "details": {}, "code": 0}) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","details":{}}')
    assert b"details" not in errors.status_json({"status": "Success", "details": None})
