"""Server-side apply and managed fields: two-manager scenarios as golden files.

Each file in tests/testdata/ssa holds the steps (an `update` or an `apply` by a manager) and
what kube ends with: the object and its managedFields (times left out), or the 409 of a
conflict with its causes. The expected fieldsV1 trees are kube's spelling, key for key."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from tinykube.api import errors, managedfields, structured
from tinykube.api.managedfields import APPLY, UPDATE, Manager

CASES = sorted((pathlib.Path(__file__).parents[2] / "testdata" / "ssa").glob("*.yaml"))


def run(case: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    shape = structured.builtin_shape(case["kind"])
    live: dict[str, Any] = {}
    managed: managedfields.Managed = {}
    for tick, step in enumerate(case["steps"]):
        now = f"2026-01-01T00:00:{tick:02d}Z"
        obj = step["object"]
        manager = Manager(step["manager"], APPLY if step["op"] == "apply" else UPDATE,
                          step.get("apiVersion", obj["apiVersion"]))
        if step["op"] == "update":
            managed = managedfields.update(managed, manager, live, obj, shape, now)
            live = obj
        else:
            live, managed = managedfields.apply(managed, manager, live, obj, shape,
                                                force=step.get("force", False), now=now)
    entries = managedfields.encode_entries(managed)
    for entry in entries:
        entry.pop("time")
    return live, entries


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_scenario(path: pathlib.Path) -> None:
    case = yaml.safe_load(path.read_text())
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(errors.Conflict) as raised:
            run(case)
        assert raised.value.message == expect["error"]
        assert raised.value.to_status()["details"]["causes"] == expect["causes"]
        assert raised.value.code == 409
        return
    obj, entries = run(case)
    assert obj == expect["object"]
    assert entries == expect["managedFields"]


def test_conflicts_with_two_managers_are_listed_per_manager() -> None:
    spec = {"replicas": 3, "paused": True}
    conflicts = [managedfields.ConflictingField(("f:spec", "f:" + f), Manager(m, UPDATE, "apps/v1"))
                 for f, m in (("replicas", "b"), ("paused", "a"))]
    assert spec and managedfields.ApplyConflict(conflicts).message == (
        'Apply failed with 2 conflicts: conflicts with "a" using apps/v1:\n- .spec.paused\n'
        'conflicts with "b" using apps/v1:\n- .spec.replicas')


@pytest.mark.parametrize(("paths", "tree"), [
    ({("f:data", "f:a")}, {"f:data": {"f:a": {}}}),
    ({("f:spec", 'k:{"name":"c"}'), ("f:spec", 'k:{"name":"c"}', "f:name")},
     {"f:spec": {'k:{"name":"c"}': {".": {}, "f:name": {}}}}),
    ({("f:metadata", "f:finalizers", 'v:"x"')}, {"f:metadata": {"f:finalizers": {'v:"x"': {}}}}),
])
def test_fields_v1_round_trip(paths: set[tuple[str, ...]], tree: dict[str, Any]) -> None:
    assert structured.encode(paths) == tree
    assert structured.decode(tree) == paths


def test_update_cap_folds_the_oldest_into_ancient_changes() -> None:
    shape = structured.builtin_shape("ConfigMap")
    managed: managedfields.Managed = {}
    live: dict[str, Any] = {}
    for n in range(12):
        new = {"data": {**live.get("data", {}), f"k{n}": "v"}}
        managed = managedfields.update(managed, Manager(f"m{n}", UPDATE, "v1"), live, new, shape,
                                       f"2026-01-01T00:00:{n:02d}Z")
        live = new
    names = [e["manager"] for e in managedfields.encode_entries(managed)]
    assert len(names) == 10 and "ancient-changes" in names and "m11" in names
    ancient = next(o for o in managed.values() if o.manager.name == "ancient-changes")
    assert ("f:data", "f:k0") in ancient.fields and ("f:data", "f:k2") in ancient.fields


def naive_changes(old: Any, new: Any, shape: structured.Shape) -> tuple[set[Any], set[Any]]:
    before, after = structured.field_set(old, shape), structured.field_set(new, shape)
    changed = {p for p in after if p not in before or not structured.leaf_equal(old, new, p)}
    return changed, before - after


POD = {"metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
       "spec": {"containers": [{"name": "c", "image": "i", "args": ["1"],
                                "ports": [{"containerPort": 80}]}], "resources": {}}}


@pytest.mark.parametrize("new", [
    POD,
    {**POD, "metadata": {"labels": {"a": "2", "b": "1"}}},
    {**POD, "spec": {"containers": [{"name": "c", "image": "j", "args": ["1", "2"],
                                     "ports": [{"containerPort": 80, "protocol": "UDP"}]}]}},
    {**POD, "spec": {"containers": [{"name": "d"}], "resources": {"limits": {"cpu": "1"}}}},
    {**POD, "spec": {"containers": [], "resources": {}}},
    {"metadata": {"finalizers": ["x", "y"]}},
    {},
], ids=["same", "labels", "container-fields", "container-swapped", "emptied", "set", "empty"])
def test_diff_walk_agrees_with_comparing_whole_sets(new: dict[str, Any]) -> None:
    shape = structured.builtin_shape("Pod")
    assert structured.diff(POD, new, shape) == naive_changes(POD, new, shape)
    assert structured.diff(new, POD, shape) == naive_changes(new, POD, shape)


CRONTAB_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "ports": {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                         "port": {"type": "integer"}}}},
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    "args": {"type": "array", "items": {"type": "string"}},
    "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                 "additionalProperties": {"type": "string"}}}}}}


def test_custom_resource_lists_follow_the_schema() -> None:
    shape = structured.shape_of("CronTab", CRONTAB_SCHEMA, custom=True)
    obj = {"metadata": {"labels": {"a": "1"}},
           "spec": {"ports": [{"name": "http", "port": 80}], "tags": ["x"], "args": ["1"],
                    "selector": {"k": "v"}}}
    assert structured.field_set(obj, shape) == {
        ("f:metadata", "f:labels", "f:a"),
        ("f:spec", "f:ports", 'k:{"name":"http"}'),
        ("f:spec", "f:ports", 'k:{"name":"http"}', "f:name"),
        ("f:spec", "f:ports", 'k:{"name":"http"}', "f:port"),
        ("f:spec", "f:tags", 'v:"x"'), ("f:spec", "f:args"), ("f:spec", "f:selector")}
    merged = structured.merge(obj, {"spec": {"ports": [{"name": "dns", "port": 53}],
                                             "tags": ["y"], "args": ["2"]}}, shape)
    assert merged["spec"]["ports"] == [{"name": "http", "port": 80}, {"name": "dns", "port": 53}]
    assert (merged["spec"]["tags"], merged["spec"]["args"]) == (["x", "y"], ["2"])
