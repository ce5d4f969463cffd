"""The Pod Security Standards' checks, one row each, worded as pod-security-admission 1.32's.

Upstream (`k8s.io/pod-security-admission/policy/check_*.go`) registers each check with an ID, a
level (baseline or restricted) and one or more versions: the policy version it first applies to,
the function, and for restricted checks the baseline checks it replaces (restricted volume types
replace hostPath volumes, and so on). `CHECKS` is that registry as a table; `policy.evaluate`
picks, for a level and version, the newest revision of each check that applies.

A check looks at the pod's metadata and spec (JSON, as decoded and defaulted) and returns `None`
when the pod passes, or a `Violation`: a short reason (`privileged`) and a detail naming what
failed (`container "c" must not set securityContext.privileged=true`). The wording, plurals,
quoting and orders (sorted sets, containers in visiting order: init, regular, ephemeral) are
upstream's, since users grep for them.

Not modelled: the `UserNamespacesPodSecurityStandards` relaxation for `hostUsers: false` pods
(an alpha feature gate, off by default in 1.32).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]
BASELINE, RESTRICTED = "baseline", "restricted"


@dataclasses.dataclass(frozen=True)
class Violation:
    """Why a check refused the pod (`CheckResult` with Allowed false)."""

    reason: str
    detail: str = ""


CheckFn = Callable[[Obj, Obj], Violation | None]


@dataclasses.dataclass(frozen=True)
class Revision:
    """One version of a check: applies from policy version v1.`minimum` on."""

    minimum: int
    check: CheckFn
    overrides: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Check:
    id: str
    level: str
    revisions: tuple[Revision, ...]


# --- helpers (policy/helpers.go, policy/visitor.go) ------------------------------------------

def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(items: list[str]) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def _go_quote(text: str) -> str:
    """Go's `%q` for the strings these messages hold."""
    return json.dumps(text, ensure_ascii=False)


def _dict(obj: Any, key: str) -> Obj | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else None


def _containers(spec: Obj) -> Iterator[Obj]:
    """Init containers, containers, then ephemeral containers (`visitContainers`)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, dict):
                yield container


def _name(container: Obj) -> str:
    return str(container.get("name") or "")


def _context(obj: Obj) -> Obj | None:
    return _dict(obj, "securityContext")


def _windows(spec: Obj) -> bool:
    return (_dict(spec, "os") or {}).get("name") == "windows"


def _named(noun: str, names: list[str]) -> str:
    """`container "a"` / `containers "a", "b"`."""
    return f"{_plural(noun, noun + 's', len(names))} {join_quote(names)}"


def _setters(pod_bad: bool, containers: list[str]) -> list[str]:
    """`pod`, `containers "a", "b"`: who set a forbidden value."""
    return (["pod"] if pod_bad else []) + ([_named("container", containers)] if containers else [])


def _unless_windows(check: CheckFn) -> CheckFn:
    """The 1.25 revisions: Windows pods (`spec.os.name: windows`) are exempt."""
    def revised(meta: Obj, spec: Obj) -> Violation | None:
        return None if _windows(spec) else check(meta, spec)
    return revised


# --- baseline ----------------------------------------------------------------------------------

def host_namespaces(meta: Obj, spec: Obj) -> Violation | None:
    shared = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    return Violation("host namespaces", ", ".join(shared)) if shared else None


def privileged(meta: Obj, spec: Obj) -> Violation | None:
    bad = [_name(c) for c in _containers(spec) if (_context(c) or {}).get("privileged") is True]
    if not bad:
        return None
    return Violation("privileged",
                     f"{_named('container', bad)} must not set securityContext.privileged=true")


BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def _added(container: Obj) -> list[str]:
    caps = _dict(_context(container), "capabilities") or {}
    return [str(c) for c in caps.get("add") or ()]


def capabilities_baseline(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    extra: set[str] = set()
    for container in _containers(spec):
        mine = [c for c in _added(container) if c not in BASELINE_CAPABILITIES]
        if mine:
            bad.append(_name(container))
            extra.update(mine)
    if not bad:
        return None
    return Violation("non-default capabilities",
                     f"{_named('container', bad)} must not include {join_quote(sorted(extra))} "
                     "in securityContext.capabilities.add")


def host_path_volumes(meta: Obj, spec: Obj) -> Violation | None:
    bad = [str(v.get("name") or "") for v in spec.get("volumes") or ()
           if isinstance(v, dict) and v.get("hostPath") is not None]
    return Violation("hostPath volumes", _named("volume", bad)) if bad else None


def host_ports(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    ports: set[str] = set()
    for container in _containers(spec):
        mine = [str(p["hostPort"]) for p in container.get("ports") or ()
                if isinstance(p, dict) and p.get("hostPort")]
        if mine:
            bad.append(_name(container))
            ports.update(mine)
    if not bad:
        return None
    return Violation("hostPort", f"{_named('container', bad)} {_plural('uses', 'use', len(bad))} "
                                 f"{_plural('hostPort', 'hostPorts', len(ports))} "
                                 f"{', '.join(sorted(ports))}")


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_type_bad(context: Obj | None) -> str | None:
    profile = _dict(context, "appArmorProfile")
    if profile is None:
        return None
    kind = str(profile.get("type") or "")
    return None if kind in ("RuntimeDefault", "Localhost") else kind


def _apparmor_annotation_ok(value: str) -> bool:
    return value in ("", "runtime/default") or value.startswith("localhost/")


def app_armor_profile(meta: Obj, spec: Obj) -> Violation | None:
    values: set[str] = set()
    pod_bad = _apparmor_type_bad(_context(spec))
    if pod_bad is not None:
        values.add(pod_bad)
    bad: list[str] = []
    for container in _containers(spec):
        kind = _apparmor_type_bad(_context(container))
        if kind is not None:
            bad.append(_name(container))
            values.add(kind)
    setters = _setters(pod_bad is not None, bad)
    annotations = sorted(f"{k}={_go_quote(str(v))}"
                         for k, v in (meta.get("annotations") or {}).items()
                         if k.startswith(APPARMOR_ANNOTATION_PREFIX)
                         and not _apparmor_annotation_ok(str(v)))
    listed = sorted(values) + annotations
    if annotations:
        setters.append(_plural("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    return Violation(
        _plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(listed)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(listed)}")


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Violation | None:
        types: set[str] = set()
        flags = {"user": False, "role": False}

        def bad(context: Obj | None) -> bool:
            options = _dict(context, "seLinuxOptions")
            if options is None:
                return False
            kind = str(options.get("type") or "")
            if kind not in allowed:
                types.add(kind)
            for key in flags:
                flags[key] = flags[key] or bool(options.get(key))
            return kind not in allowed or bool(options.get("user")) or bool(options.get("role"))

        pod_bad = bad(_context(spec))
        containers = [_name(c) for c in _containers(spec) if bad(_context(c))]
        setters = _setters(pod_bad, containers)
        if not setters:
            return None
        data = [f"{_plural('type', 'types', len(types))} {join_quote(sorted(types))}"] \
            if types else []
        data += [f"{key} may not be set" for key, set_ in flags.items() if set_]
        return Violation("seLinuxOptions", f"{' and '.join(setters)} set forbidden "
                                           f"securityContext.seLinuxOptions: {'; '.join(data)}")
    return check


def proc_mount(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    kinds: set[str] = set()
    for container in _containers(spec):
        mount = (_context(container) or {}).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(_name(container))
            kinds.add(str(mount))
    if not bad:
        return None
    return Violation("procMount", f"{_named('container', bad)} must not set "
                                  f"securityContext.procMount to {join_quote(sorted(kinds))}")


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def seccomp_baseline_1_0(meta: Obj, spec: Obj) -> Violation | None:
    """Before 1.19 seccomp was set with annotations."""
    annotations = meta.get("annotations") or {}
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_PREFIX + _name(c)
                                       for c in _containers(spec)]
    forbidden = {f"{k}={_go_quote(str(annotations[k]))}" for k in keys if k in annotations
                 and not (annotations[k] in ("runtime/default", "docker/default")
                          or str(annotations[k]).startswith("localhost/"))}
    if not forbidden:
        return None
    return Violation("seccompProfile", f"forbidden "
                                       f"{_plural('annotation', 'annotations', len(forbidden))} "
                                       f"{', '.join(sorted(forbidden))}")


def _seccomp_type(context: Obj | None) -> tuple[bool, str]:
    """(set, type) of a securityContext's seccompProfile."""
    profile = _dict(context, "seccompProfile")
    return (profile is not None, str((profile or {}).get("type") or ""))


def _seccomp(restricted: bool) -> CheckFn:
    """Baseline 1.19: a profile set must be RuntimeDefault or Localhost; restricted 1.19: and
    every container must have one, its own or the pod's."""
    def check(meta: Obj, spec: Obj) -> Violation | None:
        values: set[str] = set()
        pod_set, pod_type = _seccomp_type(_context(spec))
        pod_bad = pod_set and pod_type not in ("RuntimeDefault", "Localhost")
        if pod_bad:
            values.add(pod_type)
        explicit: list[str] = []
        implicit: list[str] = []
        for container in _containers(spec):
            set_, kind = _seccomp_type(_context(container))
            if set_ and kind not in ("RuntimeDefault", "Localhost"):
                explicit.append(_name(container))
                values.add(kind)
            elif not set_ and not (pod_set and not pod_bad):
                implicit.append(_name(container))
        setters = _setters(pod_bad, explicit)
        if setters:
            return Violation("seccompProfile", f"{' and '.join(setters)} must not set "
                                               "securityContext.seccompProfile.type to "
                                               f"{join_quote(sorted(values))}")
        if restricted and implicit:
            return Violation("seccompProfile", f"pod or {_named('container', implicit)} must set "
                                               'securityContext.seccompProfile.type to '
                                               '"RuntimeDefault" or "Localhost"')
        return None
    return check


SYSCTLS_1_0 = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                         "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                         "net.ipv4.ip_unprivileged_port_start"})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                               "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Violation | None:
        names = [str(s.get("name") or "") for s in (_context(spec) or {}).get("sysctls") or ()
                 if isinstance(s, dict)]
        bad = [name for name in names if name not in allowed]
        return Violation("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


def _host_process(context: Obj | None) -> bool:
    return (_dict(context, "windowsOptions") or {}).get("hostProcess") is True


def windows_host_process(meta: Obj, spec: Obj) -> Violation | None:
    bad = [_name(c) for c in _containers(spec) if _host_process(_context(c))]
    setters = _setters(_host_process(_context(spec)), bad)
    if not setters:
        return None
    return Violation("hostProcess", f"{' and '.join(setters)} must not set "
                                    "securityContext.windowsOptions.hostProcess=true")


# --- restricted --------------------------------------------------------------------------------

ALLOWED_VOLUME_SOURCES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                    "persistentVolumeClaim", "projected", "secret"})
# In upstream's order: a volume naming two sources is reported by the first.
RESTRICTED_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO",
    "storageos")


def _volume_type(volume: Obj) -> str | None:
    """None for an allowed source, else the restricted type's name (or `unknown`)."""
    if any(volume.get(key) is not None for key in ALLOWED_VOLUME_SOURCES):
        return None
    return next((k for k in RESTRICTED_VOLUME_SOURCES if volume.get(k) is not None), "unknown")


def restricted_volumes(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    kinds: set[str] = set()
    for volume in spec.get("volumes") or ():
        kind = _volume_type(volume) if isinstance(volume, dict) else None
        if kind is not None:
            bad.append(str(volume.get("name") or ""))
            kinds.add(kind)
    if not bad:
        return None
    return Violation("restricted volume types",
                     f"{_named('volume', bad)} {_plural('uses', 'use', len(bad))} "
                     f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} "
                     f"{join_quote(sorted(kinds))}")


def allow_privilege_escalation(meta: Obj, spec: Obj) -> Violation | None:
    bad = [_name(c) for c in _containers(spec)
           if (_context(c) or {}).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return Violation("allowPrivilegeEscalation != false",
                     f"{_named('container', bad)} must set "
                     "securityContext.allowPrivilegeEscalation=false")


def run_as_non_root(meta: Obj, spec: Obj) -> Violation | None:
    pod_value = (_context(spec) or {}).get("runAsNonRoot")
    explicit, implicit = [], []
    for container in _containers(spec):
        value = (_context(container) or {}).get("runAsNonRoot")
        if value is False:
            explicit.append(_name(container))
        elif value is None and pod_value is not True:
            implicit.append(_name(container))
    setters = _setters(pod_value is False, explicit)
    if setters:
        return Violation("runAsNonRoot != true", f"{' and '.join(setters)} must not set "
                                                 "securityContext.runAsNonRoot=false")
    if implicit:
        return Violation("runAsNonRoot != true", f"pod or {_named('container', implicit)} must "
                                                 "set securityContext.runAsNonRoot=true")
    return None


def _root(context: Obj | None) -> bool:
    user = (context or {}).get("runAsUser")
    return user == 0 and not isinstance(user, bool)


def run_as_user(meta: Obj, spec: Obj) -> Violation | None:
    bad = [_name(c) for c in _containers(spec) if _root(_context(c))]
    setters = _setters(_root(_context(spec)), bad)
    if not setters:
        return None
    return Violation("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")


def capabilities_restricted(meta: Obj, spec: Obj) -> Violation | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for container in _containers(spec):
        caps = _dict(_context(container), "capabilities")
        if caps is None:
            missing_drop.append(_name(container))
            continue
        if "ALL" not in (caps.get("drop") or ()):
            missing_drop.append(_name(container))
        mine = [str(c) for c in caps.get("add") or () if c != "NET_BIND_SERVICE"]
        if mine:
            adding.append(_name(container))
            forbidden.update(mine)
    details = []
    if missing_drop:
        details.append(f'{_named("container", missing_drop)} must set '
                       'securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_named('container', adding)} must not include "
                       f"{join_quote(sorted(forbidden))} in securityContext.capabilities.add")
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


# --- the registry ------------------------------------------------------------------------------

_CAPS_BASELINE, _HOST_PATH, _SECCOMP_BASELINE = ("capabilities_baseline", "hostPathVolumes",
                                                 "seccompProfile_baseline")
CHECKS: tuple[Check, ...] = (
    Check("allowPrivilegeEscalation", RESTRICTED, (
        Revision(8, allow_privilege_escalation),
        Revision(25, _unless_windows(allow_privilege_escalation)))),
    Check("appArmorProfile", BASELINE, (Revision(0, app_armor_profile),)),
    Check(_CAPS_BASELINE, BASELINE, (Revision(0, capabilities_baseline),)),
    Check("capabilities_restricted", RESTRICTED, (
        Revision(22, capabilities_restricted, (_CAPS_BASELINE,)),
        Revision(25, _unless_windows(capabilities_restricted), (_CAPS_BASELINE,)))),
    Check("hostNamespaces", BASELINE, (Revision(0, host_namespaces),)),
    Check(_HOST_PATH, BASELINE, (Revision(0, host_path_volumes),)),
    Check("hostPorts", BASELINE, (Revision(0, host_ports),)),
    Check("privileged", BASELINE, (Revision(0, privileged),)),
    Check("procMount", BASELINE, (Revision(0, proc_mount),)),
    Check("restrictedVolumes", RESTRICTED, (
        Revision(0, restricted_volumes, (_HOST_PATH,)),)),
    Check("runAsNonRoot", RESTRICTED, (Revision(0, run_as_non_root),)),
    Check("runAsUser", RESTRICTED, (Revision(23, run_as_user),)),
    Check("seLinuxOptions", BASELINE, (
        Revision(0, _selinux(SELINUX_TYPES_1_0)), Revision(31, _selinux(SELINUX_TYPES_1_31)))),
    Check(_SECCOMP_BASELINE, BASELINE, (
        Revision(0, seccomp_baseline_1_0), Revision(19, _seccomp(restricted=False)))),
    Check("seccompProfile_restricted", RESTRICTED, (
        Revision(19, _seccomp(restricted=True), (_SECCOMP_BASELINE,)),
        Revision(25, _unless_windows(_seccomp(restricted=True)), (_SECCOMP_BASELINE,)))),
    Check("sysctls", BASELINE, (
        Revision(0, _sysctls(SYSCTLS_1_0)), Revision(27, _sysctls(SYSCTLS_1_27)),
        Revision(29, _sysctls(SYSCTLS_1_29)), Revision(32, _sysctls(SYSCTLS_1_32)))),
    Check("windowsHostProcess", BASELINE, (Revision(0, windows_host_process),)),
)
# The newest policy version any check knows: `latest`, and any later v1.x, evaluate as it.
MAX_MINOR = max(r.minimum for c in CHECKS for r in c.revisions)
