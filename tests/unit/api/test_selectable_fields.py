"""CRD `selectableFields`: the CRD write's checks and field selectors on custom resources."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tinykube.api import errors, selectors
from tinykube.api.apiextensions import model
from tinykube.api.apiextensions.validation import validate_crd

Obj = dict[str, Any]
CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                       "listKind": "WidgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object", "properties": {
                         "color": {"type": "string", "enum": ["red", "blue"]},
                         "size": {"type": "integer"}, "on": {"type": "boolean"},
                         "ratio": {"type": "number"},
                         "tags": {"type": "array", "items": {"type": "string"}}}}}}}}]},
    "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"}},
}
AT = "spec.versions[0].selectableFields"


def _crd(*paths: str) -> Obj:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": p} for p in paths]
    return crd


@pytest.mark.parametrize(("paths", "expected"), [
    ((".spec.color", ".spec.size", ".spec.on"), []),
    ((".spec.ratio",), [f'{AT}[0].jsonPath: Invalid value: ".spec.ratio": must point to a field '
                        "of type string, boolean or integer. Enum string fields and strings "
                        "with formats are allowed."]),
    ((".spec.nope",), [f'{AT}[0].jsonPath: Invalid value: ".spec.nope": is an invalid path: '
                       "does not refer to a valid field"]),
    ((".spec.tags[0]",), [f'{AT}[0].jsonPath: Invalid value: ".spec.tags[0]": is an invalid '
                          "path: array notation is not allowed"]),
    ((".spec.color", ".spec.color"), [f'{AT}[1].jsonPath: Duplicate value: ".spec.color"']),
    (("",), [f"{AT}[0].jsonPath: Required value"]),
])
def test_crd_write(paths: tuple[str, ...], expected: list[str]) -> None:
    assert [str(e) for e in validate_crd(_crd(*paths))] == expected


def test_field_selectors_on_selectable_fields() -> None:
    custom = model.rows(_crd(".spec.color", ".spec.size"))[0].custom
    assert custom.selectable == ("spec.color", "spec.size")
    red = {"metadata": {"name": "a"}, "spec": {"color": "red", "size": 3}}
    plain = {"metadata": {"name": "b"}, "spec": {}}
    fields = selectors.parse_fields("spec.color=red,spec.size=3")
    selectors.check_fields("", fields, custom.selectable)
    assert [selectors.match_fields(fields, o) for o in (red, plain)] == [True, False]
    absent = selectors.parse_fields("spec.color=")  # an absent field selects as ""
    assert [selectors.match_fields(absent, o) for o in (red, plain)] == [False, True]
    with pytest.raises(errors.BadRequest) as refused:
        selectors.check_fields("", selectors.parse_fields("spec.on=true"), custom.selectable)
    assert refused.value.message == ('"spec.on" is not a known field selector: only '
                                     '"metadata.name", "metadata.namespace", "spec.color", '
                                     '"spec.size"')
