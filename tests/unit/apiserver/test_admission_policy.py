"""PodSecurity and Priority admission through the real API server, over HTTP.

What a client sees: the 403 of a pod that violates its namespace's enforce level, the `Warning`
headers of warn mode (pods and workloads) and of a tightened enforce label, the 422 of a bad
label; the priority a pod gets from its class, the global default, or nothing, and the refusals
kube-apiserver's Priority plugin gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.unit.apiserver.harness import running_api
from tinykube.apiserver.admission import PLUGINS

Obj = dict[str, Any]
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
NS = "/api/v1/namespaces"
CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"
PRIVILEGED_CONTAINER = {"name": "c", "image": "nginx", "securityContext": {"privileged": True}}


def pod(name: str = "p", container: Obj | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container or {"name": "c", "image": "nginx"}], **spec}}


def deployment(container: Obj) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}


async def send(session: aiohttp.ClientSession, method: str, path: str, body: Obj,
               headers: dict[str, str] = JSON) -> tuple[int, Obj, list[str]]:
    async with session.request(method, path, data=orjson.dumps(body), headers=headers) as reply:
        return reply.status, orjson.loads(await reply.read()), reply.headers.getall("Warning", [])


async def namespace(session: aiohttp.ClientSession, name: str, labels: dict[str, str]) -> None:
    status, body, _ = await send(session, "POST", NS,
                                 {"metadata": {"name": name, "labels": labels}})
    assert status == 201, body
    status, body, _ = await send(session, "POST", f"{NS}/{name}/serviceaccounts",
                                 {"metadata": {"name": "default"}})
    assert status == 201, body


def test_plugins_sit_in_kube_apiservers_order() -> None:
    """`AllOrderedPlugins`: ServiceAccount, ..., PodSecurity, PodNodeSelector, Priority,
    DefaultTolerationSeconds."""
    names = [p.name for p in PLUGINS]
    positions = [names.index(n) for n in ("ServiceAccount", "PodSecurity", "Priority",
                                          "DefaultTolerationSeconds")]
    assert positions == sorted(positions)


async def test_enforce_refuses_a_violating_pod(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await namespace(session, "locked", {"pod-security.kubernetes.io/enforce": "baseline"})
        status, body, warnings = await send(session, "POST", f"{NS}/locked/pods",
                                            pod("x", PRIVILEGED_CONTAINER))
        ok_status, _, ok_warnings = await send(session, "POST", f"{NS}/locked/pods", pod("y"))
    assert (status, body["reason"], warnings) == (403, "Forbidden", [])
    assert body["message"] == ('pods "x" is forbidden: violates PodSecurity "baseline:latest": '
                               'privileged (container "c" must not set '
                               "securityContext.privileged=true)")
    assert (ok_status, ok_warnings) == (201, [])


async def test_warn_mode_warns_for_pods_and_workloads(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await namespace(session, "watched", {"pod-security.kubernetes.io/warn": "restricted"})
        status, _, warnings = await send(session, "POST", f"{NS}/watched/pods", pod())
        d_status, _, d_warnings = await send(session, "POST", "/apis/apps/v1/namespaces/watched/"
                                             "deployments", deployment(PRIVILEGED_CONTAINER))
    assert (status, d_status) == (201, 201)
    assert warnings == ['299 - "would violate PodSecurity \\"restricted:latest\\": '
                        'allowPrivilegeEscalation != false (container \\"c\\" must set '
                        'securityContext.allowPrivilegeEscalation=false), unrestricted '
                        'capabilities (container \\"c\\" must set securityContext.capabilities.'
                        'drop=[\\"ALL\\"]), runAsNonRoot != true (pod or container \\"c\\" must '
                        'set securityContext.runAsNonRoot=true), seccompProfile (pod or container '
                        '\\"c\\" must set securityContext.seccompProfile.type to '
                        '\\"RuntimeDefault\\" or \\"Localhost\\")"']
    assert d_warnings[0].startswith('299 - "would violate PodSecurity \\"restricted:latest\\": '
                                    'privileged (container \\"c\\" must not set')


async def test_enforce_never_refuses_a_workload(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await namespace(session, "locked", {"pod-security.kubernetes.io/enforce": "baseline"})
        status, _, warnings = await send(session, "POST", "/apis/apps/v1/namespaces/locked/"
                                         "deployments", deployment(PRIVILEGED_CONTAINER))
    assert status == 201
    assert warnings == ['299 - "would violate PodSecurity \\"baseline:latest\\": privileged '
                        '(container \\"c\\" must not set securityContext.privileged=true)"']


async def test_bad_label_is_refused_and_tightening_warns(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await namespace(session, "app", {})
        await send(session, "POST", f"{NS}/app/pods", pod("old", PRIVILEGED_CONTAINER))
        bad, bad_body, _ = await send(session, "PATCH", f"{NS}/app", {"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "strict"}}}, MERGE)
        good, _, warnings = await send(session, "PATCH", f"{NS}/app", {"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "baseline"}}}, MERGE)
        created, created_body, _ = await send(session, "POST", NS, {"metadata": {
            "name": "new", "labels": {"pod-security.kubernetes.io/warn-version": "v2"}}})
    assert (bad, bad_body["reason"]) == (422, "Invalid")
    assert bad_body["message"] == ('Namespace "app" is invalid: metadata.labels[pod-security.'
                                   'kubernetes.io/enforce]: Invalid value: "strict": must be one '
                                   "of privileged, baseline, restricted")
    assert good == 200
    assert warnings == ['299 - "existing pods in namespace \\"app\\" violate the new PodSecurity '
                        'enforce level \\"baseline:latest\\""', '299 - "old: privileged"']
    assert (created, created_body["details"]["causes"][0]["field"]) == (
        422, "metadata.labels[pod-security.kubernetes.io/warn-version]")


async def test_pod_update_is_checked_only_when_an_image_changes(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await namespace(session, "app", {})
        await send(session, "POST", f"{NS}/app/pods", pod("old", PRIVILEGED_CONTAINER))
        await send(session, "PATCH", f"{NS}/app", {"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "baseline"}}}, MERGE)
        labelled, _, _ = await send(session, "PATCH", f"{NS}/app/pods/old",
                                    {"metadata": {"labels": {"a": "b"}}}, MERGE)
        image, body, _ = await send(session, "PATCH", f"{NS}/app/pods/old", {"spec": {
            "containers": [{**PRIVILEGED_CONTAINER, "image": "nginx:2"}]}},
            {"Content-Type": "application/strategic-merge-patch+json"})
    assert labelled == 200
    assert (image, body["message"].split(": ", 1)[0]) == (403, 'pods "old" is forbidden')


# --- Priority ----------------------------------------------------------------------------------

async def make_class(session: aiohttp.ClientSession, name: str, value: int,
                     **fields: Any) -> tuple[int, Obj]:
    status, body, _ = await send(session, "POST", CLASSES,
                                 {"metadata": {"name": name}, "value": value, **fields})
    return status, body


@pytest.mark.parametrize(("classes", "spec", "expected"), [
    pytest.param([], {}, (0, "PreemptLowerPriority", None), id="no-class"),
    pytest.param([("high", 1000, {"preemptionPolicy": "Never"})],
                 {"priorityClassName": "high"}, (1000, "Never", "high"), id="named"),
    pytest.param([("base", 7, {"globalDefault": True})], {}, (7, "PreemptLowerPriority", "base"),
                 id="global-default"),
    pytest.param([], {"priorityClassName": "system-node-critical"},
                 (2000001000, "PreemptLowerPriority", "system-node-critical"),
                 id="system-class-outside-kube-system"),
    pytest.param([("high", 1000, {})], {"priorityClassName": "high", "priority": 1000},
                 (1000, "PreemptLowerPriority", "high"), id="agreeing-priority"),
])
async def test_pod_gets_its_priority(tmp_path: Path, classes: list[tuple[str, int, Obj]],
                                     spec: Obj, expected: tuple[int, str, str | None]) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        for name, value, fields in classes:
            assert (await make_class(session, name, value, **fields))[0] == 201
        status, created, _ = await send(session, "POST", f"{NS}/default/pods", pod(**spec))
    assert status == 201, created
    found = created["spec"]
    assert (found["priority"], found["preemptionPolicy"],
            found.get("priorityClassName")) == expected


@pytest.mark.parametrize(("spec", "message"), [
    pytest.param({"priorityClassName": "foo"},
                 'pods "p" is forbidden: no PriorityClass with name foo was found', id="unknown"),
    pytest.param({"priority": 5},
                 'pods "p" is forbidden: the integer value of priority (5) must not be provided '
                 "in pod spec; priority admission controller computed 0 from the given "
                 "PriorityClass name", id="disagreeing-priority"),
    pytest.param({"preemptionPolicy": "Never"},
                 'pods "p" is forbidden: the string value of PreemptionPolicy (Never) must not '
                 "be provided in pod spec; priority admission controller computed "
                 "PreemptLowerPriority from the given PriorityClass name",
                 id="disagreeing-preemption"),
])
async def test_pod_priority_refusals(tmp_path: Path, spec: Obj, message: str) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        status, body, _ = await send(session, "POST", f"{NS}/default/pods", pod(**spec))
    assert (status, body["message"]) == (403, message)


async def test_update_keeps_the_priority_set_on_create(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_class(session, "high", 1000)
        _, created, _ = await send(session, "POST", f"{NS}/default/pods",
                                   pod(priorityClassName="high"))
        for key in ("priority", "preemptionPolicy", "resourceVersion"):
            created["spec"].pop(key, None)
        status, replaced, _ = await send(session, "PUT", f"{NS}/default/pods/p", created)
    assert status == 200, replaced
    assert (replaced["spec"]["priority"], replaced["spec"]["preemptionPolicy"]) == (
        1000, "PreemptLowerPriority")


@pytest.mark.parametrize(("name", "value", "fields", "message"), [
    pytest.param("second", 5, {"globalDefault": True},
                 'priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass first '
                 "is already marked as default. Only one default can exist", id="second-default"),
    pytest.param("huge", 1000000001, {},
                 'PriorityClass.scheduling.k8s.io "huge" is invalid: value: Forbidden: maximum '
                 "allowed value of a user defined priority is 1000000000", id="too-high"),
    pytest.param("system-node-critical", 5, {},
                 'PriorityClass.scheduling.k8s.io "system-node-critical" is invalid: '
                 "metadata.name: Forbidden: priority class names with 'system-' prefix are "
                 "reserved for system use only. error: value of system-node-critical "
                 "PriorityClass must be 2000001000", id="system-value"),
    pytest.param("system-mine", 5, {},
                 'PriorityClass.scheduling.k8s.io "system-mine" is invalid: metadata.name: '
                 "Forbidden: priority class names with 'system-' prefix are reserved for system "
                 "use only. error: system-mine is not a known system priority class",
                 id="system-prefix"),
    pytest.param("odd", 5, {"preemptionPolicy": "Sometimes"},
                 'PriorityClass.scheduling.k8s.io "odd" is invalid: preemptionPolicy: Unsupported '
                 'value: "Sometimes": supported values: "Never", "PreemptLowerPriority"',
                 id="preemption-policy"),
])
async def test_priority_class_refusals(tmp_path: Path, name: str, value: int, fields: Obj,
                                       message: str) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        assert (await make_class(session, "first", 1, globalDefault=True))[0] == 201
        status, body = await make_class(session, name, value, **fields)
    assert (status, body["message"]) == (403 if " is forbidden: " in message else 422, message)


async def test_the_default_class_may_be_updated(tmp_path: Path) -> None:
    async with running_api(tmp_path, bootstrapped=True) as (session, _store):
        await make_class(session, "first", 1, globalDefault=True)
        status, body, _ = await send(session, "PATCH", f"{CLASSES}/first",
                                     {"description": "the default"}, MERGE)
    assert status == 200, body
