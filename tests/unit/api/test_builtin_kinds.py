"""The kinds served for manifests and kubectl's default prune list (issue 9, item 5):
ReplicationController, PersistentVolume, Job, CronJob, DaemonSet and Ingress.

Their resource-table entries as kube-apiserver advertises them, the defaults kube fills, and
validation with kube's messages, from a valid defaulted object changed one field at a time.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from tinykube.api import defaults, resources, validation
from tinykube.api.resources import ALL_VERBS

UID = "0f0e0d0c-0000-4000-8000-000000000001"


def _pod_spec(restart: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if restart:
        spec["restartPolicy"] = restart
    return spec


def raw(kind: str) -> dict[str, Any]:
    meta = {"name": "x", "namespace": "default", "uid": UID}
    objects: dict[str, dict[str, Any]] = {
        "Job": {"metadata": meta, "spec": {"template": {"spec": _pod_spec("Never")}}},
        "CronJob": {"metadata": meta, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
            "spec": {"template": {"spec": _pod_spec("OnFailure")}}}}},
        "DaemonSet": {"metadata": meta, "spec": {
            "selector": {"matchLabels": {"name": "agent"}},
            "template": {"metadata": {"labels": {"name": "agent"}}, "spec": _pod_spec()}}},
        "ReplicationController": {"metadata": meta, "spec": {"template": {
            "metadata": {"labels": {"app": "rc"}}, "spec": _pod_spec()}}},
        "PersistentVolume": {"metadata": {"name": "pv", "uid": UID}, "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/pv"}}},
        "Ingress": {"metadata": meta, "spec": {"rules": [{"host": "a.example", "http": {
            "paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "web", "port": {"number": 80}}}}]}}]}},
    }
    return copy.deepcopy(objects[kind])


KINDS = ["Job", "CronJob", "DaemonSet", "ReplicationController", "PersistentVolume", "Ingress"]

# --- the resource table -----------------------------------------------------------------------

# (group, plural, kind, namespaced, short names, categories, subresources, run by a controller)
TABLE = [
    ("", "replicationcontrollers", "ReplicationController", True, ("rc",), ("all",),
     ("status", "scale"), True),
    ("", "persistentvolumes", "PersistentVolume", False, ("pv",), (), ("status",), True),
    ("batch", "jobs", "Job", True, (), ("all",), ("status",), True),
    ("batch", "cronjobs", "CronJob", True, ("cj",), ("all",), ("status",), True),
    ("apps", "daemonsets", "DaemonSet", True, ("ds",), ("all",), ("status",), True),
    ("policy", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), (), ("status",),
     True),
    ("networking.k8s.io", "ingresses", "Ingress", True, ("ing",), (), ("status",), True),
    ("autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",),
     ("all",), ("status",), True),
]


@pytest.mark.parametrize("entry", TABLE, ids=[t[1] for t in TABLE])
def test_resource_table_entry(entry: tuple[Any, ...]) -> None:
    group, plural, kind, namespaced, short, categories, subs, run = entry
    res = resources.lookup(group, "v1", plural)
    assert res is not None
    assert (res.kind, res.namespaced, res.short_names, res.categories, res.verbs) == \
        (kind, namespaced, short, categories, ALL_VERBS)
    assert tuple(s.name for s in res.subresources) == subs
    assert res.not_run is not run
    assert bool(res.not_run_warning) is not run


def test_not_run_warning_text() -> None:
    stored_only = dataclasses.replace(resources.must("batch", "v1", "jobs"), not_run=True)
    assert stored_only.not_run_warning == \
        "tinykube stores Job objects but does not run them yet: no controller acts on them"


def test_kubectl_default_prune_list_is_served() -> None:
    """kubectl v1.32's `prune.go` default list: every entry must resolve, or `apply --prune`
    fails with `no matches for kind`."""
    default_prune = [("", "ConfigMap"), ("", "Endpoints"), ("", "Namespace"),
                     ("", "PersistentVolumeClaim"), ("", "PersistentVolume"), ("", "Pod"),
                     ("", "ReplicationController"), ("", "Secret"), ("", "Service"),
                     ("batch", "Job"), ("batch", "CronJob"), ("networking.k8s.io", "Ingress"),
                     ("apps", "DaemonSet"), ("apps", "Deployment"), ("apps", "ReplicaSet"),
                     ("apps", "StatefulSet")]
    assert [gk for gk in default_prune if resources.by_kind(gk[0], "v1", gk[1]) is None] == []


# --- defaults ---------------------------------------------------------------------------------

def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


DEFAULTS = [
    ("Job", "spec.completions", 1), ("Job", "spec.parallelism", 1),
    ("Job", "spec.backoffLimit", 6), ("Job", "spec.completionMode", "NonIndexed"),
    ("Job", "spec.suspend", False), ("Job", "spec.podReplacementPolicy", "TerminatingOrFailed"),
    ("Job", "spec.selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}),
    ("Job", "spec.template.metadata.labels", {
        "batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "x",
        "controller-uid": UID, "job-name": "x"}),
    ("Job", "spec.template.spec.terminationGracePeriodSeconds", 30),
    ("CronJob", "spec.concurrencyPolicy", "Allow"), ("CronJob", "spec.suspend", False),
    ("CronJob", "spec.successfulJobsHistoryLimit", 3),
    ("CronJob", "spec.failedJobsHistoryLimit", 1),
    ("CronJob", "spec.jobTemplate.spec.template.spec.dnsPolicy", "ClusterFirst"),
    ("DaemonSet", "spec.updateStrategy", {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    ("DaemonSet", "spec.revisionHistoryLimit", 10),
    ("DaemonSet", "spec.template.spec.restartPolicy", "Always"),
    ("ReplicationController", "spec.replicas", 1),
    ("ReplicationController", "spec.selector", {"app": "rc"}),
    ("ReplicationController", "metadata.labels", {"app": "rc"}),
    ("PersistentVolume", "spec.persistentVolumeReclaimPolicy", "Retain"),
    ("PersistentVolume", "spec.volumeMode", "Filesystem"),
]


@pytest.mark.parametrize(("kind", "path", "expected"), DEFAULTS,
                         ids=[f"{d[0]}-{d[1]}" for d in DEFAULTS])
def test_default(kind: str, path: str, expected: Any) -> None:
    assert _get(defaults.apply_defaults(kind, raw(kind)), path) == expected


@pytest.mark.parametrize(("spec", "completions", "parallelism"), [
    ({"parallelism": 3}, None, 3), ({"completions": 4}, 4, 1), ({}, 1, 1),
], ids=["work-queue", "fixed-count", "neither"])
def test_job_completions_and_parallelism(spec: dict[str, Any], completions: int | None,
                                         parallelism: int) -> None:
    job = raw("Job")
    job["spec"].update(spec)
    out = defaults.apply_defaults("Job", job)["spec"]
    assert (out.get("completions"), out["parallelism"]) == (completions, parallelism)


@pytest.mark.parametrize("job_spec", [
    {"manualSelector": True, "selector": {"matchLabels": {"a": "b"}}},
    {"selector": {"matchLabels": {"a": "b"}}},
], ids=["manual-selector", "given-selector"])
def test_job_selector_is_generated_only_when_missing(job_spec: dict[str, Any]) -> None:
    job = raw("Job")
    job["spec"].update(job_spec)
    out = defaults.apply_defaults("Job", job)["spec"]
    assert out["selector"] == {"matchLabels": {"a": "b"}}
    assert "controller-uid" not in (out["template"].get("metadata") or {}).get("labels", {})


def test_job_selector_waits_for_the_uid() -> None:
    job = raw("Job")
    del job["metadata"]["uid"]
    assert "selector" not in defaults.apply_defaults("Job", job)["spec"]


# --- validation -------------------------------------------------------------------------------

def _messages(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(e) for e in validation.validate(kind, obj, old)]


@pytest.mark.parametrize("kind", KINDS)
def test_valid_objects_pass(kind: str) -> None:
    obj = defaults.apply_defaults(kind, raw(kind))
    assert _messages(kind, obj) == []
    assert _messages(kind, obj, old=obj) == []


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = obj
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


INVALID = [
    ("Job", "spec.template.spec.restartPolicy", None,
     ['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
      '"OnFailure", "Never"'], "job-restart-policy-defaulted-to-always"),
    ("Job", "spec.backoffLimit", -1,
     ["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"],
     "job-negative-backoff"),
    ("Job", "spec.completionMode", "Sometimes",
     ['spec.completionMode: Unsupported value: "Sometimes": supported values: "Indexed", '
      '"NonIndexed"'], "job-completion-mode"),
    ("CronJob", "spec.schedule", None, ["spec.schedule: Required value"], "cron-no-schedule"),
    ("CronJob", "spec.schedule", "* * *",
     ['spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]'],
     "cron-three-fields"),
    ("CronJob", "spec.schedule", "@fortnightly",
     ['spec.schedule: Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly'],
     "cron-bad-descriptor"),
    ("CronJob", "spec.schedule", "TZ=UTC 0 * * * *",
     ['spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
      "use timeZone field instead"], "cron-tz-in-schedule"),
    ("CronJob", "spec.timeZone", "Mars/Olympus",
     ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'],
     "cron-unknown-time-zone"),
    ("CronJob", "spec.timeZone", "Local",
     ['spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as '
      "defined in https://www.iana.org/time-zones"], "cron-local-time-zone"),
    ("CronJob", "spec.concurrencyPolicy", "Sometimes",
     ['spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", '
      '"Forbid", "Replace"'], "cron-concurrency"),
    ("CronJob", "metadata.name", "a" * 53,
     [f'metadata.name: Invalid value: "{"a" * 53}": must be no more than 52 characters'],
     "cron-name-too-long"),
    ("CronJob", "spec.jobTemplate.spec.template.spec.restartPolicy", "Always",
     ['spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": '
      'supported values: "OnFailure", "Never"'], "cron-job-template-restart-policy"),
    ("DaemonSet", "spec.template.metadata.labels", {"name": "other"},
     ['spec.template.metadata.labels: Invalid value: map[string]string{"name":"other"}: '
      "`selector` does not match template `labels`"], "ds-selector-mismatch"),
    ("DaemonSet", "spec.updateStrategy.type", "Sometimes",
     ['spec.updateStrategy.type: Unsupported value: "Sometimes": supported values: "OnDelete", '
      '"RollingUpdate"'], "ds-strategy"),
    ("ReplicationController", "spec.selector", {"app": "other"},
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"rc"}: '
      "`selector` does not match template `labels`"], "rc-selector-mismatch"),
    ("ReplicationController", "spec.template.spec.restartPolicy", "Never",
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"'], "rc-restart-policy"),
    ("PersistentVolume", "spec.accessModes", None, ["spec.accessModes: Required value"],
     "pv-access-modes"),
    ("PersistentVolume", "spec.capacity", None, ["spec.capacity: Required value"],
     "pv-capacity"),
    ("PersistentVolume", "spec.hostPath", None,
     ["spec: Required value: must specify a volume type"], "pv-no-source"),
    ("PersistentVolume", "spec.nfs", {"server": "s", "path": "/"},
     ["spec.nfs: Forbidden: may not specify more than 1 volume type"], "pv-two-sources"),
    ("PersistentVolume", "spec.persistentVolumeReclaimPolicy", "Keep",
     ['spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
      '"Delete", "Recycle", "Retain"'], "pv-reclaim-policy"),
    ("Ingress", "spec.rules", None,
     ["spec.rules: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or "
      "`rules` must be specified"], "ing-empty"),
    ("Ingress", "spec.rules.0.http.paths.0.pathType", None,
     ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
     "ing-path-type-required"),
    ("Ingress", "spec.rules.0.http.paths.0.path", "api",
     ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path'],
     "ing-relative-path"),
    ("Ingress", "spec.rules.0.http.paths.0.backend.service.port", {},
     ['spec.rules[0].http.paths[0].backend.service.port: Invalid value: "": port name or '
      "number is required"], "ing-no-port"),
]


@pytest.mark.parametrize(("kind", "path", "value", "expected"), [c[:4] for c in INVALID],
                         ids=[c[4] for c in INVALID])
def test_invalid(kind: str, path: str, value: Any, expected: list[str]) -> None:
    obj = raw(kind)
    _set(obj, path, value)
    assert _messages(kind, defaults.apply_defaults(kind, obj)) == expected


def test_job_selector_is_immutable() -> None:
    old = defaults.apply_defaults("Job", raw("Job"))
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    new["spec"]["template"]["metadata"]["labels"]["a"] = "b"
    rendered = 'v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, ' \
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
    assert _messages("Job", new, old) == [
        f"spec.selector: Invalid value: {rendered}: field is immutable",
        f"spec.selector: Invalid value: {rendered}: `selector` not auto-generated"]
    new["spec"]["manualSelector"] = True
    assert _messages("Job", new, old) == [
        f"spec.selector: Invalid value: {rendered}: field is immutable"]


def test_job_selector_of_ones_own_needs_manual_selector() -> None:
    job = raw("Job")
    job["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    job["spec"]["template"]["metadata"] = {"labels": {"a": "b"}}
    assert _messages("Job", defaults.apply_defaults("Job", job)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated"]
    job["spec"]["manualSelector"] = True
    assert _messages("Job", defaults.apply_defaults("Job", job)) == []


def test_rc_selector_may_change() -> None:
    old = defaults.apply_defaults("ReplicationController", raw("ReplicationController"))
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "rc", "tier": "web"}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert _messages("ReplicationController", new, old) == []
