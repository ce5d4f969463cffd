"""What the registry does differently for a custom resource (kube's customResourceStrategy):
schema defaults, and validation of its metadata plus its schema, instead of a kind's table
entry. Custom kinds may share a name with a built-in kind (`Service` in `example.com`), so the
registry asks `res.custom`, never the kind."""

from __future__ import annotations

from typing import Any

from tinykube.api.apiextensions import rules, schema
from tinykube.api.clone import clone
from tinykube.api.errors import FieldError, Rendered
from tinykube.api.resources import Resource
from tinykube.api.validation.meta import validate_meta, validate_meta_update
from tinykube.api.validation.names import dns1123_subdomain_errors

Obj = dict[str, Any]
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
# Schema errors after which kube does not run the CEL rules (hasBlockingErr).
_BLOCKING = frozenset({"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong",
                       "FieldValueTooMany", "FieldValueTypeInvalid"})
_NOT_CHECKED = ("some validation rules were not checked because the object was invalid; "
                "correct the existing errors to complete validation")


def defaulted(res: Resource, obj: Obj) -> Obj:
    result = clone(obj)
    schema.apply_defaults(res.custom.schema, result)
    return result


def validate(res: Resource, obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    if old is not None:
        errs += validate_meta_update(obj, old)
    errs += validate_meta(obj, namespaced=res.namespaced, name_check=dns1123_subdomain_errors)
    errs += schema.validate(res.custom.schema, obj)
    if res.custom.schema is None or not rules.has_rules(res.custom.schema):
        return errs
    if any(e.type in _BLOCKING for e in errs):
        errs.append(FieldError.invalid("<nil>", Rendered('"null"'), _NOT_CHECKED))
    else:
        errs += rules.validate(res.custom.schema, obj, old)
    return errs
