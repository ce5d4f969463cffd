"""Exec and attach with the official `kubernetes` client (`kubernetes.stream`), unchanged.

The client's documented `resp.write_stdin("...")` sends a TEXT WebSocket message (the stream
number as a character, then the text); with bytes it sends a BINARY one. kube-apiserver and the
kubelet read both the same way (upstream's `wsstream`), so each case writes a line both ways and
reads it back on stdout: from `head -n1` run by exec, and from a container with `stdin: true`
that echoes what it reads, by attach. One `tinykube up` (default runtime `process`) serves the
module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.stream import stream

from tests.conftest import Cluster, start_cluster

PODS = [
    {"metadata": {"name": "shell"},
     "spec": {"containers": [{"name": "main", "image": "busybox",
                              "command": ["sleep", "3600"]}]}},
    {"metadata": {"name": "echo"},
     "spec": {"containers": [{"name": "main", "image": "busybox", "stdin": True,
                              "command": ["sh", "-c",
                                          "while read line; do echo got-$line; done"]}]}},
]
DEADLINE = 30.0


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("client-exec") / "data",
                            "--default-runtime", "process", "--no-dns")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def api(running: Cluster) -> Any:
    api = client.CoreV1Api(config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(running.kubeconfig)))
    for pod in PODS:
        api.create_namespaced_pod("default", pod)
    deadline = time.monotonic() + DEADLINE
    while not all(_ready(api.read_namespaced_pod(p["metadata"]["name"], "default"))
                  for p in PODS):
        assert time.monotonic() < deadline, "the pods did not become Ready"
        time.sleep(0.1)
    return api


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or ())


FRAMES = {"text frame": "{}\n", "binary frame": b"{}\n"}


def _line(kind: str, word: str) -> str | bytes:
    template = FRAMES[kind]
    return template.format(word) if isinstance(template, str) else \
        template.replace(b"{}", word.encode())


@pytest.mark.parametrize("kind", FRAMES, ids=list(FRAMES))
def test_exec_reads_stdin(api: Any, kind: str) -> None:
    resp = stream(api.connect_get_namespaced_pod_exec, "shell", "default",
                  command=["head", "-n1"], stdin=True, stdout=True, stderr=True, tty=False,
                  _preload_content=False)
    try:
        resp.write_stdin(_line(kind, "hello"))
        resp.run_forever(timeout=DEADLINE)  # until the command ends and the server closes
        assert not resp.is_open(), "head -n1 never got its line"
        assert resp.read_stdout() == "hello\n"
        assert resp.returncode == 0
    finally:
        resp.close()


@pytest.mark.parametrize("kind", FRAMES, ids=list(FRAMES))
def test_attach_reads_stdin(api: Any, kind: str) -> None:
    word = f"attach-{kind.split()[0]}"
    resp = stream(api.connect_get_namespaced_pod_attach, "echo", "default", stdin=True,
                  stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        resp.write_stdin(_line(kind, word))
        deadline = time.monotonic() + DEADLINE
        lines: list[str] = []
        while f"got-{word}" not in lines:  # the replay of earlier sessions' output comes first
            assert time.monotonic() < deadline, f"no got-{word} in {lines}"
            lines.append(resp.readline_stdout(timeout=deadline - time.monotonic()))
    finally:
        resp.close()
