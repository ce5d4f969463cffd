"""Container lifecycle hooks (`postStart`, `preStop`) as the kubelet's handler runner runs them.

A hook is one action: `exec` (a command in the container, through the worker's wrapper),
`httpGet` (host defaulting to the pod IP, scheme, path, port by number or name, headers) or
`sleep` (`seconds`, the PodLifecycleSleepAction that is on by default since 1.30). The exec and
httpGet actions reuse the probe actions of `probes.run_probe`; sleep waits on the injected clock.

`run_hook` returns None on success or the kubelet's message for the hook's failure, which the
worker puts into a `FailedPostStartHook` / `FailedPreStopHook` event:

    Exec lifecycle hook ([cmd args]) for Container "c" in Pod "name_ns(uid)" failed - error: ...
    HTTP lifecycle hook (/path) for Container "c" in Pod "name_ns(uid)" failed - error: ...

`seconds` bounds exec and httpGet actions (the rest of the grace period for preStop).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinykube.kubelet import probes
from tinykube.kubelet.restarts import Clock

Obj = Mapping[str, Any]
NO_TIMEOUT = 3600.0  # postStart has no timeout upstream; one hour bounds ours


def pod_label(pod: Obj) -> str:
    """`format.Pod`: name_namespace(uid)."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def kind(hook: Obj) -> str | None:
    """Which action the hook carries (None: no hook)."""
    return next((k for k in ("exec", "httpGet", "sleep", "tcpSocket") if k in hook), None)


async def run_hook(hook: Obj, container: Obj, pod: Obj, *, pod_ip: str, env: Mapping[str, str],
                   wrap: probes.Wrap, cwd: str | None, connect: probes.Connect, clock: Clock,
                   seconds: float = NO_TIMEOUT) -> str | None:
    """Run one lifecycle hook; None when it succeeded, else kube's failure message."""
    action = kind(hook)
    where = f"for Container {_quote(container.get('name', ''))} in Pod {_quote(pod_label(pod))}"
    if action == "sleep":
        await clock.sleep(max(0, int((hook["sleep"] or {}).get("seconds") or 0)))
        return None
    if action == "tcpSocket":  # deprecated, accepted by the API, never run by the kubelet
        return None
    if action not in ("exec", "httpGet"):
        return None
    ok, message = await probes.run_probe(
        {action: hook[action], "timeoutSeconds": max(seconds, 1.0)}, container, pod_ip=pod_ip,
        env=env, wrap=wrap, cwd=cwd, connect=connect)
    if ok:
        return None
    if action == "exec":
        command = "[" + " ".join(str(a) for a in hook["exec"].get("command") or []) + "]"
        return f"Exec lifecycle hook ({command}) {where} failed - error: {message}"
    path = hook["httpGet"].get("path") or ""
    return f"HTTP lifecycle hook ({path}) {where} failed - error: {message}"


def _quote(text: str) -> str:
    """Go's %q for the plain names kube allows."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
