"""The process runtime waits for a pod's volumes: FailedMount events, back-off, then start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tinykube.kubelet import volumes
from tinykube.kubelet.process import ProcessRuntime
from tinykube.kubelet.worker import NodeContext


class Clock:
    """Sleeps return at once; their lengths are kept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def pod(mounts: bool = True) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox", "command": ["true"]}
    if mounts:
        container["volumeMounts"] = [{"name": "cfg", "mountPath": "/tinykube-unit/cfg"}]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": "Never", "containers": [container],
                     "volumes": [{"name": "cfg", "configMap": {"name": "late"}}]}}


def runtime(tmp_path: Path, mode: str, configmaps: dict[Any, Any],
            ) -> tuple[ProcessRuntime, list[tuple[str, str]], list[Any], Clock]:
    events: list[tuple[str, str]] = []
    notified: list[Any] = []
    clock = Clock()

    async def event(_pod: Any, _type: str, reason: str, message: str) -> None:
        events.append((reason, message))
    node = NodeContext(host_ip="127.0.0.1", event=event, notify=notified.append,
                       services=list, clock=clock)
    manager = volumes.VolumeManager(tmp_path, volumes.Objects(
        configmaps=lambda ns, name: configmaps.get((ns, name)), secrets=lambda _n, _m: None,
        claims=lambda _n, _m: None, persistent_volumes=lambda _n: None,
        token=lambda _p, _s: None), can_mount=False)
    return (ProcessRuntime(node, root=tmp_path, cluster_dns=lambda: None, sandbox_mode=mode,
                           volumes=manager), events, notified, clock)


async def test_missing_config_map_backs_off_then_starts(tmp_path: Path) -> None:
    configmaps: dict[Any, Any] = {}
    rt, events, notified, clock = runtime(tmp_path, "none", configmaps)
    the_pod = pod(mounts=False)
    for _ in range(3):
        status = await rt.sync(the_pod, pod_ip="127.244.0.2")
        await asyncio.sleep(0)  # the retry task runs (and notifies)
    failed = ('MountVolume.SetUp failed for volume "cfg" : configmap "late" not found')
    assert [e for e in events if e[0] == "FailedMount"] == [("FailedMount", failed)] * 3
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert len(notified) == 3
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ContainerCreating"}}
    assert rt.workers["u1"].task is None
    configmaps[("ns", "late")] = {"data": {"k": "v"}}
    await rt.sync(the_pod, pod_ip="127.244.0.2")
    assert rt.workers["u1"].task is not None
    assert (rt.workers["u1"].volume_paths["cfg"] / "k").read_text() == "v"
    await rt.close()
    rt.forget(the_pod)
    assert not (tmp_path / "u1").exists()


@pytest.mark.parametrize("mounts", [True, False], ids=["mounted", "not-mounted"])
async def test_mode_none_cannot_mount(tmp_path: Path, mounts: bool) -> None:
    rt, events, _notified, _clock = runtime(tmp_path, "none", {("ns", "late"): {"data": {}}})
    await rt.sync(pod(mounts), pod_ip="127.244.0.2")
    failed = [m for r, m in events if r == "FailedMount"]
    if mounts:
        assert failed and "this node cannot mount volumes" in failed[0]
        assert rt.workers["u1"].task is None
    else:  # the volume is made, nothing has to be mounted: the pod starts
        assert failed == []
        assert rt.workers["u1"].task is not None
    await rt.close()
    rt.forget(pod(mounts))
