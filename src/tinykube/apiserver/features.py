"""Feature gates and `--runtime-config`, in kube-apiserver's flag syntax.

`--feature-gates KEY=BOOL[,KEY=BOOL...]` names gates kube-apiserver 1.32 has; tinykube knows
only the ones that change what it does (`GATES`, with their 1.32 defaults), and refuses any
other name as kube refuses a name it does not know (`unrecognized feature gate: X`), so a
gate kube has but tinykube does not implement is refused too, rather than silently ignored.
A value that is not a Go bool (`strconv.ParseBool`: 1, t, T, TRUE, true, True, 0, f, F,
FALSE, false, False) is refused with kube's text.

`--runtime-config GROUP/VERSION[=BOOL][,...]` turns API versions on; kube serves alpha
versions only when asked. tinykube has one version that is off by default:
`admissionregistration.k8s.io/v1alpha1` (MutatingAdmissionPolicy and its binding), served when
both the `MutatingAdmissionPolicy` gate and that runtime-config are true, as in kube 1.32.
`api/all` and `api/alpha` also turn it on; `=true` on any other version tinykube serves is
accepted (it is on already); other keys are refused.
"""

from __future__ import annotations

import dataclasses

GATES: dict[str, bool] = {"MutatingAdmissionPolicy": False}  # name -> default (kube 1.32)
MUTATING_POLICY_VERSION = "admissionregistration.k8s.io/v1alpha1"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class FlagError(ValueError):
    """A flag value kube-apiserver would refuse; `str()` is kube's message."""


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FlagError(f'invalid value of {key}={value}, err: strconv.ParseBool: parsing '
                    f'"{value}": invalid syntax')


def _pairs(text: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        pairs.append((key.strip(), value.strip() if sep else None))
    return pairs


def parse_feature_gates(text: str) -> dict[str, bool]:
    """`--feature-gates` as gate -> value (only the gates it names)."""
    gates: dict[str, bool] = {}
    for key, value in _pairs(text):
        if value is None:
            raise FlagError(f"missing bool value for {key}")
        if key not in GATES:
            raise FlagError(f"unrecognized feature gate: {key}")
        gates[key] = _bool(key, value)
    return gates


def parse_runtime_config(text: str, served: frozenset[str]) -> dict[str, bool]:
    """`--runtime-config` as group/version -> value; `served` are the versions on already."""
    config: dict[str, bool] = {}
    for key, value in _pairs(text):
        enabled = True if value is None or value == "" else _bool(key, value)
        if key in ("api/all", "api/alpha"):
            key = MUTATING_POLICY_VERSION
        elif key != MUTATING_POLICY_VERSION and (key not in served or not enabled):
            raise FlagError(f"unknown api groups {key}" if key not in served else
                            f"tinykube cannot disable {key}")
        config[key] = enabled
    return config


@dataclasses.dataclass(frozen=True)
class Features:
    """What the flags turned on."""

    gates: dict[str, bool] = dataclasses.field(default_factory=dict)
    runtime_config: dict[str, bool] = dataclasses.field(default_factory=dict)

    def enabled(self, gate: str) -> bool:
        return self.gates.get(gate, GATES[gate])

    @property
    def mutating_policies(self) -> bool:
        """Whether admissionregistration.k8s.io/v1alpha1's two kinds are served."""
        return self.enabled("MutatingAdmissionPolicy") and \
            self.runtime_config.get(MUTATING_POLICY_VERSION, False)
