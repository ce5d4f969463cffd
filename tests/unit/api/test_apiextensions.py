"""CustomResourceDefinitions: the CRD's validation, structural schemas, naming, and what a
custom resource goes through (pruning, defaulting, schema validation, printing), as tables
with kube's messages."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from tinykube.api.apiextensions import model, names, printing, schema, structural
from tinykube.api.apiextensions.defaults import default_crd
from tinykube.api.apiextensions.validation import validate_crd, validate_crd_update

Obj = dict[str, Any]
ROOT = "spec.versions[0].schema.openAPIV3Schema"


def _crd(**changes: Any) -> Obj:
    crd: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                           "listKind": "CronTabList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]},
    }
    for path, value in changes.items():
        node = crd
        *parents, last = path.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return crd


CRD_CASES = [
    ("valid", _crd(), []),
    ("name-not-plural-dot-group", _crd(metadata__name="crontabs.example.com"),
     ['metadata.name: Invalid value: "crontabs.example.com": must be '
      'spec.names.plural+"."+spec.group']),
    ("group-without-dot", _crd(metadata__name="crontabs.stable", spec__group="stable"),
     ['spec.group: Invalid value: "stable": should be a domain with at least one dot']),
    ("scope-required", _crd(spec__scope=None), ["spec.scope: Required value"]),
    ("protected-group", _crd(metadata__name="crontabs.x.k8s.io", spec__group="x.k8s.io"),
     ["metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must "
      'have approval annotation "api-approved.kubernetes.io", see '
      "https://github.com/kubernetes/enhancements/pull/1111"]),
    ("scope-unsupported", _crd(spec__scope="Global"),
     ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']),
    ("no-storage-version", _crd(spec__versions__0__storage=False),
     ['spec.versions: Invalid value: []string{"v1"}: must have exactly one version marked as '
      "storage version"]),
    ("schema-required", _crd(spec__versions__0__schema=None),
     [f"{ROOT}: Required value: schemas are required"]),
    ("root-type-required", _crd(spec__versions__0__schema={"openAPIV3Schema": {}}),
     [f"{ROOT}.type: Required value: must not be empty at the root"]),
    ("root-must-be-object",
     _crd(spec__versions__0__schema={"openAPIV3Schema": {"type": "string"}}),
     [f'{ROOT}.type: Invalid value: "string": must be object at the root']),
    ("kind-bad", _crd(spec__names__kind="Cron_Tab"),
     ['spec.names.kind: Invalid value: "Cron_Tab": may have mixed case, but should otherwise '
      "match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
      "start with an alphabetic character, and end with an alphanumeric character (e.g. "
      "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
    ("kind-equals-listkind", _crd(spec__names__listKind="CronTab"),
     ['spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the '
      "same"]),
    ("plural-required", _crd(spec__names__plural=None, metadata__name=".stable.example.com"),
     ["spec.names.plural: Required value"]),
    ("list-map-without-keys", _crd(spec__versions__0__schema={"openAPIV3Schema": {
        "type": "object", "properties": {"a": {
            "type": "array", "x-kubernetes-list-type": "map",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}),
     [f"{ROOT}.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if "
      "x-kubernetes-list-type is map"]),
    ("list-type-unsupported", _crd(spec__versions__0__schema={"openAPIV3Schema": {
        "type": "object", "properties": {"a": {
            "type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}}}}),
     [f'{ROOT}.properties[a].x-kubernetes-list-type: Unsupported value: "bag": supported '
      'values: "atomic", "set", "map"']),
    ("unique-items", _crd(spec__versions__0__schema={"openAPIV3Schema": {
        "type": "object", "properties": {"a": {
            "type": "array", "uniqueItems": True, "items": {"type": "string"}}}}}),
     [f"{ROOT}.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since "
      "the runtime complexity becomes quadratic"]),
    ("default-of-wrong-type", _crd(spec__versions__0__schema={"openAPIV3Schema": {
        "type": "object", "properties": {"a": {"type": "integer", "default": "one"}}}}),
     [f'{ROOT}.properties[a].default: Invalid value: "string": {ROOT}.properties[a].default '
      'in body must be of type integer: "string"']),
    ("default-with-unknown-fields", _crd(spec__versions__0__schema={"openAPIV3Schema": {
        "type": "object", "properties": {"a": {
            "type": "object", "default": {"x": 1},
            "properties": {"y": {"type": "integer"}}}}}}),
     [f"{ROOT}.properties[a].default: Invalid value: map[string]interface {{}}{{\"x\":1}}: "
      "must not have unknown fields"]),
    ("column-type", _crd(spec__versions__0__additionalPrinterColumns=[
        {"name": "X", "type": "float", "jsonPath": ".spec.x"}]),
     ['spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "float": '
      'supported values: "boolean", "date", "integer", "number", "string"']),
    ("scale-path", _crd(spec__versions__0__subresources={"scale": {
        "specReplicasPath": ".status.replicas", "statusReplicasPath": ".status.replicas"}}),
     ['spec.versions[0].subresources.scale.specReplicasPath: Invalid value: '
      '".status.replicas": should be a json path under .spec']),
]


@pytest.mark.parametrize(("crd", "expected"), [c[1:] for c in CRD_CASES],
                         ids=[c[0] for c in CRD_CASES])
def test_crd_validation(crd: Obj, expected: list[str]) -> None:
    default_crd(crd)
    found = [str(e) for e in validate_crd(crd)]
    if expected and expected[0].startswith("spec.names.kind"):
        assert found[:1] == [expected[0].replace(",  or", ", or")] or found[:1] == expected
    else:
        assert found == expected


def test_crd_update_keeps_group_plural_and_stored_versions() -> None:
    old = _crd()
    default_crd(old)
    new = copy.deepcopy(old)
    new["spec"]["group"] = "other.example.com"
    new["spec"]["versions"][0]["name"] = "v2"
    assert [str(e) for e in validate_crd_update(new, old)] == [
        'spec.group: Invalid value: "other.example.com": field is immutable',
        'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions']


def test_defaults_fill_names_and_stored_versions() -> None:
    crd = _crd(spec__names={"plural": "crontabs", "kind": "CronTab"})
    default_crd(crd)
    assert crd["spec"]["names"] == {"plural": "crontabs", "kind": "CronTab",
                                    "singular": "crontab", "listKind": "CronTabList"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["status"]["storedVersions"] == ["v1"]


STRUCTURAL_CASES = [
    ("array-without-items", {"type": "object", "properties": {"a": {"type": "array"}}},
     ["r.properties[a].items: Required value: must be specified"]),
    ("field-without-type", {"type": "object", "properties": {"a": {"minimum": 1}}},
     ["r.properties[a].type: Required value: must not be empty for specified object fields"]),
    ("preserve-unknown-needs-no-type",
     {"type": "object", "properties": {"a": {"x-kubernetes-preserve-unknown-fields": True}}}, []),
    ("int-or-string", {"type": "object", "properties": {"a": {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}]}}}, []),
    ("type-in-junctor", {"type": "object", "properties": {"a": {
        "type": "string", "anyOf": [{"type": "string"}]}}},
     ["r.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"]),
    ("additional-properties-at-root",
     {"type": "object", "additionalProperties": {"type": "string"}},
     ["r.additionalProperties: Forbidden: must not be used at the root"]),
    ("metadata-beyond-name", {"type": "object", "properties": {"metadata": {
        "type": "object", "properties": {"labels": {"type": "object"}}}}},
     ["r.properties[metadata]: Forbidden: must not specify anything other than name and "
      "generateName, but metadata is implicitly specified"]),
    ("embedded-needs-object", {"type": "object", "properties": {"a": {
        "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}}},
     ["r.properties[a].type: Required value: must be object if x-kubernetes-embedded-resource "
      "is true"]),
]


@pytest.mark.parametrize(("s", "expected"), [c[1:] for c in STRUCTURAL_CASES],
                         ids=[c[0] for c in STRUCTURAL_CASES])
def test_structural(s: Obj, expected: list[str]) -> None:
    assert [str(e) for e in structural.errors(s, "r")] == expected


SPEC_SCHEMA: Obj = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
    "size": {"type": "string", "enum": ["S", "M"]},
    "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
    "ports": {"type": "array", "maxItems": 2, "items": {"type": "integer"},
              "x-kubernetes-list-type": "set"},
    "rules": {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}}}},
    "port": {"x-kubernetes-int-or-string": True},
    "note": {"type": "string", "nullable": True},
    "labels": {"type": "object", "additionalProperties": {"type": "string"},
               "maxProperties": 1},
    "choice": {"type": "object", "properties": {"a": {"type": "string"},
                                               "b": {"type": "string"}},
               "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
}, "required": ["replicas"]}}}

VALUE_CASES = [
    ("valid", {"replicas": 3, "size": "S", "name": "ab", "port": "http", "note": None}, []),
    ("type", {"replicas": "3"},
     ['spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
      'integer: "string"']),
    ("required", {}, ["spec.replicas: Required value"]),
    ("maximum", {"replicas": 11},
     ["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal "
      "to 10"]),
    ("minimum", {"replicas": 0},
     ["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal "
      "to 1"]),
    ("enum", {"replicas": 1, "size": "XL"},
     ['spec.size: Unsupported value: "XL": supported values: "S", "M"']),
    ("max-length", {"replicas": 1, "name": "abcdefg"},
     ["spec.name: Too long: may not be more than 5 bytes"]),
    ("min-length-and-pattern", {"replicas": 1, "name": "A"},
     ['spec.name: Invalid value: "A": spec.name in body should be at least 2 chars long',
      "spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'"]),
    ("max-items", {"replicas": 1, "ports": [1, 2, 3]},
     ["spec.ports: Too many: 3: must have at most 2 items"]),
    ("set-duplicate", {"replicas": 1, "ports": [1, 1]},
     ["spec.ports[1]: Duplicate value: 1"]),
    ("map-duplicate", {"replicas": 1, "rules": [{"name": "a"}, {"name": "a"}]},
     ['spec.rules[1]: Duplicate value: map[string]interface {}{"name":"a"}']),
    ("int-or-string", {"replicas": 1, "port": True},
     ['spec.port: Invalid value: "boolean": spec.port in body must be of type '
      'integer,string: "boolean"']),
    ("not-nullable", {"replicas": 1, "size": None},
     ['spec.size: Invalid value: "null": spec.size in body must be of type string: "null"']),
    ("additional-properties", {"replicas": 1, "labels": {"a": 1}},
     ['spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type '
      'string: "integer"']),
    ("max-properties", {"replicas": 1, "labels": {"a": "x", "b": "y"}},
     ['spec.labels: Invalid value: map[string]interface {}{"a":"x", "b":"y"}: spec.labels in '
      "body should have at most 1 properties"]),
    ("one-of", {"replicas": 1, "choice": {"a": "x", "b": "y"}},
     ['spec.choice: Invalid value: map[string]interface {}{"a":"x", "b":"y"}: spec.choice in '
      "body must validate one and only one schema (oneOf)"]),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in VALUE_CASES],
                         ids=[c[0] for c in VALUE_CASES])
def test_schema_validation(spec: Obj, expected: list[str]) -> None:
    obj = {"apiVersion": "x.example.com/v1", "kind": "X", "metadata": {"name": "a"},
           "spec": spec}
    assert [str(e) for e in schema.validate(SPEC_SCHEMA, obj)] == expected


PRUNE_SCHEMA: Obj = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "known": {"type": "string"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "items": {"type": "array", "items": {"type": "object",
                                             "properties": {"a": {"type": "string"}}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "v": {"type": "string"}}}},
        "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True},
    }}}}

PRUNE_CASES = [
    ("unknown-field", {"spec": {"known": "a", "extra": 1}, "top": 2},
     {"spec": {"known": "a"}}, ["spec.extra", "top"]),
    ("preserved", {"spec": {"free": {"any": {"thing": 1}}}},
     {"spec": {"free": {"any": {"thing": 1}}}}, []),
    ("list-items", {"spec": {"items": [{"a": "x", "b": "y"}]}},
     {"spec": {"items": [{"a": "x"}]}}, ["spec.items[0].b"]),
    ("map-values", {"spec": {"map": {"k": {"v": "1", "w": "2"}}}},
     {"spec": {"map": {"k": {"v": "1"}}}}, ["spec.map.k.w"]),
    ("embedded-keeps-type-meta",
     {"spec": {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                            "spec": {}}}},
     {"spec": {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                            "spec": {}}}}, []),
]


@pytest.mark.parametrize(("body", "pruned", "dropped"), [c[1:] for c in PRUNE_CASES],
                         ids=[c[0] for c in PRUNE_CASES])
def test_pruning(body: Obj, pruned: Obj, dropped: list[str]) -> None:
    obj = {"apiVersion": "x.example.com/v1", "kind": "X", "metadata": {"name": "a"}, **body}
    assert schema.prune(PRUNE_SCHEMA, obj) == dropped
    assert obj == {"apiVersion": "x.example.com/v1", "kind": "X", "metadata": {"name": "a"},
                   **pruned}


DEFAULT_SCHEMA: Obj = {"type": "object", "properties": {"spec": {
    "type": "object", "default": {},
    "properties": {"replicas": {"type": "integer", "default": 1},
                   "image": {"type": "string"},
                   "ports": {"type": "array", "items": {"type": "object", "properties": {
                       "protocol": {"type": "string", "default": "TCP"}}}}}}}}

DEFAULT_CASES = [
    ("whole-spec", {}, {"spec": {"replicas": 1}}),
    ("kept", {"spec": {"replicas": 3}}, {"spec": {"replicas": 3}}),
    ("list-items", {"spec": {"replicas": 2, "ports": [{}, {"protocol": "UDP"}]}},
     {"spec": {"replicas": 2, "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}]}}),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in DEFAULT_CASES],
                         ids=[c[0] for c in DEFAULT_CASES])
def test_defaulting(body: Obj, expected: Obj) -> None:
    schema.apply_defaults(DEFAULT_SCHEMA, body)
    assert body == expected


def _named(name: str, plural: str, kind: str, short: list[str], accepted: bool) -> Obj:
    crd = _crd(metadata__name=f"{plural}.stable.example.com")
    crd["spec"]["names"] = {"plural": plural, "singular": plural[:-1], "kind": kind,
                            "listKind": f"{kind}List", "shortNames": short}
    crd["metadata"]["name"] = name
    crd["status"] = {"acceptedNames": dict(crd["spec"]["names"]) if accepted else {}}
    return crd


NAME_CASES = [
    ("no-conflict", _named("b", "bars", "Bar", ["b"], False), "True", "NoConflicts"),
    ("plural", _named("b", "foos", "Bar", [], False), "False", "PluralConflict"),
    ("kind", _named("b", "bars", "Foo", [], False), "False", "KindConflict"),
    ("short-name", _named("b", "bars", "Bar", ["f"], False), "False", "ShortNamesConflict"),
]


@pytest.mark.parametrize(("crd", "status", "reason"), [c[1:] for c in NAME_CASES],
                         ids=[c[0] for c in NAME_CASES])
def test_naming(crd: Obj, status: str, reason: str) -> None:
    other = _named("a", "foos", "Foo", ["f"], True)
    accepted, condition = names.accepted_names(crd, [other])
    assert (condition["status"], condition["reason"]) == (status, reason)
    assert bool(accepted) == (status == "True")
    if status == "False":
        assert condition["message"].endswith("is already in use")


def test_established_follows_names_and_terminating_follows_deletion() -> None:
    crd = _named("a", "foos", "Foo", [], False)
    crd["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    _, condition = names.accepted_names(crd, [])
    found = names.conditions(crd, condition, "2026-01-01T00:00:00Z")
    assert [(c["type"], c["status"], c["reason"]) for c in found] == [
        ("NamesAccepted", "True", "NoConflicts"),
        ("Established", "True", "InitialNamesAccepted"),
        ("Terminating", "True", "InstanceDeletionInProgress")]


def test_rows_one_per_served_version_with_the_storage_version() -> None:
    crd = _crd()
    crd["spec"]["versions"] = [
        {"name": "v1beta1", "served": True, "storage": False},
        {"name": "v1", "served": True, "storage": True,
         "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                   "statusReplicasPath": ".status.replicas"}}},
        {"name": "v0", "served": False, "storage": False}]
    crd["status"] = {"acceptedNames": crd["spec"]["names"]}
    rows = model.rows(crd)
    assert [(r.version, r.stored_version, r.converted) for r in rows] == [
        ("v1beta1", "v1", True), ("v1", "v1", False)]
    assert [s.name for s in rows[1].subresources] == ["status", "scale"]
    assert model.convert({"apiVersion": "stable.example.com/v1", "kind": "CronTab"},
                         "stable.example.com/v1beta1")["apiVersion"] == \
        "stable.example.com/v1beta1"


def test_printer_columns() -> None:
    custom = model.CustomKind(
        crd_name="x", schema=None, status=False, scale=None, storage_version="v1",
        list_kind="XList", columns=(
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[0].status",
             "priority": 1},
            {"name": "Label", "type": "string", "jsonPath": ".metadata.labels['app/x']"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}))
    printer = printing.printer(custom)
    assert [(c.name, c.type, c.priority) for c in printer.columns] == [
        ("Name", "string", 0), ("Replicas", "integer", 0), ("Ready", "string", 1),
        ("Label", "string", 0), ("Age", "date", 0)]
    obj = {"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z",
                        "labels": {"app/x": "web"}},
           "spec": {"replicas": 3}, "status": {"conditions": [{"status": "True"}]}}
    now = datetime.datetime(2026, 1, 1, 0, 5, tzinfo=datetime.UTC)
    assert printer.cells(obj, now) == ["a", 3, "True", "web", "5m"]
    assert printer.cells({"metadata": {"name": "b"}}, now)[1:4] == [None, None, None]


def test_default_columns_are_name_and_age() -> None:
    custom = model.CustomKind(crd_name="x", schema=None, columns=(), status=False, scale=None,
                              storage_version="v1", list_kind="XList")
    assert [c.name for c in printing.printer(custom).columns] == ["Name", "Age"]


@pytest.mark.parametrize(("kind", "value", "cell"), [
    ("string", ["a", "b"], '["a","b"]'),
    ("string", {"k": 1}, '{"k":1}'),
    ("string", True, "true"),
    ("string", 3, "3"),
    ("integer", 3, 3),
    ("integer", "3", None),
    ("number", 1.5, 1.5),
    ("boolean", False, False),
    ("boolean", "yes", None),
    ("date", 5, None),
])
def test_cells_follow_the_column_type(kind: str, value: Any, cell: Any) -> None:
    custom = model.CustomKind(crd_name="x", schema=None, status=False, scale=None,
                              storage_version="v1", list_kind="XList",
                              columns=({"name": "C", "type": kind, "jsonPath": ".spec.v"},))
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert printing.printer(custom).cells({"metadata": {"name": "a"}, "spec": {"v": value}},
                                          now)[1] == cell
