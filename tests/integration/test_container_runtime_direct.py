"""The container runtime driven directly (no API server): real runc and a real registry, the
host's network (as `tinykube up --network host` gives a `runtimeClassName: container` pod),
volume `Mount`s given by the caller, and the image pull back-off on an injected clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import oci_registry
from tests.integration.test_container_runtime import pytestmark as _marks
from tinykube.images import gc
from tinykube.images.store import Store
from tinykube.kubelet import volumes
from tinykube.kubelet.cgroups import Cgroups
from tinykube.kubelet.container import ContainerRuntime
from tinykube.kubelet.worker import NodeContext

pytestmark = [m for m in _marks if m.name == "skipif"]
NO_OBJECTS = volumes.Objects(configmaps=lambda _n, _m: None, secrets=lambda _n, _m: None,
                             claims=lambda _n, _m: None, persistent_volumes=lambda _n: None,
                             token=lambda _p, _s: None)  # hostPath volumes need no API object


class FakeClock:
    """now() and sleep() of the runtime; sleeping advances time at once and is recorded."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("direct")
    layout = oci_registry.build_busybox(work, "1")
    with oci_registry.registry(work, work / "registry-data") as plain:
        oci_registry.push(layout, "1", f"{plain.host}/demo/busybox:1")
        yield f"{plain.host}/demo/busybox:1"


def _runtime(tmp_path: Path, clock: FakeClock,
             events: list[tuple[str, str]]) -> ContainerRuntime:
    async def event(_obj: Any, _type: str, reason: str, message: str) -> None:
        events.append((reason, message))

    node = NodeContext(host_ip="127.0.0.1", event=event, notify=lambda _pod: None,
                       services=lambda: [], clock=clock,
                       cgroups=Cgroups(f"test-{uuid.uuid4().hex[:8]}"))
    return ContainerRuntime(node, root=tmp_path / "node" / "containers",
                            store=Store(tmp_path / "images"), cluster_dns=lambda: None,
                            volumes=volumes.VolumeManager(tmp_path / "node" / "pods", NO_OBJECTS))


def _pod(image: str, **container: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "uid": str(uuid.uuid4())},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": image, **container}]}}


async def _until(check: Any) -> None:
    """Poll `check` for up to 30 s."""
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out after 30 s")


async def _finish(runtime: ContainerRuntime, pod: dict[str, Any]) -> None:
    runtime.forget(pod)
    await runtime.close()
    assert runtime.leftovers() == []
    assert runtime.node.cgroups is not None
    runtime.node.cgroups.clear()


async def test_volume_mounts_read_only_and_writable(image: str, tmp_path: Path) -> None:
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "f").write_text("from the host\n")
    events: list[tuple[str, str]] = []
    runtime = _runtime(tmp_path, FakeClock(), events)
    script = ("cat /config/f; echo x > /config/g || echo refused; echo written > /data/out; "
              "cat /etc/hostname")
    pod = _pod(image, command=["sh", "-c", script],
               volumeMounts=[{"name": "ro", "mountPath": "/config", "readOnly": True},
                             {"name": "rw", "mountPath": "/data"}])
    pod["spec"]["volumes"] = [{"name": "ro", "hostPath": {"path": str(ro)}},
                              {"name": "rw", "hostPath": {"path": str(rw)}}]
    await runtime.sync(pod, pod_ip="127.0.0.1")
    worker = runtime.workers[pod["metadata"]["uid"]]
    await _until(lambda: worker.main["c"].state == "terminated")
    text = b"".join(r.split(b" ", 1)[1] for r in worker.logs["c"].records())
    for expected in (b"from the host\n", b"refused\n", b"p\n", b"Read-only file system"):
        assert expected in text
    assert (rw / "out").read_text() == "written\n"
    assert worker.main["c"].exit_code == 0
    no_dns = ("DNSConfigForming", "MissingClusterDNS")
    assert [r for r, _ in events if r not in no_dns] == ["Pulling", "Pulled", "Created",
                                                                "Started"]
    await _finish(runtime, pod)


async def test_pull_back_off_grows_on_the_clock(image: str, tmp_path: Path) -> None:
    clock = FakeClock()
    events: list[tuple[str, str]] = []
    runtime = _runtime(tmp_path, clock, events)
    wrong = image.replace("busybox", "nope")
    pod = _pod(wrong)
    await runtime.sync(pod, pod_ip="127.0.0.1")
    await _until(lambda: [r for r, _ in events].count("BackOff") >= 4)
    worker = runtime.workers[pod["metadata"]["uid"]]
    await worker.stop(1)
    # ErrImagePull for a second, then ImagePullBackOff until 10 s, 20 s, 40 s... have passed
    assert clock.sleeps[:8] == [1.0, 9.0, 1.0, 19.0, 1.0, 39.0, 1.0, 79.0]
    no_dns = ("DNSConfigForming", "MissingClusterDNS")  # (no cluster DNS here)
    events = [e for e in events if e[0] not in no_dns]
    assert events[:2] == [("Pulling", f'Pulling image "{wrong}"'),
                          ("Failed", events[1][1])]
    assert events[1][1].startswith(f'Failed to pull image "{wrong}": rpc error: code = '
                                   "NotFound desc = ")
    await _finish(runtime, pod)


async def test_exec_runs_inside_the_container(image: str, tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    runtime = _runtime(tmp_path, FakeClock(), events)
    pod = _pod(image)  # the image's httpd, on the host's network: port 8080 is not used
    pod["spec"]["containers"][0]["args"] = ["-f", "-p", "127.0.0.1:0"]
    await runtime.sync(pod, pod_ip="127.0.0.1")
    worker = runtime.workers[pod["metadata"]["uid"]]
    await _until(lambda: worker.main["c"].state == "running" and bool(runtime.leftovers()))
    argv, env, cwd = runtime.exec_command(pod, "c", ["sh", "-c", "pwd; echo $PATH"])
    proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert (proc.returncode, out) == (0, b"/www\n/bin\n")
    await worker.stop(1)
    await _finish(runtime, pod)


async def test_image_gc_removes_unused_images_only(image: str, tmp_path: Path) -> None:
    """Two images pulled through pods; one pod is gone, the other runs. A collection under a
    tiny bound removes the unused image (blobs and layers), keeps the running one, says it
    could not free enough (FreeDiskSpaceFailed) and refreshes the Node's images."""
    work = tmp_path / "second"
    work.mkdir()
    layout = oci_registry.build_busybox(work, "2")
    host = image.split("/", 1)[0]
    oci_registry.push(layout, "2", f"{host}/demo/other:2")
    other = f"{host}/demo/other:2"
    events: list[tuple[str, str]] = []
    runtime = _runtime(tmp_path, FakeClock(), events)
    published: list[list[dict[str, Any]]] = []
    runtime.on_images = published.append
    running = _pod(image, args=["-f", "-p", "127.0.0.1:0"])
    done = _pod(other, command=["sh", "-c", "exit 0"])
    for pod in (running, done):
        await runtime.sync(pod, pod_ip="127.0.0.1")
    workers = [runtime.workers[p["metadata"]["uid"]] for p in (running, done)]
    await _until(lambda: workers[0].main["c"].state == "running"
                 and workers[1].main["c"].state == "terminated")
    runtime.forget(done)
    store = runtime.store
    kept, gone = workers[0].images["c"], workers[1].images["c"]
    assert kept.digest != gone.digest
    # The finished container's clean-up (runc delete, its root filesystem) runs in a thread
    # once it exited; until it is done the image is still a container's, as for the kubelet.
    await _until(lambda: gone.digest not in store.used_by_containers())

    async def node_event(type_: str, reason: str, message: str) -> None:
        events.append((reason, message))

    collector = gc.ImageGC(store, gc.Policy(capacity=1, min_age=0), clock=store.clock,
                           in_use=runtime.images_in_use, event=node_event,
                           on_change=runtime.images_changed)
    before = store.usage()
    await collector.run_once()
    assert list(store.images) == [kept.digest]
    assert not any(store.has_blob(ly.digest) for ly in gone.layers
                   if ly.digest not in {k.digest for k in kept.layers})
    assert 0 < store.usage() < before
    assert [n for i in published[-1] for n in i["names"]] == sorted(
        kept.names, key=lambda n: "@" not in n, reverse=True)
    reason, message = events[-1]
    assert reason == "FreeDiskSpaceFailed"
    assert message.startswith(f"Failed to garbage collect required amount of images. "
                              f"Attempted to free {before} bytes, but only found ")
    await workers[0].stop(1)
    await _finish(runtime, running)


@pytest.fixture(scope="module")
def private_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The busybox image on a token-auth registry (user alice, password s3cret)."""
    work = tmp_path_factory.mktemp("private")
    layout = oci_registry.build_busybox(work, "1")
    storage = work / "registry-data"
    with oci_registry.TokenServer(work, {"alice": "s3cret"}) as tokens, \
            oci_registry.registry(work, storage) as plain, \
            oci_registry.registry(work, storage, tokens) as secure:
        oci_registry.push(layout, "1", f"{plain.host}/demo/busybox:1")
        yield f"{secure.host}/demo/busybox:1"


@pytest.mark.parametrize(("password", "runs"), [
    pytest.param("wrong", False, id="wrong-password"),
    pytest.param("s3cret", True, id="right-password"),
])
async def test_docker_config_credentials_on_a_token_registry(
        private_image: str, tmp_path: Path, password: str, runs: bool) -> None:
    """The node's ~/.docker/config.json (here a file given to the runtime) logs in to the
    token server; a wrong password fails the pull with the registry's 401 in the event."""
    host = private_image.split("/", 1)[0]
    config = tmp_path / "docker-config.json"
    login = base64.b64encode(f"alice:{password}".encode()).decode()
    config.write_text(json.dumps({"auths": {host: {"auth": login}}}))
    events: list[tuple[str, str]] = []
    runtime = _runtime(tmp_path, FakeClock(), events)
    runtime.docker_config_path = config
    pod = _pod(private_image, command=["sh", "-c", "exit 0"])
    await runtime.sync(pod, pod_ip="127.0.0.1")
    worker = runtime.workers[pod["metadata"]["uid"]]
    if runs:
        await _until(lambda: worker.main["c"].state == "terminated")
        assert worker.main["c"].exit_code == 0
    else:
        await _until(lambda: any(r == "BackOff" for r, _ in events))
        failed = next(m for r, m in events if r == "Failed" and m.startswith("Failed to pull"))
        assert failed.startswith(f'Failed to pull image "{private_image}": rpc error: code = ')
        assert "401 Unauthorized" in failed, failed
        assert worker.main["c"].reason in ("ErrImagePull", "ImagePullBackOff")
        await worker.stop(1)
    await _finish(runtime, pod)
