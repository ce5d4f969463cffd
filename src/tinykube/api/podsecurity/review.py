"""What PodSecurity admission decides about one write, given the objects (pod-security-admission
1.32's `admission.go`, without its I/O: the API server's plugin looks the namespace and its pods
up and passes them in).

- A pod (create, or an update that changes an image or adds an ephemeral container) is checked
  against the namespace's enforce level, and refused if it violates it; otherwise against warn,
  which yields a warning.
- A workload's pod template (`TEMPLATES`: Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
  CronJob, ReplicationController, PodTemplate) is checked against warn only: never refused, since
  its pods are checked when they are created.
- A namespace's labels must parse; an update that tightens enforce is answered with warnings
  naming the existing pods that would not be admitted now (the first `MAX_PODS_CHECKED`, one pod
  per controller first, as upstream prioritises them).

Audit mode is parsed like the others, but tinykube keeps no audit log to annotate, so it is not
evaluated. kube-apiserver's default configuration exempts no namespace, user or runtime class,
and neither does tinykube.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tinykube.api.podsecurity import policy
from tinykube.api.podsecurity.policy import LevelVersion, Policy

Obj = dict[str, Any]
MAX_PODS_CHECKED = 3000  # defaultNamespaceMaxPodsToCheck

# kind -> the path of its pod template in the object.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "PodTemplate": ("template",),
    "ReplicationController": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclasses.dataclass
class Verdict:
    """A refusal's message (for `<resource> "<name>" is forbidden: ...`), or warnings."""

    refusal: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


def _dict(obj: Any, key: str) -> Obj:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def template_of(kind: str, obj: Obj) -> tuple[Obj, Obj] | None:
    """The (metadata, spec) of a workload's pod template; None when it has none."""
    node: Any = obj
    for key in TEMPLATES[kind]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    return _dict(node, "metadata"), _dict(node, "spec")


def review_pod(nspolicy: Policy, meta: Obj, spec: Obj, *, enforce: bool) -> Verdict:
    """`EvaluatePod`: enforce (pods only) refuses; warn warns, unless the write is refused."""
    if enforce:
        violations = policy.evaluate(nspolicy.enforce, meta, spec)
        if violations:
            return Verdict(refusal=f'violates PodSecurity "{nspolicy.enforce}": '
                                   f"{policy.details(violations)}")
    violations = policy.evaluate(nspolicy.warn, meta, spec)
    if not violations:
        return Verdict()
    return Verdict(warnings=[f'would violate PodSecurity "{nspolicy.warn}": '
                             f"{policy.details(violations)}"])


def _images(containers: Any) -> list[Any]:
    return [c.get("image") if isinstance(c, dict) else None for c in containers or ()]


def significant_pod_update(new: Obj, old: Obj) -> bool:
    """Whether a pod update changes what the policy checks (`isSignificantPodUpdate`): the
    only mutable fields that matter are images and added ephemeral containers."""
    spec, old_spec = _dict(new, "spec"), _dict(old, "spec")
    for key in ("containers", "initContainers"):
        if _images(spec.get(key)) != _images(old_spec.get(key)):
            return True
    old_ephemeral = {c.get("name"): c.get("image") for c in old_spec.get("ephemeralContainers")
                     or () if isinstance(c, dict)}
    return any(c.get("name") not in old_ephemeral or old_ephemeral[c.get("name")] != c.get("image")
               for c in spec.get("ephemeralContainers") or () if isinstance(c, dict))


def review_namespace_update(new: Obj, old: Obj, pods: list[Obj]) -> Verdict:
    """Label errors were handled by `label_errors`; here: warnings about existing pods when
    the enforce level became stricter (or its version changed)."""
    new_policy, _ = policy.policy_of(_dict(new, "metadata").get("labels"))
    old_policy, _ = policy.policy_of(_dict(old, "metadata").get("labels"))
    enforce, before = new_policy.enforce, old_policy.enforce
    if enforce == before or enforce.level == policy.PRIVILEGED:
        return Verdict()
    if enforce.minor == before.minor and \
            policy.LEVELS.index(enforce.level) <= policy.LEVELS.index(before.level):
        return Verdict()
    name = str(_dict(new, "metadata").get("name") or "")
    return Verdict(warnings=existing_pod_warnings(name, enforce, pods))


def label_errors(new: Obj, old: Obj | None) -> list[Any]:
    """The namespace's label errors that refuse the write: all on create, and on update only if
    they changed (a namespace already holding a bad label can still be updated otherwise)."""
    _, errors = policy.policy_of(_dict(new, "metadata").get("labels"))
    if old is None or not errors:
        return errors
    _, old_errors = policy.policy_of(_dict(old, "metadata").get("labels"))
    return errors if not old_errors or old_errors != errors else []


def _controller_uid(pod: Obj) -> str | None:
    for ref in _dict(pod, "metadata").get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return str(ref.get("uid") or "")
    return None


def _prioritized(pods: list[Obj]) -> list[Obj]:
    """One pod per controller first, then the other replicas (`prioritizePods`)."""
    first: list[Obj] = []
    rest: list[Obj] = []
    seen: set[str] = set()
    for pod in pods:
        uid = _controller_uid(pod)
        if uid is not None and uid in seen:
            rest.append(pod)
            continue
        if uid is not None:
            seen.add(uid)
        first.append(pod)
    return first + rest


def existing_pod_warnings(namespace: str, enforce: LevelVersion, pods: list[Obj]) -> list[str]:
    """`EvaluatePodsInNamespace`: one line per distinct set of reasons, naming a pod."""
    checked = _prioritized(pods)[:MAX_PODS_CHECKED]
    counts: dict[str, tuple[str, int]] = {}  # reasons -> (first pod name, number of pods)
    for pod in checked:
        violations = policy.evaluate(enforce, _dict(pod, "metadata"), _dict(pod, "spec"))
        if violations:
            reasons = policy.reasons(violations)
            name = str(_dict(pod, "metadata").get("name") or "")
            first, count = counts.get(reasons, (name, 0))
            counts[reasons] = (min(first, name), count + 1)
    warnings = []
    if len(checked) < len(pods):
        warnings.append(f"new PodSecurity enforce level only checked against the first "
                        f"{len(checked)} of {len(pods)} existing pods")
    if counts:
        warnings.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity '
                        f'enforce level "{enforce}"')
    return warnings + sorted(_decorated(reasons, *seen) for reasons, seen in counts.items())


def _decorated(reasons: str, name: str, count: int) -> str:
    if count == 1:
        return f"{name}: {reasons}"
    other = "1 other pod" if count == 2 else f"{count - 1} other pods"
    return f"{name} (and {other}): {reasons}"
