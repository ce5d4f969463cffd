"""The errors a patch can fail with, and how Go renders values inside their messages.

Errors are worded and coded as kube-apiserver words them: undecodable bodies are 400 (raised
where the body is decoded); a JSON patch that does not apply and an SMP list of lists are 422
with the fixed generic message (`PatchRejected`; the reason is kept in `PatchRejected.cause`, not
sent); SMP errors upstream leaves unconverted (a missing merge key, `$patch: merge`) are 500s
without a reason (`PatchFailed`), which kubectl prints as `Error from server: <message>`.

Upstream's messages embed Go renderings of the offending values: `go_type` is the JSON type name
Go's decoder reports, `go_format` is `%v` of a decoded JSON value.
"""

from __future__ import annotations

from typing import Any

from tinykube.api import errors
from tinykube.api.schema import go_type

__all__ = ["PatchFailed", "PatchRejected", "go_format", "go_type"]

_REJECTED = "the server rejected our request due to an error in our request"


class PatchRejected(errors.Invalid):
    """422 for a patch that cannot be applied: apimachinery's `NewGenericServerResponse(422)`.

    The wire message is fixed and `details` is empty, so kubectl prints `The request is invalid:
    the server rejected our request due to an error in our request`. `cause` keeps the reason.
    """

    def __init__(self, cause: str) -> None:
        errors.APIError.__init__(self, _REJECTED, details={})
        self.kind = self.group = self.name = ""
        self.errors = []
        self.cause = cause


class PatchFailed(errors.InternalError):
    """500 with no reason: a plain Go error kube-apiserver returns unconverted."""

    reason = ""


def go_format(value: Any) -> str:
    """A value as Go's `%v` prints decoded JSON: `map[name:web port:80]`, `[a b]`, `<nil>`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
