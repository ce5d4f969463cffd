"""Volume binding decisions, pure: which volume a claim takes (`find_matching_volume`, kube's
`FindMatchingVolume`), why a named volume does not fit (`volume_mismatch`), what the scheduler's
volume binding says of a pod (`pod_volumes`, `node_reason`, `node_plan`) and the volume the
local-path provisioner makes (`new_volume`, `inside`). Each case is one row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tinykube.controllers import localpath
from tinykube.controllers import volume_scheduling as vs
from tinykube.controllers import volumematch as vm

Obj = dict[str, Any]


def claim(name: str = "data", *, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
          cls: str | None = "standard", uid: str = "u1", **extra: Any) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                 **extra}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": spec}


def volume(name: str, *, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
           cls: str = "standard", phase: str = "Available", ref: Obj | None = None,
           labels: Obj | None = None, node: str | None = None) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes),
                 "storageClassName": cls, "hostPath": {"path": f"/v/{name}"}}
    if ref is not None:
        spec["claimRef"] = ref
    if node is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"phase": phase}}


def node(name: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}


REF = {"name": "data", "namespace": "default", "uid": "u1"}
OTHER_REF = {"name": "other", "namespace": "default", "uid": "u9"}

MATCHES: list[tuple[str, Obj, list[Obj], Obj | None, bool, str | None]] = [
    ("smallest-that-fits", claim(size="2Gi"),
     [volume("big", size="10Gi"), volume("small", size="1Gi"), volume("mid", size="3Gi")],
     None, False, "mid"),
    ("class-must-match", claim(), [volume("fast", cls="fast")], None, False, None),
    ("no-class-takes-no-class", claim(cls=""), [volume("a", cls="standard"),
                                                 volume("b", cls="")], None, False, "b"),
    ("access-modes-superset", claim(modes=("ReadWriteOnce", "ReadOnlyMany")),
     [volume("rwo"), volume("both", modes=("ReadOnlyMany", "ReadWriteOnce"))], None, False,
     "both"),
    ("bound-to-another-skipped", claim(), [volume("v", ref=OTHER_REF, phase="Bound")], None,
     False, None),
    ("prebound-wins-over-smaller", claim(),
     [volume("free", size="1Gi"), volume("mine", size="5Gi", ref=REF, phase="Bound")],
     None, False, "mine"),
    ("prebound-by-name-only", claim(),
     [volume("mine", ref={"name": "data", "namespace": "default"})], None, False, "mine"),
    ("prebound-too-small", claim(size="2Gi"), [volume("mine", ref=REF)], None, False, None),
    ("released-not-reused", claim(), [volume("v", phase="Released")], None, False, None),
    ("selector", claim(selector={"matchLabels": {"tier": "gold"}}),
     [volume("plain"), volume("gold", labels={"tier": "gold"})], None, False, "gold"),
    ("delay-without-node-waits", claim(), [volume("v")], None, True, None),
    ("delay-prebound-still-binds", claim(), [volume("v", ref=REF)], None, True, "v"),
    ("node-affinity-holds", claim(), [volume("n2", node="n2"), volume("n1", node="n1")],
     node("n1"), True, "n1"),
    ("node-affinity-fails", claim(), [volume("n2", node="n2")], node("n1"), True, None),
]


@pytest.mark.parametrize(("pvc", "volumes", "on_node", "delay", "expected"),
                         [m[1:] for m in MATCHES], ids=[m[0] for m in MATCHES])
def test_find_matching_volume(pvc: Obj, volumes: list[Obj], on_node: Obj | None, delay: bool,
                              expected: str | None) -> None:
    found = vm.find_matching_volume(pvc, volumes, on_node, delay)
    assert (found["metadata"]["name"] if found else None) == expected


MISMATCHES = [
    ("fits", claim(), volume("v"), None),
    ("too-small", claim(size="2Gi"), volume("v"), "requested PV is too small"),
    ("class", claim(cls="fast"), volume("v"), "storageClassName does not match"),
    ("mode", claim(volumeMode="Block"), volume("v"), "incompatible volumeMode"),
    ("access", claim(modes=("ReadWriteMany",)), volume("v"), "incompatible accessMode"),
]


@pytest.mark.parametrize(("pvc", "pv", "expected"), [m[1:] for m in MISMATCHES],
                         ids=[m[0] for m in MISMATCHES])
def test_volume_mismatch(pvc: Obj, pv: Obj, expected: str | None) -> None:
    assert vm.volume_mismatch(pv, pvc) == expected


CLASSES = {"standard": {"metadata": {"name": "standard"}, "provisioner": "rancher.io/local-path",
                        "volumeBindingMode": "WaitForFirstConsumer"},
           "now": {"metadata": {"name": "now"}, "provisioner": "x.io/y",
                   "volumeBindingMode": "Immediate"},
           "local": {"metadata": {"name": "local"},
                     "provisioner": "kubernetes.io/no-provisioner",
                     "volumeBindingMode": "WaitForFirstConsumer"}}


def pod(*claims: str) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"volumes": [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
        for i, c in enumerate(claims)]}}


def bound(pvc: Obj, pv: str) -> Obj:
    pvc["spec"]["volumeName"] = pv
    pvc["metadata"]["annotations"] = {vm.BIND_COMPLETED: "yes"}
    return pvc


PREFILTER = [
    ("missing", pod("nope"), {}, 'persistentvolumeclaim "nope" not found'),
    ("deleting", pod("data"),
     {"data": {**claim(), "metadata": {**claim()["metadata"], "deletionTimestamp": "x"}}},
     'persistentvolumeclaim "data" is being deleted'),
    ("immediate-unbound", pod("data"), {"data": claim(cls="now")},
     "pod has unbound immediate PersistentVolumeClaims"),
    ("no-class-unbound", pod("data"), {"data": claim(cls="")},
     "pod has unbound immediate PersistentVolumeClaims"),
    ("missing-class-is-immediate", pod("data"), {"data": claim(cls="gold")},
     "pod has unbound immediate PersistentVolumeClaims"),
    ("wffc-waits-for-node", pod("data"), {"data": claim()}, ""),
    ("bound", pod("data"), {"data": bound(claim(), "pv1")}, ""),
]


@pytest.mark.parametrize(("the_pod", "claims", "error"), [p[1:] for p in PREFILTER],
                         ids=[p[0] for p in PREFILTER])
def test_pod_volumes_prefilter(the_pod: Obj, claims: dict[str, Obj], error: str) -> None:
    keyed = {f"default/{name}": c for name, c in claims.items()}
    state = vs.pod_volumes(the_pod, keyed, {"pv1": volume("pv1", phase="Bound")}, CLASSES)
    assert state.error == error


FILTER = [
    ("bound-volume-on-its-node", bound(claim(), "pv1"), [volume("pv1", node="n1")], "n1",
     None),
    ("bound-volume-elsewhere", bound(claim(), "pv1"), [volume("pv1", node="n2")], "n1",
     "node(s) had volume node affinity conflict"),
    ("provisionable", claim(), [], "n1", None),
    ("no-provisioner-no-volume", claim(cls="local"), [], "n1",
     "node(s) didn't find available persistent volumes to bind"),
    ("no-provisioner-static-here", claim(cls="local"), [volume("l1", cls="local", node="n1")],
     "n1", None),
    ("selected-other-node", claim(), [], "n1",
     "node(s) didn't find available persistent volumes to bind"),
]


@pytest.mark.parametrize(("pvc", "volumes", "on", "reason"), [f[1:] for f in FILTER],
                         ids=[f[0] for f in FILTER])
def test_node_filter(pvc: Obj, volumes: list[Obj], on: str, reason: str | None,
                     request: pytest.FixtureRequest) -> None:
    if request.node.callspec.id == "selected-other-node":
        pvc["metadata"]["annotations"] = {vm.SELECTED_NODE: "n2"}
    state = vs.pod_volumes(pod("data"), {"default/data": pvc},
                           {v["metadata"]["name"]: v for v in volumes}, CLASSES)
    assert not state.error
    found = vs.node_reason(state, node(on), volumes, CLASSES)
    assert (vs.REASON_TEXT[found] if found else None) == (
        reason.removeprefix("node(s) ") if reason else None)


def test_node_plan_gives_each_claim_its_own_static_volume() -> None:
    claims = {"default/a": claim("a", cls="local", uid="ua"),
              "default/b": claim("b", cls="local", uid="ub")}
    volumes = [volume("l1", cls="local", node="n1"), volume("l2", cls="local", node="n1")]
    state = vs.pod_volumes(pod("a", "b"), claims, {}, CLASSES)
    plan = vs.node_plan(state, node("n1"), volumes, CLASSES)
    assert plan is not None
    assert [(c["metadata"]["name"], v["metadata"]["name"] if v else None) for c, v in plan] == \
        [("a", "l1"), ("b", "l2")]
    assert vs.node_plan(state, node("n1"), volumes[:1], CLASSES) is None


def test_local_path_volume(tmp_path: Path) -> None:
    pvc = claim(uid="abc")
    sc = {"metadata": {"name": "standard"}, "reclaimPolicy": "Retain",
          "provisioner": "rancher.io/local-path"}
    path = localpath.volume_path(tmp_path, "n1", pvc)
    assert path == tmp_path / "n1" / "pvc-abc_default_data"
    pv = localpath.new_volume(pvc, sc, node("n1"), path)
    assert pv["metadata"]["name"] == "pvc-abc"
    assert pv["metadata"]["annotations"][vm.PROVISIONED_BY] == "rancher.io/local-path"
    spec = pv["spec"]
    assert spec["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
    assert spec["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]
    assert (spec["capacity"], spec["accessModes"], spec["persistentVolumeReclaimPolicy"],
            spec["storageClassName"], spec["volumeMode"]) == \
        ({"storage": "1Gi"}, ["ReadWriteOnce"], "Retain", "standard", "Filesystem")
    assert vm.is_bound_to(pv, pvc) and spec["claimRef"]["uid"] == "abc"


@pytest.mark.parametrize(("path", "inside"), [
    pytest.param("{root}/n1/pvc-1_default_data", True, id="a-volume"),
    pytest.param("{root}", False, id="the-root-itself"),
    pytest.param("{root}/../elsewhere", False, id="dot-dot"),
    pytest.param("/etc", False, id="absolute-elsewhere"),
    pytest.param("{root}-other/x", False, id="sibling-prefix"),
])
def test_only_paths_inside_the_volumes_directory(tmp_path: Path, path: str,
                                                 inside: bool) -> None:
    root = tmp_path / "volumes"
    root.mkdir()
    assert (localpath.inside(root, path.format(root=root)) is not None) == inside


def test_symlink_out_of_the_volumes_directory_is_not_inside(tmp_path: Path) -> None:
    root = tmp_path / "volumes"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    assert localpath.inside(root, str(root / "escape")) is None
