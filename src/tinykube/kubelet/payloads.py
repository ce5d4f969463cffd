"""The files of a configMap, secret, downwardAPI or projected volume, as the kubelet makes them
(pure: objects in, `{relative path: File}` out).

A `Payload` is what the `atomicwriter` writes into the volume's directory. The rules are the
kubelet's volume plugins':

- configMap / secret: without `items` every key is a file named after it; with `items` only
  the listed keys, each at its `path`. A missing object is an error unless `optional`, which
  gives an empty volume; a listed key the object lacks is an error unless `optional`
  (`configmap references non-existent config key: K`, `references non-existent secret key: K`).
- modes: an item's `mode`, else the volume's `defaultMode`, else 0644.
- downwardAPI: `fieldRef` (the pod's own fields; `metadata.labels` and `metadata.annotations`
  as `key="value"` lines, sorted, as the kubelet's `fieldpath.FormatMap` writes them) and
  `resourceFieldRef` (a container's limits or requests divided by `divisor`, rounded up; a
  limit the container does not set is the node's allocatable amount, as the kubelet does).
- projected: the sources above plus `serviceAccountToken`, merged into one payload under the
  projected volume's `defaultMode`.

`VolumeError` carries the message the kubelet puts after `MountVolume.SetUp failed for volume
"NAME" : `.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinykube.api import quantity
from tinykube.kubelet import env as pod_env

Obj = Mapping[str, Any]
DEFAULT_MODE = 0o644
NODE_ALLOCATABLE = {"cpu": "2", "memory": "24Gi", "ephemeral-storage": "100Gi"}
# (namespace, name) -> the object, or None when there is none
Lookup = Callable[[str, str], Obj | None]


class VolumeError(Exception):
    """A volume that cannot be set up (the pod waits and retries)."""


@dataclasses.dataclass(frozen=True)
class File:
    data: bytes
    mode: int = DEFAULT_MODE


Payload = dict[str, File]


def _mode(item: Obj, default: int | None) -> int:
    mode = item.get("mode")
    return int(mode) if mode is not None else (DEFAULT_MODE if default is None else int(default))


def keyed(data: Mapping[str, bytes], items: Sequence[Obj] | None, *, default_mode: int | None,
          optional: bool, missing_key: str) -> Payload:
    """A configMap's or secret's files: every key, or the `items` given."""
    if not items:
        return {key: File(value, _mode({}, default_mode)) for key, value in data.items()}
    payload: Payload = {}
    for item in items:
        key = str(item["key"])
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"{missing_key}{key}")
        payload[str(item["path"])] = File(data[key], _mode(item, default_mode))
    return payload


def configmap_data(configmap: Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()})
    return data


def secret_data(secret: Obj) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def _object_source(source: Obj, name: str, namespace: str, lookup: Lookup, *, kind: str,
                   data: Callable[[Obj], Mapping[str, bytes]], missing_key: str,
                   default_mode: int | None) -> Payload:
    """A configMap or secret source: the object's keys (or `items`) as files, nothing when
    an `optional` object is missing."""
    obj = lookup(namespace, name)
    optional = bool(source.get("optional"))
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    return keyed(data(obj), source.get("items"),
                 default_mode=source.get("defaultMode", default_mode), optional=optional,
                 missing_key=missing_key)


def configmap(source: Obj, namespace: str, lookup: Lookup, *,
              default_mode: int | None = None) -> Payload:
    return _object_source(source, str(source.get("name", "")), namespace, lookup,
                          kind="configmap", data=configmap_data, default_mode=default_mode,
                          missing_key="configmap references non-existent config key: ")


def secret(source: Obj, namespace: str, lookup: Lookup, *,
           default_mode: int | None = None) -> Payload:
    return _object_source(source, str(source.get("secretName", source.get("name", ""))),
                          namespace, lookup, kind="secret", data=secret_data,
                          default_mode=default_mode,
                          missing_key="references non-existent secret key: ")


def format_map(values: Mapping[str, str]) -> str:
    """`key="value"` lines, sorted, no final newline (the kubelet's fieldpath.FormatMap)."""
    return "\n".join(f"{k}={_quote(str(values[k]))}" for k in sorted(values))


def _quote(text: str) -> str:
    """Go's %q for the common cases: backslash, quote and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def field(pod: Obj, path: str) -> str:
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(pod["metadata"].get(path.split(".")[1]) or {})
    try:
        return pod_env.field_value(pod, path)
    except pod_env.EnvError as exc:
        raise VolumeError(str(exc)) from exc


def resource(pod: Obj, ref: Obj) -> str:
    """A `resourceFieldRef` value: limits.cpu, requests.memory, ... of the named container."""
    containers = pod.get("spec", {}).get("containers") or []
    name = ref.get("containerName") or (containers[0]["name"] if containers else "")
    container = next((c for c in containers if c["name"] == name), None)
    if container is None:
        raise VolumeError(f"container {name} not found")
    kind, _, res = str(ref.get("resource", "")).partition(".")
    if kind not in ("limits", "requests") or res not in NODE_ALLOCATABLE:
        raise VolumeError(f"unsupported container resource : {ref.get('resource')}")
    own = ((container.get("resources") or {}).get(kind) or {}).get(res)
    if own is None:
        own = NODE_ALLOCATABLE[res] if kind == "limits" else "0"
    value = quantity.parse(own)
    divisor = quantity.parse(ref.get("divisor") or "1")
    if value is None or divisor is None or divisor[0] == 0:
        raise VolumeError(f"invalid quantity for {ref.get('resource')}")
    if res == "cpu":  # the kubelet divides millicores
        return str(math.ceil(math.ceil(value[0] * 1000) / math.ceil(divisor[0] * 1000)))
    return str(math.ceil(value[0] / divisor[0]))


def downward(items: Sequence[Obj], pod: Obj, *, default_mode: int | None) -> Payload:
    payload: Payload = {}
    for item in items:
        if "fieldRef" in item:
            text = field(pod, str(item["fieldRef"]["fieldPath"]))
        elif "resourceFieldRef" in item:
            text = resource(pod, item["resourceFieldRef"])
        else:
            continue
        payload[str(item["path"])] = File(text.encode(), _mode(item, default_mode))
    return payload


@dataclasses.dataclass(frozen=True)
class Sources:
    """Where a pod's volume contents come from: ConfigMaps, Secrets, the pod's token."""

    configmaps: Lookup
    secrets: Lookup
    token: Callable[[Obj, Obj], str | None]  # (pod, serviceAccountToken source) -> token


def projected(source: Obj, pod: Obj, sources: Sources) -> Payload:
    namespace = str(pod["metadata"].get("namespace", "default"))
    default = source.get("defaultMode")
    payload: Payload = {}
    for part in source.get("sources") or []:
        if "configMap" in part:
            payload.update(configmap(part["configMap"], namespace, sources.configmaps,
                                     default_mode=default))
        elif "secret" in part:
            payload.update(secret(part["secret"], namespace, sources.secrets,
                                  default_mode=default))
        elif "downwardAPI" in part:
            payload.update(downward(part["downwardAPI"].get("items") or [], pod,
                                    default_mode=default))
        elif "serviceAccountToken" in part:
            ref = part["serviceAccountToken"]
            token = sources.token(pod, ref)
            if token is None:
                raise VolumeError("failed to fetch token: the pod has no service account token")
            payload[str(ref["path"])] = File(token.encode(), _mode({}, default))
    return payload


def content(volume: Obj, pod: Obj, sources: Sources) -> Payload | None:
    """The payload of a content volume, or None for a volume of another kind."""
    namespace = str(pod["metadata"].get("namespace", "default"))
    if "configMap" in volume:
        return configmap(volume["configMap"], namespace, sources.configmaps)
    if "secret" in volume:
        return secret(volume["secret"], namespace, sources.secrets)
    if "downwardAPI" in volume:
        source = volume["downwardAPI"]
        return downward(source.get("items") or [], pod, default_mode=source.get("defaultMode"))
    if "projected" in volume:
        return projected(volume["projected"], pod, sources)
    return None
