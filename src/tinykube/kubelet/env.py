"""A process container's environment and command line, as a kubelet builds them (pure).

The order of precedence is the kubelet's: a small base (`PATH`, `HOME`, `HOSTNAME`, and
`POD_IP`, the address the pod's programs bind to, since all pods share the host's network),
then the Service variables of `service_env` (docker-link style: `NGINX_SERVICE_HOST`,
`NGINX_SERVICE_PORT`, `NGINX_PORT_80_TCP_ADDR`, ...), then the container's own `env` in order.
Each `env[].value` may refer to earlier variables as `$(NAME)` (`$$` escapes a dollar sign); the
container's `command` and `args` are expanded the same way against the final environment.
`valueFrom.fieldRef` reads the pod's own fields; references that need other objects
(`configMapKeyRef`, `secretKeyRef`, `resourceFieldRef`) raise `EnvError`, which the runtime
reports as `CreateContainerConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_MASTER_SERVICE = ("default", "kubernetes")


class EnvError(Exception):
    """An env var that cannot be built (the container is not started)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: unknown references stay as written, `$$` is `$`."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))
    return _REFERENCE.sub(replace, text)


def _env_name(service_name: str) -> str:
    return service_name.upper().replace("-", "_")


def service_env(services: Sequence[Obj], *, namespace: str,
                enable_service_links: bool = True) -> dict[str, str]:
    """The variables a kubelet injects for Services: the pod's namespace's (when service links
    are enabled) and always the `kubernetes` Service of `default`; headless and ExternalName
    Services have no address and are skipped."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        meta, spec = svc["metadata"], svc.get("spec", {})
        own = meta.get("namespace") == namespace and enable_service_links
        if not own and (meta.get("namespace"), meta["name"]) != _MASTER_SERVICE:
            continue
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        env.update(_one_service_env(_env_name(meta["name"]), ip, spec.get("ports") or []))
    return env


def _one_service_env(prefix: str, ip: str, ports: Sequence[Obj]) -> dict[str, str]:
    env = {f"{prefix}_SERVICE_HOST": ip}
    if not ports:
        return env
    env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
    for port in ports:
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
    first = ports[0]
    env[f"{prefix}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
    for port in ports:
        proto = port.get("protocol", "TCP")
        base = f"{prefix}_PORT_{port['port']}_{proto}"
        env[base] = f"{proto.lower()}://{ip}:{port['port']}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(port["port"])
        env[f"{base}_ADDR"] = ip
    return env


def field_value(pod: Obj, path: str) -> str:
    """The value of a `fieldRef.fieldPath` of the pod."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""), "status.hostIP": status.get("hostIP", ""),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise EnvError(f"unsupported fieldPath {path!r}")


def container_env(pod: Obj, container: Obj, *, base: Mapping[str, str],
                  services: Mapping[str, str]) -> dict[str, str]:
    """The environment of one container: base, then Service variables, then `env`."""
    env = {**base, **services}
    for item in container.get("env") or []:
        source = item.get("valueFrom")
        if source is None:
            env[item["name"]] = expand(str(item.get("value", "")), env)
        elif "fieldRef" in source:
            env[item["name"]] = field_value(pod, source["fieldRef"]["fieldPath"])
        else:
            kind = next(iter(source), "valueFrom")
            raise EnvError(f"env {item['name']}: {kind} is not supported by the process runtime")
    if container.get("envFrom"):
        raise EnvError("envFrom is not supported by the process runtime")
    return env


def command_line(container: Obj, env: Mapping[str, str]) -> list[str]:
    """`command` + `args`, expanded; the image's entrypoint is unknown, so one must be given."""
    argv = [expand(str(a), env) for a in
            [*(container.get("command") or []), *(container.get("args") or [])]]
    if not argv:
        raise EnvError("the process runtime needs a command (images are not pulled, so the "
                       "image's entrypoint is unknown)")
    return argv
