"""The Pod Security Standards checks and policies, against pod-security-admission 1.32's words.

Each check is run (its newest revision) on a pod that passes and on pods that fail, and the
reason and detail are compared with upstream's; then which checks a level and version run, how
namespace labels become a policy, and the warnings for existing pods.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tinykube.api.podsecurity import checks, policy, review
from tinykube.api.podsecurity.checks import Violation
from tinykube.api.podsecurity.policy import LevelVersion, Policy

Obj = dict[str, Any]
RESTRICTED_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                      "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
AA = "container.apparmor.security.beta.kubernetes.io/c"


def spec(context: Obj | None = None, *, pod: Obj | None = None, **fields: Any) -> Obj:
    """A pod spec with container `c` (its securityContext `context`) and the pod's `pod`."""
    container: Obj = {"name": "c", "image": "nginx"}
    if context is not None:
        container["securityContext"] = context
    out: Obj = {"containers": [container], **fields}
    if pod is not None:
        out["securityContext"] = pod
    return out


def newest(check_id: str) -> checks.CheckFn:
    found = next(c for c in checks.CHECKS if c.id == check_id)
    return found.revisions[-1].check


CASES = [
    # baseline
    ("hostNamespaces", {}, spec(), None),
    ("hostNamespaces", {}, spec(hostNetwork=True, hostPID=True, hostIPC=False),
     Violation("host namespaces", "hostNetwork=true, hostPID=true")),
    ("privileged", {}, spec({"privileged": False}), None),
    ("privileged", {}, spec({"privileged": True}),
     Violation("privileged", 'container "c" must not set securityContext.privileged=true')),
    ("privileged", {}, {**spec({"privileged": True}), "initContainers": [
        {"name": "i", "image": "x", "securityContext": {"privileged": True}}]},
     Violation("privileged", 'containers "i", "c" must not set securityContext.privileged=true')),
    ("capabilities_baseline", {}, spec({"capabilities": {"add": ["CHOWN", "KILL"]}}), None),
    ("capabilities_baseline", {}, spec({"capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "KILL"]}}),
     Violation("non-default capabilities", 'container "c" must not include "NET_RAW", '
                                           '"SYS_ADMIN" in securityContext.capabilities.add')),
    ("hostPathVolumes", {}, spec(volumes=[{"name": "e", "emptyDir": {}}]), None),
    ("hostPathVolumes", {}, spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
     Violation("hostPath volumes", 'volume "h"')),
    ("hostPorts", {}, spec(), None),
    ("hostPorts", {}, {"containers": [{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 8080}, {"containerPort": 443, "hostPort": 443}]}]},
     Violation("hostPort", 'container "c" uses hostPorts 443, 8080')),
    ("appArmorProfile", {"annotations": {AA: "localhost/mine"}},
     spec({"appArmorProfile": {"type": "RuntimeDefault"}}), None),
    ("appArmorProfile", {"annotations": {AA: "unconfined"}},
     spec(pod={"appArmorProfile": {"type": "Unconfined"}}),
     Violation("forbidden AppArmor profiles", 'pod and annotation must not set AppArmor profile '
                                              f'type to "Unconfined", "{AA}="unconfined""')),
    ("appArmorProfile", {}, spec({"appArmorProfile": {"type": "Unconfined"}}),
     Violation("forbidden AppArmor profile",
               'container "c" must not set AppArmor profile type to "Unconfined"')),
    ("seLinuxOptions", {}, spec({"seLinuxOptions": {"type": "container_engine_t"}}), None),
    ("seLinuxOptions", {}, spec({"seLinuxOptions": {"type": "spc_t", "user": "u"}}),
     Violation("seLinuxOptions", 'container "c" set forbidden securityContext.seLinuxOptions: '
                                 'type "spc_t"; user may not be set')),
    ("seLinuxOptions", {}, spec(pod={"seLinuxOptions": {"role": "r"}}),
     Violation("seLinuxOptions", "pod set forbidden securityContext.seLinuxOptions: "
                                 "role may not be set")),
    ("procMount", {}, spec({"procMount": "Default"}), None),
    ("procMount", {}, spec({"procMount": "Unmasked"}),
     Violation("procMount", 'container "c" must not set securityContext.procMount to '
                            '"Unmasked"')),
    ("seccompProfile_baseline", {}, spec(), None),
    ("seccompProfile_baseline", {}, spec({"seccompProfile": {"type": "Unconfined"}},
                                         pod={"seccompProfile": {"type": "Unconfined"}}),
     Violation("seccompProfile", 'pod and container "c" must not set '
                                 'securityContext.seccompProfile.type to "Unconfined"')),
    ("sysctls", {}, spec(pod={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}), None),
    ("sysctls", {}, spec(pod={"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                          {"name": "vm.swappiness", "value": "1"}]}),
     Violation("forbidden sysctls", "kernel.msgmax, vm.swappiness")),
    ("windowsHostProcess", {}, spec({"windowsOptions": {"hostProcess": False}}), None),
    ("windowsHostProcess", {}, spec({"windowsOptions": {"hostProcess": True}},
                                    pod={"windowsOptions": {"hostProcess": True}}),
     Violation("hostProcess", 'pod and container "c" must not set '
                              "securityContext.windowsOptions.hostProcess=true")),
    # restricted
    ("restrictedVolumes", {}, spec(volumes=[{"name": "s", "secret": {"secretName": "x"}},
                                            {"name": "p", "persistentVolumeClaim": {}}]), None),
    ("restrictedVolumes", {}, spec(volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}},
                                            {"name": "h", "hostPath": {"path": "/"}},
                                            {"name": "c", "configMap": {"name": "x"}}]),
     Violation("restricted volume types", 'volumes "n", "h" use restricted volume types '
                                          '"hostPath", "nfs"')),
    ("restrictedVolumes", {}, spec(volumes=[{"name": "g", "gitRepo": {"repository": "r"}}]),
     Violation("restricted volume types", 'volume "g" uses restricted volume type "gitRepo"')),
    ("allowPrivilegeEscalation", {}, spec({"allowPrivilegeEscalation": False}), None),
    ("allowPrivilegeEscalation", {}, spec(os={"name": "windows"}), None),
    ("allowPrivilegeEscalation", {}, spec(),
     Violation("allowPrivilegeEscalation != false",
               'container "c" must set securityContext.allowPrivilegeEscalation=false')),
    ("runAsNonRoot", {}, spec(pod={"runAsNonRoot": True}), None),
    ("runAsNonRoot", {}, spec(),
     Violation("runAsNonRoot != true",
               'pod or container "c" must set securityContext.runAsNonRoot=true')),
    ("runAsNonRoot", {}, spec({"runAsNonRoot": False}, pod={"runAsNonRoot": False}),
     Violation("runAsNonRoot != true",
               'pod and container "c" must not set securityContext.runAsNonRoot=false')),
    ("runAsUser", {}, spec({"runAsUser": 1000}), None),
    ("runAsUser", {}, spec({"runAsUser": 0}, pod={"runAsUser": 0}),
     Violation("runAsUser=0", 'pod and container "c" must not set runAsUser=0')),
    ("seccompProfile_restricted", {}, spec(pod={"seccompProfile": {"type": "RuntimeDefault"}}),
     None),
    ("seccompProfile_restricted", {}, spec(),
     Violation("seccompProfile", 'pod or container "c" must set securityContext.seccompProfile.'
                                 'type to "RuntimeDefault" or "Localhost"')),
    ("seccompProfile_restricted", {}, spec({"seccompProfile": {"type": "Unconfined"}}),
     Violation("seccompProfile", 'container "c" must not set securityContext.seccompProfile.'
                                 'type to "Unconfined"')),
    ("capabilities_restricted", {}, spec({"capabilities": {"drop": ["ALL"],
                                                           "add": ["NET_BIND_SERVICE"]}}), None),
    ("capabilities_restricted", {}, spec(),
     Violation("unrestricted capabilities",
               'container "c" must set securityContext.capabilities.drop=["ALL"]')),
    ("capabilities_restricted", {}, spec({"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}),
     Violation("unrestricted capabilities",
               'container "c" must set securityContext.capabilities.drop=["ALL"]; container "c" '
               'must not include "CHOWN", "SYS_ADMIN" in securityContext.capabilities.add')),
]


@pytest.mark.parametrize(("check_id", "meta", "pod_spec", "expected"), [
    pytest.param(*case, id=f"{case[0]}-{'ok' if case[3] is None else 'refused'}-{n}")
    for n, case in enumerate(CASES)])
def test_check(check_id: str, meta: Obj, pod_spec: Obj, expected: Violation | None) -> None:
    before = copy.deepcopy((meta, pod_spec))
    assert newest(check_id)(meta, pod_spec) == expected
    assert (meta, pod_spec) == before


def test_every_check_of_the_policy_has_cases() -> None:
    assert {c.id for c in checks.CHECKS} == {case[0] for case in CASES}


@pytest.mark.parametrize(("lv", "pod_spec", "meta", "detail"), [
    pytest.param(LevelVersion("privileged"), spec({"privileged": True}), {}, "", id="privileged"),
    pytest.param(LevelVersion("baseline"), spec({"privileged": True}, hostNetwork=True), {},
                 "host namespaces (hostNetwork=true), privileged (container \"c\" must not set "
                 "securityContext.privileged=true)", id="baseline-in-id-order"),
    pytest.param(LevelVersion("restricted"), spec(), {},
                 'allowPrivilegeEscalation != false (container "c" must set securityContext.'
                 'allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must '
                 'set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
                 'container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod '
                 'or container "c" must set securityContext.seccompProfile.type to '
                 '"RuntimeDefault" or "Localhost")', id="restricted-plain-pod"),
    pytest.param(LevelVersion("restricted"), spec(RESTRICTED_CONTEXT), {}, "",
                 id="restricted-compliant"),
    pytest.param(LevelVersion("restricted"),
                 spec({**RESTRICTED_CONTEXT, "capabilities": {"drop": ["ALL"], "add": ["KILL"]}},
                      volumes=[{"name": "h", "hostPath": {"path": "/"}}]), {},
                 'unrestricted capabilities (container "c" must not include "KILL" in '
                 'securityContext.capabilities.add), restricted volume types (volume "h" uses '
                 'restricted volume type "hostPath")', id="restricted-overrides-baseline"),
    pytest.param(LevelVersion("restricted", 22), spec({**RESTRICTED_CONTEXT, "runAsUser": 0}), {},
                 "", id="runAsUser-from-1.23"),
    pytest.param(LevelVersion("restricted", 23), spec({**RESTRICTED_CONTEXT, "runAsUser": 0}), {},
                 'runAsUser=0 (container "c" must not set runAsUser=0)', id="runAsUser-1.23"),
    pytest.param(LevelVersion("restricted", 21),
                 spec({**RESTRICTED_CONTEXT, "capabilities": {"add": ["SYS_ADMIN"]}}), {},
                 'non-default capabilities (container "c" must not include "SYS_ADMIN" in '
                 'securityContext.capabilities.add)', id="capabilities-before-1.22"),
    pytest.param(LevelVersion("baseline", 31),
                 spec(pod={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}), {},
                 "forbidden sysctls (net.ipv4.tcp_rmem)", id="sysctls-1.31"),
    pytest.param(LevelVersion("baseline", 40),
                 spec(pod={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}), {},
                 "", id="future-version-is-newest"),
    pytest.param(LevelVersion("baseline", 30),
                 spec({"seLinuxOptions": {"type": "container_engine_t"}}), {},
                 'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: '
                 'type "container_engine_t")', id="selinux-engine-from-1.31"),
    pytest.param(LevelVersion("baseline", 18), spec(),
                 {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
                 'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod='
                 '"unconfined")', id="seccomp-annotations-before-1.19"),
    pytest.param(LevelVersion("restricted", 24), spec(os={"name": "windows"}), {},
                 'allowPrivilegeEscalation != false (container "c" must set securityContext.'
                 'allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must '
                 'set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
                 'container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod '
                 'or container "c" must set securityContext.seccompProfile.type to '
                 '"RuntimeDefault" or "Localhost")', id="windows-checked-before-1.25"),
    pytest.param(LevelVersion("restricted"), spec(os={"name": "windows"}), {},
                 'runAsNonRoot != true (pod or container "c" must set securityContext.'
                 'runAsNonRoot=true)', id="windows-exempt-from-1.25"),
])
def test_evaluate_a_level_and_version(lv: LevelVersion, pod_spec: Obj, meta: Obj,
                                      detail: str) -> None:
    assert policy.details(policy.evaluate(lv, meta, pod_spec)) == detail


ENFORCE, WARN = "pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/warn"


@pytest.mark.parametrize(("labels", "expected", "errors"), [
    pytest.param(None, Policy(), [], id="unlabelled-privileged"),
    pytest.param({ENFORCE: "baseline"},
                 Policy(LevelVersion("baseline"), warn=LevelVersion("baseline")), [],
                 id="warn-follows-enforce"),
    pytest.param({ENFORCE: "baseline", f"{ENFORCE}-version": "v1.29"},
                 Policy(LevelVersion("baseline", 29), warn=LevelVersion("baseline", 29)), [],
                 id="warn-follows-enforce-version"),
    pytest.param({ENFORCE: "baseline", WARN: "restricted"},
                 Policy(LevelVersion("baseline"), warn=LevelVersion("restricted")), [],
                 id="own-warn"),
    pytest.param({ENFORCE: "strict"}, Policy(LevelVersion("restricted")),
                 ['metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": '
                  "must be one of privileged, baseline, restricted"],
                 id="bad-enforce-fails-closed"),
    pytest.param({WARN: "x", f"{WARN}-version": "1.30"}, Policy(),
                 ['metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "x": must be '
                  "one of privileged, baseline, restricted",
                  'metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: '
                  '"1.30": must be "latest" or "v1.x"'], id="bad-warn-fails-open"),
    pytest.param({f"{ENFORCE}-version": "v1.01"}, Policy(),
                 ['metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: '
                  '"v1.01": must be "latest" or "v1.x"'], id="leading-zero"),
])
def test_policy_of_namespace_labels(labels: dict[str, str] | None, expected: Policy,
                                    errors: list[str]) -> None:
    found, found_errors = policy.policy_of(labels)
    assert (found, [str(e) for e in found_errors]) == (expected, errors)


def _pod(name: str, context: Obj | None = None, owner: str | None = None) -> Obj:
    meta: Obj = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta, "spec": spec(context)}


def test_existing_pods_that_violate_a_new_enforce_level() -> None:
    pods = [_pod("web-b", owner="rs1"), _pod("web-a", owner="rs1"),
            _pod("solo", RESTRICTED_CONTEXT), _pod("root", {**RESTRICTED_CONTEXT, "runAsUser": 0}),
            _pod("web-c", owner="rs1")]
    assert review.existing_pod_warnings("x", LevelVersion("restricted"), pods) == [
        'existing pods in namespace "x" violate the new PodSecurity enforce level '
        '"restricted:latest"',
        "root: runAsUser=0",
        "web-a (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, "
        "runAsNonRoot != true, seccompProfile",
    ]


@pytest.mark.parametrize(("old", "new", "warned"), [
    pytest.param({}, {ENFORCE: "restricted"}, True, id="tightened"),
    pytest.param({ENFORCE: "restricted"}, {ENFORCE: "baseline"}, False, id="relaxed"),
    pytest.param({ENFORCE: "restricted"}, {ENFORCE: "restricted"}, False, id="unchanged"),
    pytest.param({ENFORCE: "restricted"}, {ENFORCE: "restricted", f"{ENFORCE}-version": "v1.30"},
                 True, id="version-changed"),
    pytest.param({}, {ENFORCE: "privileged"}, False, id="privileged"),
])
def test_namespace_update_warns_only_when_enforce_tightens(old: dict[str, str],
                                                          new: dict[str, str],
                                                          warned: bool) -> None:
    verdict = review.review_namespace_update({"metadata": {"name": "x", "labels": new}},
                                             {"metadata": {"name": "x", "labels": old}},
                                             [_pod("p")])
    assert bool(verdict.warnings) is warned


@pytest.mark.parametrize(("old", "new", "significant"), [
    pytest.param(spec(), spec(), False, id="same"),
    pytest.param(spec(), spec(activeDeadlineSeconds=5), False, id="other-field"),
    pytest.param(spec(), {"containers": [{"name": "c", "image": "nginx:2"}]}, True, id="image"),
    pytest.param(spec(), {**spec(), "ephemeralContainers": [{"name": "d", "image": "busybox"}]},
                 True, id="ephemeral-added"),
])
def test_significant_pod_update(old: Obj, new: Obj, significant: bool) -> None:
    assert review.significant_pod_update({"spec": new}, {"spec": old}) is significant


@pytest.mark.parametrize(("kind", "obj", "template_spec"), [
    pytest.param("Deployment", {"spec": {"template": {"spec": {"hostPID": True}}}},
                 {"hostPID": True}, id="deployment"),
    pytest.param("CronJob", {"spec": {"jobTemplate": {"spec": {"template": {
        "spec": {"hostIPC": True}}}}}}, {"hostIPC": True}, id="cronjob"),
    pytest.param("PodTemplate", {"template": {"spec": {"hostNetwork": True}}},
                 {"hostNetwork": True}, id="podtemplate"),
    pytest.param("ReplicationController", {"spec": {}}, None, id="rc-without-template"),
])
def test_template_of_a_workload(kind: str, obj: Obj, template_spec: Obj | None) -> None:
    found = review.template_of(kind, obj)
    assert (found[1] if found else None) == template_spec


def test_workload_templates_warn_but_are_never_refused() -> None:
    nspolicy = Policy(LevelVersion("baseline"), warn=LevelVersion("restricted"))
    verdict = review.review_pod(nspolicy, {}, spec({"privileged": True}), enforce=False)
    assert verdict.refusal is None
    assert verdict.warnings[0].startswith('would violate PodSecurity "restricted:latest": '
                                          'privileged (container "c" must not set')


def test_refused_pod_gets_no_warning() -> None:
    nspolicy = Policy(LevelVersion("baseline"), warn=LevelVersion("restricted"))
    verdict = review.review_pod(nspolicy, {}, spec({"privileged": True}), enforce=True)
    assert verdict == review.Verdict(refusal='violates PodSecurity "baseline:latest": privileged '
                                             '(container "c" must not set '
                                             'securityContext.privileged=true)')


@pytest.mark.parametrize(("old", "new", "refused"), [
    pytest.param(None, {ENFORCE: "bogus"}, True, id="create"),
    pytest.param({}, {ENFORCE: "bogus"}, True, id="update-adds"),
    pytest.param({ENFORCE: "bogus"}, {ENFORCE: "bogus", "team": "a"}, False,
                 id="update-keeps-an-old-bad-label"),
    pytest.param({ENFORCE: "bogus"}, {ENFORCE: "worse"}, True, id="update-changes-it"),
])
def test_label_errors_refuse_only_new_mistakes(old: dict[str, str] | None, new: dict[str, str],
                                               refused: bool) -> None:
    previous = None if old is None else {"metadata": {"labels": old}}
    assert bool(review.label_errors({"metadata": {"labels": new}}, previous)) is refused


def test_pod_in_a_namespace_with_a_bad_enforce_label_is_held_to_restricted() -> None:
    nspolicy, _ = policy.policy_of({ENFORCE: "bogus"})
    verdict = review.review_pod(nspolicy, {}, spec(), enforce=True)
    assert (verdict.refusal or "").startswith('violates PodSecurity "restricted:latest": ')
