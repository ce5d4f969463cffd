"""The registry goes away while a large layer streams into the container runtime: the pod
shows ErrImagePull with the reason, the cache holds no partial blob or layer (every blob in
it matches its digest, `tmp/` is empty), and once the registry is back the retried pull
succeeds and the container runs.

The runtime pulls through a throttling TCP relay on loopback (so the layer takes seconds to
stream); when a few MiB of it have passed, the test stops the `docker-registry` process. The
registry then comes back on the same storage behind the same relay address.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from tests.integration import oci_registry
from tests.integration.test_container_runtime_direct import (
    FakeClock,
    _finish,
    _pod,
    _runtime,
    _until,
)
from tests.integration.test_container_runtime_direct import pytestmark as _marks

pytestmark = _marks
RATE = 4 << 20  # bytes per second the relay passes back to the client
LAYER = 16 << 20  # random bytes: gzip cannot shrink them


class Relay:
    """127.0.0.1:PORT -> 127.0.0.1:`upstream`, the replies throttled to RATE; `sent` counts
    the bytes passed back."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sent = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        self._pump(upstream, client, True)

    def _pump(self, src: socket.socket, dst: socket.socket, throttle: bool) -> None:
        try:
            while chunk := src.recv(64 << 10):
                dst.sendall(chunk)
                if throttle:
                    self.sent += len(chunk)
                    time.sleep(len(chunk) / RATE)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.closing = True
        self.server.close()


def _big_image(work: Path) -> Path:
    layout = oci_registry.build_busybox(work, "big")
    big = work / "big.tar"
    with tarfile.open(big, "w") as tf:
        data = work / "random.bin"
        data.write_bytes(os.urandom(LAYER))
        tf.add(data, "big/random.bin")
    subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:big", str(big)],
                   check=True, capture_output=True, timeout=120)
    return layout


def _cache_is_whole(images: Path) -> None:
    for blob in (images / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    assert list((images / "tmp").iterdir()) == []


async def test_registry_gone_mid_pull_leaves_no_partial_layer(tmp_path: Path) -> None:
    layout = _big_image(tmp_path)
    storage = tmp_path / "registry-data"
    first = oci_registry.Registry(tmp_path, storage)
    relay = Relay(first.port)
    try:
        oci_registry.push(layout, "big", f"{first.host}/demo/big:1")
        image = f"127.0.0.1:{relay.port}/demo/big:1"
        events: list[tuple[str, str]] = []
        runtime = _runtime(tmp_path, FakeClock(), events)
        pod = _pod(image, command=["sh", "-c", "cat /big/random.bin > /dev/null; exit 0"])
        await runtime.sync(pod, pod_ip="127.0.0.1")
        worker = runtime.workers[pod["metadata"]["uid"]]
        await _until(lambda: relay.sent > 3 * RATE // 4)  # the big layer is streaming
        first.stop()
        await _until(lambda: worker.main["c"].reason in ("ErrImagePull", "ImagePullBackOff"))
        failed = [m for r, m in events if r == "Failed" and m.startswith("Failed to pull")]
        assert failed and failed[0].startswith(f'Failed to pull image "{image}": rpc error: '
                                               "code = ")
        assert "failed to copy: sha256:" in failed[0] and "read failed after" in failed[0]
        assert ("Failed", "Error: ErrImagePull") in events
        assert relay.sent < LAYER  # it was cut off, not finished
        _cache_is_whole(tmp_path / "images")
        assert runtime.store.find(image) is None

        second = oci_registry.Registry(tmp_path, storage)  # back, on the same storage
        relay.upstream = second.port
        try:
            await _until(lambda: worker.main["c"].state == "terminated")
            assert worker.main["c"].exit_code == 0  # the whole layer was there to read
            assert runtime.store.find(image) is not None
            _cache_is_whole(tmp_path / "images")
        finally:
            second.stop()
        await _finish(runtime, pod)
    finally:
        relay.close()
        first.stop()
