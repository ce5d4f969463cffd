"""Exec, attach and port-forward with the official `kubernetes` client (`kubernetes.stream`).

The client's documented `resp.write_stdin("...")` sends a TEXT WebSocket message (the stream
number as a character, then the text); with bytes it sends a BINARY one. kube-apiserver and the
kubelet read both the same way (upstream's `wsstream`), so each case writes a line both ways and
reads it back on stdout: from `head -n1` run by exec, and from a container with `stdin: true`
that echoes what it reads, by attach. `kubernetes.stream.portforward` speaks the channel
WebSocket (`v4.channel.k8s.io`, ports in the query), not kubectl's SPDY: its case forwards two
ports of an echo server and one nothing listens on, as the client's own e2e test
`test_portforward_raw` does; kr8s's `Pod.portforward` speaks the same protocol, one port per
WebSocket. One `tinykube up` (default runtime `process`) serves the module.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import kr8s
import pytest
from kubernetes import client, config
from kubernetes.stream import portforward, stream

from tests.conftest import Cluster, start_cluster
from tinykube.testing import free_port

ECHO_PORTS = (free_port(), free_port())  # process pods share the host's ports
ECHO_SERVER = """
import socket, sys, threading
def serve(port):
    listener = socket.create_server(("0.0.0.0", port))
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()
def echo(conn):
    while data := conn.recv(4096):
        conn.sendall(data)
    conn.close()
for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(port),), daemon=True).start()
threading.Event().wait()
"""

PODS = [
    {"metadata": {"name": "shell"},
     "spec": {"containers": [{"name": "main", "image": "busybox",
                              "command": ["sleep", "3600"]}]}},
    {"metadata": {"name": "echo"},
     "spec": {"containers": [{"name": "main", "image": "busybox", "stdin": True,
                              "command": ["sh", "-c",
                                          "while read line; do echo got-$line; done"]}]}},
    {"metadata": {"name": "echo-ports"},
     "spec": {"containers": [{"name": "main", "image": "python",
                              "command": ["python3", "-u", "-c", ECHO_SERVER,
                                          *map(str, ECHO_PORTS)],
                              "readinessProbe": {"tcpSocket": {"port": ECHO_PORTS[1]},
                                                 "periodSeconds": 1}}]}},
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


def _echoed(sock: Any, sent: bytes) -> bytes:
    sock.sendall(sent)
    reply, deadline = b"", time.monotonic() + DEADLINE
    while reply != sent and time.monotonic() < deadline:
        if select.select([sock], [], [], 1)[0]:
            data = sock.recv(1024)
            assert data, "the forwarded connection closed"
            reply += data
    return reply


def test_portforward_two_ports_and_a_refused_one(api: Any) -> None:
    free = free_port()
    pf = portforward(api.connect_get_namespaced_pod_portforward, "echo-ports", "default",
                     ports=",".join(map(str, (*ECHO_PORTS, free))))
    first, second = (pf.socket(port) for port in ECHO_PORTS)
    assert _echoed(first, b"to the first port") == b"to the first port"
    assert _echoed(second, b"to the second port") == b"to the second port"
    refused = pf.socket(free)
    refused.setblocking(True)
    assert refused.recv(1024) == b""  # the client closes it on the error channel's message
    assert f"error forwarding port {free} to pod" in pf.error(free)
    assert "connect: connection refused" in pf.error(free)
    assert _echoed(first, b"still forwarding") == b"still forwarding"
    for sock in (first, second, refused):
        sock.close()
    deadline = time.monotonic() + DEADLINE
    while pf.connected and time.monotonic() < deadline:  # the client closes the WebSocket
        time.sleep(0.05)
    assert not pf.connected
    assert (pf.error(ECHO_PORTS[0]), pf.error(ECHO_PORTS[1])) == (None, None)


def test_kr8s_portforward(api: Any, running: Cluster) -> None:
    cluster = kr8s.api(kubeconfig=str(running.kubeconfig))
    pod = kr8s.objects.Pod.get("echo-ports", namespace="default", api=cluster)
    with pod.portforward(ECHO_PORTS[0], local_port=None) as local, \
            socket.create_connection(("127.0.0.1", local), timeout=DEADLINE) as sock:
        assert _echoed(sock, b"through kr8s") == b"through kr8s"
