"""Pods: the pod spec (`ValidatePodSpec`) and the pod update rules.

`validate_pod_spec` checks containers (ports, env, volume mounts, resources, probes,
enumerations), init containers, volumes and the pod-level enumerated fields; workloads reuse it
through `validate_template`, which adds the template-only rules (restartPolicy Always, no
activeDeadlineSeconds). A pod update may only change the fields upstream lists
(`_POD_UPDATABLE`): `_munge_pod_spec` copies those from the old spec and any other difference is
reported once, with the changed fields listed.
"""

from __future__ import annotations

from fractions import Fraction

from tinykube.api import quantity
from tinykube.api.clone import clone
from tinykube.api.errors import FieldError
from tinykube.api.validation.meta import validate_annotations, validate_labels
from tinykube.api.validation.names import (
    ENV_NAME_MSG,
    PROTOCOLS,
    Errors,
    Obj,
    check_non_negative,
    check_one_of,
    check_port,
    dns1123_label_errors,
    invalid_each,
    port_name_errors,
    qualified_name_errors,
)

_RESTART_POLICIES = ["Always", "Never", "OnFailure"]
_DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_TERMINATION_MESSAGE_POLICIES = ["FallbackToLogsOnError", "File"]
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate",
                    "File", "FileOrCreate", "Socket"]
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)


def _validate_container_ports(ports: list[Obj], path: str) -> Errors:
    errors: Errors = []
    seen_names: set[str] = set()
    for i, port in enumerate(ports):
        idx = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = port_name_errors(name)
            if msgs:
                errors += invalid_each(f"{idx}.name", name, msgs)
            elif name in seen_names:
                errors.append(FieldError.duplicate(f"{idx}.name", name))
            seen_names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errors.append(FieldError.required(f"{idx}.containerPort"))
        else:
            errors += check_port(f"{idx}.containerPort", container_port)
        if port.get("hostPort"):
            errors += check_port(f"{idx}.hostPort", port["hostPort"])
        errors += check_one_of(f"{idx}.protocol", port.get("protocol"), PROTOCOLS)
    return errors


def _validate_env(env: list[Obj], path: str) -> Errors:
    errors: Errors = []
    for i, var in enumerate(env):
        name = var.get("name") or ""
        if not name:
            errors.append(FieldError.required(f"{path}[{i}].name"))
        elif "=" in name or not all(" " <= ch <= "~" for ch in name):
            errors.append(FieldError.invalid(f"{path}[{i}].name", name, ENV_NAME_MSG))
    return errors


def _validate_probe(probe: Obj, path: str, *, liveness_like: bool) -> Errors:
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    errors: Errors = []
    if not handlers:
        errors.append(FieldError.required(path, "must specify a handler type"))
    for extra in handlers[1:]:
        errors.append(FieldError.forbidden(f"{path}.{extra}",
                                           "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                "successThreshold", "failureThreshold"):
        errors += check_non_negative(f"{path}.{key}", probe.get(key))
    success = probe.get("successThreshold")
    if liveness_like and isinstance(success, int) and success != 1:
        errors.append(FieldError.invalid(f"{path}.successThreshold", success, "must be 1"))
    return errors


def _validate_volume_mounts(container: Obj, path: str, volume_names: set[str]) -> Errors:
    errors: Errors = []
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or []):
        idx = f"{path}.volumeMounts[{i}]"
        name, mount_path = mount.get("name") or "", mount.get("mountPath") or ""
        if not name:
            errors.append(FieldError.required(f"{idx}.name"))
        elif name not in volume_names:
            errors.append(FieldError("FieldValueNotFound", f"{idx}.name", "", name, True))
        if not mount_path:
            errors.append(FieldError.required(f"{idx}.mountPath"))
        elif mount_path in mount_paths:
            errors.append(FieldError.invalid(f"{idx}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
    return errors


def _overcommit_allowed(resource: str) -> bool:
    """Native resources (no domain, or a kubernetes.io one) other than hugepages may have a
    request below their limit; extended resources must request exactly their limit."""
    native = "/" not in resource or "kubernetes.io/" in resource
    return native and not resource.startswith("hugepages-")


def _validate_resources(resources: Obj, path: str) -> Errors:
    """`ValidateResourceRequirements`: non-negative quantities, no request above its limit."""
    errors: Errors = []
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    parsed: dict[tuple[str, str], Fraction] = {}
    for part, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values):
            value = quantity.parse(values[name])
            if value is None:
                continue  # not a quantity: the decoder's business
            parsed[part, name] = value[0]
            if value[0] < 0:
                errors.append(FieldError.invalid(f"{path}.{part}[{name}]",
                                                 quantity.canonical(*value),
                                                 "must be greater than or equal to 0"))
    for name in sorted(requests):
        request, limit = parsed.get(("requests", name)), parsed.get(("limits", name))
        if request is None or limit is None:
            continue
        shown = quantity.text(requests[name])
        limit_shown = quantity.text(limits[name])
        if request != limit and not _overcommit_allowed(name):
            errors.append(FieldError.invalid(f"{path}.requests", shown,
                                             f"must be equal to {name} limit of {limit_shown}"))
        elif request > limit:
            errors.append(FieldError.invalid(
                f"{path}.requests", shown,
                f"must be less than or equal to {name} limit of {limit_shown}"))
    return errors


def _validate_container(container: Obj, path: str, volume_names: set[str]) -> Errors:
    errors: Errors = []
    image = container.get("image") or ""
    if not image:
        errors.append(FieldError.required(f"{path}.image"))
    elif image != image.strip():
        errors.append(FieldError.invalid(f"{path}.image", image,
                                         "must not have leading or trailing whitespace"))
    errors += _validate_container_ports(container.get("ports") or [], f"{path}.ports")
    errors += _validate_env(container.get("env") or [], f"{path}.env")
    errors += _validate_volume_mounts(container, path, volume_names)
    if isinstance(container.get("resources"), dict):
        errors += _validate_resources(container["resources"], f"{path}.resources")
    for key, liveness_like in (("livenessProbe", True), ("readinessProbe", False),
                               ("startupProbe", True)):
        if isinstance(container.get(key), dict):
            errors += _validate_probe(container[key], f"{path}.{key}", liveness_like=liveness_like)
    errors += check_one_of(f"{path}.imagePullPolicy", container.get("imagePullPolicy"),
                           _PULL_POLICIES)
    errors += check_one_of(f"{path}.terminationMessagePolicy",
                           container.get("terminationMessagePolicy"),
                           _TERMINATION_MESSAGE_POLICIES)
    return errors


def _check_entry_name(entry: Obj, idx: str, seen: set[str]) -> Errors:
    """A list entry's `name`: required, a DNS-1123 label, unique among `seen` (which it joins)."""
    name = entry.get("name") or ""
    if not name:
        return [FieldError.required(f"{idx}.name")]
    errors = invalid_each(f"{idx}.name", name, dns1123_label_errors(name))
    if name in seen:
        errors.append(FieldError.duplicate(f"{idx}.name", name))
    seen.add(name)
    return errors


def _validate_containers(containers: list[Obj], path: str, volume_names: set[str],
                         seen_names: set[str]) -> Errors:
    errors: Errors = []
    for i, container in enumerate(containers):
        idx = f"{path}[{i}]"
        errors += _check_entry_name(container, idx, seen_names)
        errors += _validate_container(container, idx, volume_names)
    return errors


def _validate_volume_source(volume: Obj, idx: str) -> Errors:
    sources = [s for s in _VOLUME_SOURCES if volume.get(s) is not None]
    if not sources:
        return [FieldError.required(idx, "must specify a volume type")]
    errors = [FieldError.forbidden(f"{idx}.{s}", "may not specify more than 1 volume type")
              for s in sources[1:]]
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        if not host_path.get("path"):
            errors.append(FieldError.required(f"{idx}.hostPath.path"))
        errors += check_one_of(f"{idx}.hostPath.type", host_path.get("type"), _HOST_PATH_TYPES,
                               required=False)
    return errors


def _validate_volumes(volumes: list[Obj], path: str) -> tuple[Errors, set[str]]:
    errors: Errors = []
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        idx = f"{path}[{i}]"
        errors += _check_entry_name(volume, idx, names)
        errors += _validate_volume_source(volume, idx)
    return errors, names


def validate_pod_spec(spec: Obj, path: str, *, claims: frozenset[str] = frozenset()) -> Errors:
    """`ValidatePodSpec`: containers, volumes and the enumerated pod-level fields.

    `claims` are further names a volume mount may use: a StatefulSet's `volumeClaimTemplates`,
    which its controller turns into the pod's volumes.
    """
    errors, volume_names = _validate_volumes(spec.get("volumes") or [], f"{path}.volumes")
    volume_names |= claims
    containers = spec.get("containers") or []
    container_names: set[str] = set()
    if not containers:
        errors.append(FieldError.required(f"{path}.containers"))
    errors += _validate_containers(containers, f"{path}.containers", volume_names,
                                   container_names)
    errors += _validate_containers(spec.get("initContainers") or [], f"{path}.initContainers",
                                   volume_names, container_names)
    errors += check_one_of(f"{path}.restartPolicy", spec.get("restartPolicy"), _RESTART_POLICIES)
    errors += check_one_of(f"{path}.dnsPolicy", spec.get("dnsPolicy"), _DNS_POLICIES)
    errors += check_non_negative(f"{path}.terminationGracePeriodSeconds",
                                 spec.get("terminationGracePeriodSeconds"))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errors.append(FieldError.invalid(f"{path}.activeDeadlineSeconds", deadline,
                                         "must be between 1 and 2147483647, inclusive"))
    for i, gate in enumerate(spec.get("readinessGates") or []):
        condition = gate.get("conditionType") or ""
        errors += invalid_each(f"{path}.readinessGates[{i}].conditionType", condition,
                               qualified_name_errors(condition))
    return errors


def validate_template(spec: Obj, path: str, *, claims: frozenset[str] = frozenset()) -> Errors:
    """A workload's pod template: metadata labels/annotations and the pod spec (whose mounts
    may also name `claims`)."""
    template = spec.get("template")
    if not isinstance(template, dict):
        return [FieldError.required(path)]
    meta = template.get("metadata") or {}
    errors = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errors += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    errors += validate_pod_spec(template.get("spec") or {}, f"{path}.spec", claims=claims)
    template_spec = template.get("spec") or {}
    restart_policy = template_spec.get("restartPolicy")
    if restart_policy and restart_policy != "Always":
        errors.append(FieldError.not_supported(f"{path}.spec.restartPolicy", restart_policy,
                                               ["Always"]))
    if template_spec.get("activeDeadlineSeconds") is not None:
        errors.append(FieldError.invalid(f"{path}.spec.activeDeadlineSeconds",
                                         template_spec["activeDeadlineSeconds"],
                                         "must not be specified"))
    return errors


# --- Pod -------------------------------------------------------------------------------------

_POD_UPDATABLE = ",".join((
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
))


def validate_pod(pod: Obj) -> Errors:
    return validate_pod_spec(pod.get("spec") or {}, "spec")


def _munge_pod_spec(spec: Obj, old_spec: Obj) -> Obj:
    """`spec` with every field a pod update may change copied from `old_spec`."""
    munged: Obj = clone(spec)
    for key in ("containers", "initContainers"):
        old_images = [c.get("image") for c in old_spec.get(key) or []]
        for container, image in zip(munged.get(key) or [], old_images, strict=False):
            container["image"] = image
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_tolerations = old_spec.get("tolerations") or []
    new_tolerations = munged.get("tolerations") or []
    if all(t in new_tolerations for t in old_tolerations):
        munged["tolerations"] = old_spec.get("tolerations")
        if "tolerations" not in old_spec:
            munged.pop("tolerations", None)
    if not old_spec.get("nodeName") and munged.get("nodeName"):
        munged.pop("nodeName")  # binding: nodeName may be set once
    return munged


def validate_pod_update(pod: Obj, old: Obj) -> Errors:
    spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
    if spec == old_spec:
        return []  # a status write or a metadata change: nothing to compare (one C-level ==)
    munged = _munge_pod_spec(spec, old_spec)
    if munged == old_spec:
        return []
    changed = sorted(k for k in set(munged) | set(old_spec) if munged.get(k) != old_spec.get(k))
    summary = "\n".join(f"  spec.{key}" for key in changed)
    return [FieldError.forbidden(
        "spec", f"pod updates may not change fields other than {_POD_UPDATABLE}\n{summary}")]
