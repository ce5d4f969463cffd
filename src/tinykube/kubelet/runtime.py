"""The seam between the node agent and a pod runtime.

The agent owns everything about the API (the Node, the Lease, pod addresses, writing status,
removing a pod once it is stopped); a `Runtime` owns what runs. Which runtime serves a pod is
chosen by the handler of its RuntimeClass (`spec.runtimeClassName`), or the agent's default:

- `virtual.VirtualRuntime`: nothing runs; the pod is Running and Ready at once;
- `process.ProcessRuntime`: the containers' commands run as local processes, with probes,
  restarts and logs (also the handler `netns` for now, with an event saying so);
- `container.ContainerRuntime`: the containers' images are pulled and run with runc.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from tinykube.kubelet.logs import ContainerLog

Obj = Mapping[str, Any]
EventFn = Callable[[Obj, str, str, str], Awaitable[None]]
HANDLERS = ("virtual", "process", "netns", "container")


def grace_seconds(pod: Obj) -> float:
    """The grace period a deleted pod's containers get."""
    meta, spec = pod["metadata"], pod.get("spec", {})
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return float(grace)


class Runtime(Protocol):
    """What the node agent asks of a runtime, per pod."""

    handler: str

    async def sync(self, pod: Obj, *, pod_ip: str) -> dict[str, Any]:
        """Make the pod run (idempotent) and return its status as it should be now."""
        ...

    async def terminate(self, pod: Obj) -> float | None:
        """Stop a deleted pod; None once everything stopped, else seconds to check again."""
        ...

    def stopping_status(self, pod: Obj) -> dict[str, Any] | None:
        """A deleted pod's status while it stops (readiness still probed, as the kubelet
        does); None: the runtime has nothing live to report."""
        ...

    def forget(self, pod: Obj) -> None:
        """The pod object is gone: drop whatever is left of it, at once."""
        ...

    def container_log(self, pod: Obj, container: str) -> ContainerLog | None:
        """The container's logs (None: this runtime has no output); raises errors.APIError."""
        ...

    async def close(self) -> None:
        """The agent stops: stop every pod."""
        ...
