"""API errors, one class per wire outcome, each able to render itself as a `Status`.

kube-apiserver answers every failure with a `meta/v1 Status` body whose `reason`, `code` and
`details` drive what kubectl prints (see `shared/docs/kubectl-compat.md` §5). Everything below the
HTTP layer raises these exceptions; the API server turns them into responses at one boundary.

Every Status on the wire goes through `status_json` (or `APIError.body`), which writes the fields
in the order of Go's `metav1.Status` struct (kind, apiVersion, metadata, status, message, reason,
details, code; details as name, group, kind, uid, causes, retryAfterSeconds). A response body
ends with a newline as Go's `json.Encoder` writes it: clients quote error bodies verbatim.

Field errors follow apimachinery's `field.Error`: a path such as `spec.ports[0].port`, a type
(`FieldValueInvalid`, `FieldValueRequired`, ...) and a detail. Their `message` is worded exactly
as `field.Error.ErrorBody()` words it so that kubectl prints the familiar lines.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import orjson

# Cause reasons (apimachinery metav1.CauseType) for each field error type.
_FIELD_TYPES: dict[str, str] = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueTypeInvalid": "Invalid value",
    "FieldValueUnknown": "Unknown field",
}


# Field order of Go's metav1.Status, StatusDetails and StatusCause (encoding/json follows it).
_STATUS_FIELDS = ("kind", "apiVersion", "metadata", "status", "message", "reason", "details",
                  "code")
_DETAILS_FIELDS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
_CAUSE_FIELDS = ("reason", "message", "field")


def _ordered(value: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields in Go's order, without those Go's `omitempty` leaves out ("", 0, null);
    `metadata` (a struct) and `details` (a pointer, so `{}` stays) are written when present."""
    return {k: value[k] for k in fields
            if k in value and (value[k] or k in ("metadata", "details")) and value[k] is not None}


def status_json(status: dict[str, Any]) -> bytes:
    """A Status as compact JSON in Go's field order (no newline: to embed, or for a stream)."""
    ordered = _ordered(status, _STATUS_FIELDS)
    details = ordered.get("details")
    if isinstance(details, dict):
        details = ordered["details"] = _ordered(details, _DETAILS_FIELDS)
        if isinstance(details.get("causes"), list):
            details["causes"] = [_ordered(c, _CAUSE_FIELDS) for c in details["causes"]]
    return orjson.dumps(ordered)


def status_body(status: dict[str, Any]) -> bytes:
    """A Status as a response body: `status_json` and the newline of Go's json.Encoder."""
    return status_json(status) + b"\n"


class Rendered(str):
    """A bad value already rendered as Go prints it (e.g. an unstructured map)."""


def _go_value(value: Any) -> str:
    """Render a bad value the way `field.Error` does for common Go types."""
    if isinstance(value, Rendered):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    # Other values print with Go's %#v; string slices and maps (`clusterIPs`, selectors) can be
    # mirrored exactly, structs cannot, so they stay JSON.
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        pairs = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + pairs + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One invalid field: `spec.ports[0].port: Invalid value: 0: must be ...`."""

    type: str  # a key of _FIELD_TYPES, e.g. "FieldValueInvalid"
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls("FieldValueInvalid", field, detail, value, True)

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls("FieldValueRequired", field, detail)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls("FieldValueDuplicate", field, "", value, True)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls("FieldValueForbidden", field, detail)

    @classmethod
    def not_supported(cls, field: str, value: Any, valid: list[str]) -> FieldError:
        quoted = ", ".join(json.dumps(v) for v in valid)
        return cls("FieldValueNotSupported", field, f"supported values: {quoted}", value, True)

    @classmethod
    def too_long(cls, field: str, value: Any, limit: int) -> FieldError:
        """`field.TooLong` as of 1.32 (older servers said "must have at most N bytes")."""
        return cls("FieldValueTooLong", field, f"may not be more than {limit} bytes", value, True)

    @classmethod
    def unknown(cls, field: str) -> FieldError:
        return cls("FieldValueUnknown", field, "")

    @property
    def message(self) -> str:
        """The cause message, as `field.Error.ErrorBody()` words it (without the field)."""
        kind = _FIELD_TYPES.get(self.type, "Invalid value")
        if self.type == "FieldValueUnknown":
            return f'unknown field "{self.field}"'
        if self.has_value and self.type not in ("FieldValueRequired", "FieldValueForbidden",
                                                "FieldValueTooLong"):
            body = f"{kind}: {_go_value(self.value)}"
        else:
            body = kind
        return f"{body}: {self.detail}" if self.detail else body

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.message, "field": self.field}


class APIError(Exception):
    """Base class: an HTTP status code, a Status `reason`, a message and optional details."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status

    def body(self) -> bytes:
        """The response body: this error's Status, as kube-apiserver writes it."""
        return status_body(self.to_status())


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


class BadRequest(APIError):
    code = 400
    reason = "BadRequest"


class Unauthorized(APIError):
    code = 401
    reason = "Unauthorized"


class Forbidden(APIError):
    code = 403
    reason = "Forbidden"

    @classmethod
    def for_object(cls, resource: str, group: str, name: str, message: str) -> Forbidden:
        """`errors.NewForbidden`: `<resource> "<name>" is forbidden: <message>`."""
        return cls(f'{_qualified(resource, group)} "{name}" is forbidden: {message}',
                   details=_details(name, group, resource))


class NotFound(APIError):
    code = 404
    reason = "NotFound"

    @classmethod
    def for_object(cls, resource: str, group: str, name: str) -> NotFound:
        message = f'{_qualified(resource, group)} "{name}" not found'
        return cls(message, details=_details(name, group, resource))

    @classmethod
    def path(cls) -> NotFound:
        return cls("the server could not find the requested resource", details={})


class MethodNotAllowed(APIError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(APIError):
    code = 409
    reason = "AlreadyExists"

    @classmethod
    def for_object(cls, resource: str, group: str, name: str) -> AlreadyExists:
        message = f'{_qualified(resource, group)} "{name}" already exists'
        return cls(message, details=_details(name, group, resource))


class Conflict(APIError):
    code = 409
    reason = "Conflict"

    @classmethod
    def modified(cls, resource: str, group: str, name: str) -> Conflict:
        message = (
            f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": '
            "the object has been modified; please apply your changes to the latest version "
            "and try again"
        )
        return cls(message, details=_details(name, group, resource))


class Gone(APIError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(APIError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(APIError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(APIError):
    """422: the object failed validation; `causes` carry one FieldError each."""

    code = 422
    reason = "Invalid"

    def __init__(self, kind: str, group: str, name: str, errors: list[FieldError]) -> None:
        self.kind, self.group, self.name = kind, group, name
        self.errors = errors
        joined = ", ".join(str(e) for e in errors)
        if len(errors) > 1:
            joined = f"[{joined}]"
        details = _details(name, group, kind)
        details["causes"] = [e.to_cause() for e in errors]
        super().__init__(f'{kind}{"." + group if group else ""} "{name}" is invalid: {joined}',
                         details=details)


class TooManyRequests(APIError):
    code = 429
    reason = "TooManyRequests"


class InternalError(APIError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(APIError):
    code = 503
    reason = "ServiceUnavailable"


class Timeout(APIError):
    """504: the server could not answer in time; the client may retry."""

    code = 504
    reason = "Timeout"

    @classmethod
    def resource_version_too_large(cls, wanted: int, current: int, *,
                                   retry_after: int) -> Timeout:
        """kube-apiserver's NewTooLargeResourceVersionError: a read not older than a version
        the server has not reached (`retry_after` 0 is left out, as Go's omitempty leaves it)."""
        details: dict[str, Any] = {"causes": [{"reason": "ResourceVersionTooLarge",
                                               "message": "Too large resource version"}]}
        if retry_after:
            details["retryAfterSeconds"] = retry_after
        return cls(f"Timeout: Too large resource version: {wanted}, current: {current}",
                   details=details)
