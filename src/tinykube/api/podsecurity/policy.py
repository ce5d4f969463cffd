"""Pod Security levels, versions and namespace policies, as pod-security-admission 1.32 reads them.

A namespace chooses, per mode (enforce, audit, warn), a level and a version with its labels
`pod-security.kubernetes.io/<mode>` (`privileged`, `baseline` or `restricted`) and
`pod-security.kubernetes.io/<mode>-version` (`latest` or `v1.<minor>`). What is not labelled
comes from the defaults, which for kube-apiserver without an admission configuration are
`privileged:latest` for every mode. A bad value is an error (the namespace write is refused);
for a namespace already holding one, enforce falls back to `restricted` and audit and warn fail
open to `privileged` (`PolicyToEvaluate`). When only enforce is labelled and stricter than
warn, warn follows it, so that what would be refused is also warned about on workloads.

`evaluate` runs the checks of `checks.CHECKS` for one level and version: privileged runs none;
baseline the baseline checks; restricted the restricted checks and the baseline checks none of
them overrides. For each check, the newest revision whose minimum version the policy version
reaches applies; `latest` (and any version newer than every check) is the newest of all. The
results are in upstream's order: baseline IDs sorted, then restricted IDs sorted.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tinykube.api.errors import FieldError
from tinykube.api.podsecurity.checks import (
    BASELINE,
    CHECKS,
    MAX_MINOR,
    RESTRICTED,
    CheckFn,
    Violation,
)

Obj = dict[str, Any]
PRIVILEGED = "privileged"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)
MODES = ("enforce", "audit", "warn")
LABEL_PREFIX = "pod-security.kubernetes.io/"
_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")


@dataclasses.dataclass(frozen=True)
class LevelVersion:
    """`restricted:latest`; `minor` None is `latest`."""

    level: str = PRIVILEGED
    minor: int | None = None

    def __str__(self) -> str:
        version = "latest" if self.minor is None else f"v1.{self.minor}"
        return f"{self.level}:{version}"


@dataclasses.dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    @property
    def fully_privileged(self) -> bool:
        return all(lv.level == PRIVILEGED for lv in (self.enforce, self.audit, self.warn))


DEFAULT_POLICY = Policy()


def _strictness(level: str) -> int:
    return LEVELS.index(level)


def _parse_level(value: str) -> tuple[str | None, str]:
    if value in LEVELS:
        return value, ""
    return None, f"must be one of {', '.join(LEVELS)}"


def _parse_version(value: str) -> tuple[int | None, str]:
    if value == "latest":
        return None, ""
    match = _VERSION.match(value)
    if match is None:
        return None, 'must be "latest" or "v1.x"'
    return int(match.group(1)), ""


def policy_of(labels: dict[str, str] | None,
              defaults: Policy = DEFAULT_POLICY) -> tuple[Policy, list[FieldError]]:
    """The namespace's policy and the errors of its labels (`PolicyToEvaluate`)."""
    labels = labels or {}
    errors: list[FieldError] = []
    chosen = {mode: getattr(defaults, mode) for mode in MODES}
    enforce_set = False  # a valid enforce level was labelled
    for mode in MODES:
        lv = chosen[mode]
        key = LABEL_PREFIX + mode
        if key in labels:
            level, error = _parse_level(labels[key])
            if error:
                errors.append(FieldError.invalid(f"metadata.labels[{key}]", labels[key], error))
                level = RESTRICTED if mode == "enforce" else PRIVILEGED  # fail closed / open
            enforce_set = enforce_set or (mode == "enforce" and not error)
            lv = dataclasses.replace(lv, level=level or PRIVILEGED)
        if key + "-version" in labels:
            value = labels[key + "-version"]
            minor, error = _parse_version(value)
            if error:
                errors.append(FieldError.invalid(f"metadata.labels[{key}-version]", value, error))
            lv = dataclasses.replace(lv, minor=minor)
        chosen[mode] = lv
    enforce, warn = chosen["enforce"], chosen["warn"]
    warn_key = LABEL_PREFIX + "warn"
    if warn_key not in labels and enforce_set \
            and _strictness(enforce.level) > _strictness(warn.level):
        chosen["warn"] = LevelVersion(enforce.level, warn.minor if warn_key + "-version" in labels
                                      else enforce.minor)
    return Policy(**chosen), errors


def _revision_checks(level: str, minor: int) -> list[tuple[str, str, CheckFn, tuple[str, ...]]]:
    """(id, level, function, overrides) of every check applying at v1.`minor`."""
    applying = []
    for check in CHECKS:
        revisions = [r for r in check.revisions if r.minimum <= minor]
        if revisions and (check.level == BASELINE or level == RESTRICTED):
            newest = revisions[-1]
            applying.append((check.id, check.level, newest.check, newest.overrides))
    return applying


def checks_for(lv: LevelVersion) -> list[CheckFn]:
    """The check functions a level and version runs, in upstream's order."""
    if lv.level == PRIVILEGED:
        return []
    minor = MAX_MINOR if lv.minor is None else min(lv.minor, MAX_MINOR)
    applying = _revision_checks(lv.level, minor)
    overridden = {o for _id, _level, _fn, overrides in applying for o in overrides}
    kept = [a for a in applying if a[0] not in overridden]
    kept.sort(key=lambda a: (a[1] != BASELINE, a[0]))
    return [fn for _id, _level, fn, _overrides in kept]


def evaluate(lv: LevelVersion, meta: Obj, spec: Obj) -> list[Violation]:
    """What the pod (metadata and spec) violates at this level and version."""
    violations = []
    for check in checks_for(lv):
        found = check(meta, spec)
        if found is not None:
            violations.append(found)
    return violations


def reasons(violations: list[Violation]) -> str:
    """`host namespaces, privileged`: how a namespace check names a pod's violations."""
    return ", ".join(v.reason or "unknown forbidden reason" for v in violations)


def details(violations: list[Violation]) -> str:
    """`privileged (container "c" must not ...), hostPort (...)`: how a pod's refusal says it."""
    return ", ".join(f"{v.reason or 'unknown forbidden reason'} ({v.detail})" if v.detail
                     else v.reason or "unknown forbidden reason" for v in violations)
