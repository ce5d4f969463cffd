"""tinykube's default RBAC policy against kube v1.32's own golden files.

Kubernetes keeps its bootstrap policy as golden files that its unit tests compare the built-in
policy against (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/*.yaml`, generated
with the default feature gates). Their v1.32 copies are in `tests/golden/rbac-v1.32/` (their
header says where from: openshift/kubernetes at kube 1.32.6, as openshift/microshift vendors
it). This test loads them and what `rbac_bootstrap` creates, matches the objects by kind,
namespace and name and compares each one whole: metadata (labels, annotations), roleRef,
subjects, aggregation rule and the rules in their order. A failure prints which objects are
missing or extra and a unified diff of each one that differs.

What differs on purpose is in the tables below, each with its reason: OpenShift's own items in
its copy of the golden files (taken out before the comparison, so the reference is upstream's
policy) and tinykube's own objects (left out of ours).
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.apiserver import rbac_bootstrap

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace ("" for cluster-scoped), name

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "rbac-v1.32"
FILES = {  # kind -> the golden files holding it
    "ClusterRole": ("cluster-roles.yaml", "controller-roles.yaml"),
    "ClusterRoleBinding": ("cluster-role-bindings.yaml", "controller-role-bindings.yaml"),
    "Role": ("namespace-roles.yaml",),
    "RoleBinding": ("namespace-role-bindings.yaml",),
}

# Objects of the golden files that OpenShift adds to kube's policy (its carry patches in
# openshift/kubernetes); kube v1.32 has none of them.
OPENSHIFT_OBJECTS: dict[Key, str] = {
    ("ClusterRole", "", "system:openshift:public-info-viewer"):
        "OpenShift's: anonymous GET of /.well-known/* (its OAuth discovery)",
    ("ClusterRoleBinding", "", "system:openshift:public-info-viewer"):
        "OpenShift's: the binding of the role above",
    ("ClusterRole", "", "system:controller:service-ca-cert-publisher"):
        "OpenShift's controller (the openshift-service-ca.crt ConfigMaps); kube has "
        "root-ca-cert-publisher only",
    ("ClusterRoleBinding", "", "system:controller:service-ca-cert-publisher"):
        "OpenShift's: the binding of the role above",
}

_RESTRICTED = {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices/restricted"],
               "verbs": ["create"]}
_EDIT_WRITES = {"apiGroups": [""], "resources": [
    "configmaps", "endpoints", "events", "persistentvolumeclaims", "replicationcontrollers",
    "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"],
    "verbs": ["create", "delete", "deletecollection", "patch", "update"]}

# Rules of the golden files that OpenShift changed: (object, its rule there, kube's rule in its
# place or None where kube has none, why).
OPENSHIFT_RULES: list[tuple[Key, Obj, Obj | None, str]] = [
    (("ClusterRole", "", "system:aggregate-to-edit"), _EDIT_WRITES,
     {**_EDIT_WRITES, "resources": [r for r in _EDIT_WRITES["resources"] if r != "endpoints"]},
     "kube took endpoints out of edit in v1.22 (CVE-2021-25740, kubernetes#103704); "
     "OpenShift keeps them"),
    (("ClusterRole", "", "system:controller:endpointslice-controller"), _RESTRICTED, None,
     "OpenShift's restricted-endpoints admission (endpointslices/restricted); not kube's"),
    (("ClusterRole", "", "system:controller:endpointslicemirroring-controller"), _RESTRICTED,
     None, "as above"),
]

_PATCH = "tinykube's controller merge-patches what upstream's updates: `patch` on "

# tinykube's own ClusterRoles, each bound by a ClusterRoleBinding of its name
# (rbac_defaults.yaml's tinykubeControllerRoles and tinykubeClusterRoles).
OUR_ROLES: dict[str, str] = {
    "tinykube:controller:local-path-provisioner":
        "the local-path provisioner: rancher's add-on upstream, with a role of its own",
    "tinykube:controller:service-selector-watch":
        "the selector watch's Events, which kube does not write",
    "tinykube:controller:coredns": "the cluster DNS's own ConfigMaps (fault drills, query log)",
    "tinykube:controller:cronjob-controller": _PATCH + "cronjobs/status",
    "tinykube:controller:deployment-controller":
        _PATCH + "deployments/status and the revision annotation",
    "tinykube:controller:job-controller": _PATCH + "jobs/status",
    "tinykube:controller:persistent-volume-binder": _PATCH + "claims and volumes' status",
    "tinykube:controller:pv-protection-controller": _PATCH + "persistentvolumes' finalizers",
    "tinykube:controller:pvc-protection-controller": _PATCH + "claims' finalizers",
    "tinykube:controller:replicaset-controller": _PATCH + "replicasets/status",
    "tinykube:controller:replication-controller": _PATCH + "replicationcontrollers/status",
    "tinykube:controller:statefulset-controller": _PATCH + "statefulsets/status",
    "tinykube:network-policy-enforcer":
        "the nftables proxy also enforces NetworkPolicies (kube leaves it to the CNI's agent)",
}

# Ours that kube v1.32 does not create.
OURS_ONLY: dict[Key, str] = {
    ("ClusterRole", "", "system:coredns"):
        "kubeadm's CoreDNS add-on (not the API server's policy): the cluster DNS's role",
    ("ClusterRoleBinding", "", "system:coredns"): "kubeadm's, binding kube-system/coredns",
    **{(kind, "", name): why for name, why in OUR_ROLES.items()
       for kind in ("ClusterRole", "ClusterRoleBinding")},
}


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace") or "", meta["name"]


def _normal(obj: Obj) -> Obj:
    """`obj` without what the golden files have only as Go's encoding of empty values:
    `creationTimestamp: null`, and `rules: null` (nil) of an aggregated role, ours `[]`."""
    out: Obj = json.loads(json.dumps(obj))
    out["metadata"].pop("creationTimestamp", None)
    if out["kind"] in ("ClusterRole", "Role"):
        out["rules"] = out.get("rules") or []
    return out


@functools.cache
def _golden_file(name: str) -> str:
    data = yaml.safe_load((GOLDEN / name).read_text())
    assert data["kind"] == "List", name
    return json.dumps(data["items"])


def golden(kind: str) -> dict[Key, Obj]:
    """The golden objects of `kind`, as the files have them."""
    return {_key(item): _normal(item)
            for name in FILES[kind] for item in json.loads(_golden_file(name))}


def upstream(kind: str) -> dict[Key, Obj]:
    """The golden objects of `kind` less OpenShift's own items: kube v1.32's policy."""
    out = {key: obj for key, obj in golden(kind).items() if key not in OPENSHIFT_OBJECTS}
    for key, theirs, kubes, _ in OPENSHIFT_RULES:
        if key in out:
            rules = out[key]["rules"]
            rules[rules.index(theirs)] = kubes
            out[key]["rules"] = [r for r in rules if r is not None]
    return out


OURS = {"ClusterRole": rbac_bootstrap.default_cluster_roles,
        "ClusterRoleBinding": rbac_bootstrap.default_cluster_role_bindings,
        "Role": rbac_bootstrap.default_roles,
        "RoleBinding": rbac_bootstrap.default_role_bindings}


def ours(kind: str, *, all_: bool = False) -> dict[Key, Obj]:
    """What tinykube creates of `kind`, less its own objects unless `all_`."""
    out = {_key(obj): _normal(obj) for obj in OURS[kind]()}
    assert len(out) == len(OURS[kind]()), f"two {kind}s of one name"
    if all_:
        return out
    return {key: obj for key, obj in out.items() if key not in OURS_ONLY}


def _dump(obj: Obj) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, width=120).splitlines(keepends=True)


def policy_diff(want: dict[Key, Obj], got: dict[Key, Obj]) -> str:
    """A readable account of how `got` differs from `want`; empty when they are equal."""
    lines = [f"missing (kube v1.32 has it, we do not): {k}\n" for k in sorted(set(want) - set(got))]
    lines += [f"extra (ours, not kube v1.32's; if meant, add it with a reason to OUR_ROLES or "
              f"OURS_ONLY): {k}\n" for k in sorted(set(got) - set(want))]
    for key in sorted(set(want) & set(got)):
        if want[key] != got[key]:
            lines.append(f"differs: {key}\n")
            lines += difflib.unified_diff(_dump(want[key]), _dump(got[key]),
                                          "kube v1.32 (golden)", "tinykube")
    return "".join(lines)


@pytest.mark.parametrize("kind", sorted(FILES))
def test_defaults_match_kube_v1_32(kind: str) -> None:
    diff = policy_diff(upstream(kind), ours(kind))
    assert not diff, f"the default {kind}s differ from kube v1.32's:\n{diff}"


def test_the_golden_files_are_the_v1_32_policy() -> None:
    """Markers of the release: v1.32's scheduler has the coordinated-leader-election and
    volumeattachments rules (v1.31, v1.32); nothing of v1.33's default gates (kube-proxy's
    servicecidrs, the kubelet's fine-grained nodes/pods etc.) nor DRA (beta, off); the
    in-tree portworx plugin's services read (removed later)."""
    roles = upstream("ClusterRole")
    scheduler = roles[("ClusterRole", "", "system:kube-scheduler")]["rules"]
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leasecandidates"],
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                      "watch"]} in scheduler
    assert {"apiGroups": ["storage.k8s.io"], "resources": ["volumeattachments"],
            "verbs": ["get", "list", "watch"]} in scheduler
    text = "".join((GOLDEN / name).read_text() for names in FILES.values() for name in names)
    for later in ("servicecidrs", "resource.k8s.io", "nodes/pods", "/statusz", "/flagz"):
        assert later not in text, later
    binder = roles[("ClusterRole", "", "system:controller:persistent-volume-binder")]["rules"]
    assert {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]} in binder


def test_openshift_items_are_in_the_golden_files_and_not_ours() -> None:
    """The tables name what is really there: a stale entry would hide a difference."""
    for key in OPENSHIFT_OBJECTS:
        assert key in golden(key[0]) and key not in ours(key[0], all_=True), key
    for key, theirs, kubes, _ in OPENSHIFT_RULES:
        assert theirs in golden(key[0])[key]["rules"], key
        rules = ours(key[0])[key]["rules"]
        assert theirs not in rules and (kubes is None or kubes in rules), key


@pytest.mark.parametrize("kind", sorted(FILES))
def test_ours_only_are_ours_and_not_kubes(kind: str) -> None:
    got, want = ours(kind, all_=True), golden(kind)
    for key in (k for k in OURS_ONLY if k[0] == kind):
        assert key in got and key not in want, key
    # every tinykube:* object is in the table, with its reason
    assert {k[2] for k in got if k[2].startswith("tinykube:")} <= set(OUR_ROLES)


def test_a_difference_is_shown_as_a_diff() -> None:
    want = upstream("ClusterRole")
    got = {k: json.loads(json.dumps(v)) for k, v in want.items()}
    key = ("ClusterRole", "", "system:kube-dns")
    got[key]["rules"][0]["verbs"] = ["get", "list", "watch"]
    del got[("ClusterRole", "", "view")]
    got[("ClusterRole", "", "mine")] = {"kind": "ClusterRole", "metadata": {"name": "mine"}}
    diff = policy_diff(want, got)
    assert "missing (kube v1.32 has it, we do not): ('ClusterRole', '', 'view')" in diff
    assert "extra (ours, not kube v1.32's" in diff and "'mine')" in diff
    assert f"differs: {key}\n--- kube v1.32 (golden)\n+++ tinykube\n" in diff
    assert "   verbs:\n+  - get\n   - list\n" in diff  # the one line, in its place
