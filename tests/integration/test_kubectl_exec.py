"""`kubectl exec`, `cp`, `attach` and `run -i[t]` with process pods, with both real kubectls.

One `tinykube up` per kubectl (default runtime `process`) runs a pod whose container sleeps;
each case runs one kubectl command against it and checks what kubectl prints and its exit code:
stdout and stderr apart, the container's environment and host name, stdin, exit codes, a
terminal (through `script`, which gives kubectl one), files copied both ways, and the errors for
a virtual pod and a missing command. `kubectl run -i --rm` and `run -it --rm` attach to a new
pod's container and delete the pod after; `kubectl attach` follows a running container.
"""

from __future__ import annotations

import dataclasses
import select
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Kubectl, start_cluster
from tests.integration.api_http import Server

pytestmark = [pytest.mark.kubectl]

POD = """
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  containers:
  - name: main
    image: busybox
    command: [sleep, "3600"]
    env: [{name: GREETING, value: hello}]
    workingDir: /tmp
---
apiVersion: v1
kind: Pod
metadata: {name: ghost}
spec:
  runtimeClassName: virtual
  containers: [{name: main, image: nginx}]
"""


@pytest.fixture(scope="module", params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kubectl(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    base = tmp_path_factory.mktemp("exec")
    cluster = start_cluster(base / "data", "--default-runtime", "process", "--no-dns")
    (base / "kubecache").mkdir()
    kubectl = Kubectl(request.param, cluster.kubeconfig, base / "kubecache")
    kubectl("apply", "-f", "-", input=POD)
    kubectl("wait", "--for=condition=Ready", "pod/shell", "pod/ghost", "--timeout=60s")
    yield kubectl
    cluster.stop()


@dataclasses.dataclass(frozen=True)
class Case:
    args: list[str]
    code: int
    stdout: str = ""
    stderr: str = ""
    stdin: str | None = None


CASES = {
    "stdout and stderr apart": Case(
        ["shell", "--", "sh", "-c", "echo out; echo err >&2"], 0, "out\n", "err\n"),
    "environment, working directory and host name": Case(
        ["shell", "--", "sh", "-c", 'echo "$GREETING $PWD $(hostname)"'], 0,
        "hello /tmp shell\n"),
    "stdin": Case(["-i", "shell", "--", "cat"], 0, "piped\n", stdin="piped\n"),
    "exit code": Case(["shell", "--", "sh", "-c", "exit 7"], 7,
                      stderr="command terminated with exit code 7\n"),
    "missing command": Case(["shell", "--", "no-such-command"], 127,
                            stderr="command terminated with exit code 127\n"),
    "virtual pod": Case(["ghost", "--", "true"], 1,
                        stderr='pod "ghost" runs in the virtual runtime'),
    "unknown container": Case(["shell", "-c", "nope", "--", "true"], 1,
                              stderr="container nope is not valid for pod shell"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_exec(kubectl: Kubectl, case: str) -> None:
    expected = CASES[case]
    result = kubectl.run("exec", *expected.args, input=expected.stdin, check=False)
    assert result.returncode == expected.code, result.stderr
    assert result.stdout == expected.stdout
    assert expected.stderr in result.stderr


def in_terminal(kubectl: Kubectl, *args: str, typed: str = "",
                ) -> subprocess.CompletedProcess[str]:
    """kubectl run inside `script`, which gives it a terminal (`-t` needs one); `typed` is
    what a user types into that terminal."""
    command = shlex.join([kubectl.binary, *args])
    return subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                          text=True, timeout=60, input=typed,
                          env={"KUBECONFIG": str(kubectl.kubeconfig),
                               "KUBECACHEDIR": str(kubectl.cache_dir),
                               "HOME": str(kubectl.cache_dir), "PATH": "/usr/bin:/bin"})


def test_exec_with_a_terminal(kubectl: Kubectl) -> None:
    result = in_terminal(kubectl, "exec", "-it", "shell", "--", "sh", "-c", "tty; exit 3")
    assert "/dev/pts/" in result.stdout
    assert "command terminated with exit code 3" in result.stdout
    assert result.returncode == 3


def test_cp_both_ways(kubectl: Kubectl, tmp_path: Path) -> None:
    """`kubectl cp` is tar over exec."""
    source = tmp_path / "in.txt"
    source.write_text("copied in\n")
    target = f"/tmp/tinykube-cp-{tmp_path.name}.txt"
    try:
        kubectl("cp", str(source), f"shell:{target}")
        assert kubectl("exec", "shell", "--", "cat", target) == "copied in\n"
        kubectl("cp", f"shell:{target}", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "copied in\n"
    finally:
        Path(target).unlink(missing_ok=True)  # process pods share the host's /tmp


def test_run_i_rm_prints_the_output_and_deletes_the_pod(kubectl: Kubectl) -> None:
    result = kubectl.run("run", "quick", "-i", "--rm", "--restart=Never", "--image=busybox",
                         "--", "sh", "-c", "echo quick output; hostname", check=False)
    assert result.returncode == 0, result.stderr
    assert "quick output\nquick\n" in result.stdout
    assert 'pod "quick" deleted' in result.stdout + result.stderr
    assert kubectl.run("get", "pod", "quick", check=False).returncode == 1


def test_run_it_rm_is_an_interactive_shell(kubectl: Kubectl) -> None:
    # `read` holds the shell until the terminal is attached and the line is typed.
    result = in_terminal(kubectl, "run", "sh-it", "-it", "--rm", "--restart=Never",
                         "--image=busybox", "--", "sh", "-c",
                         "read line; echo got-$line; hostname; exit 4",
                         typed="hello\n")
    output = result.stdout.replace("\r", "")
    assert "got-hello\nsh-it\n" in output
    assert result.returncode == 4
    assert kubectl.run("get", "pod", "sh-it", check=False).returncode == 1


def test_attach_follows_a_running_container(kubectl: Kubectl) -> None:
    kubectl("run", "ticker", "--image=busybox", "--", "sh", "-c",
            "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")
    kubectl("wait", "--for=condition=Ready", "pod/ticker", "--timeout=60s")
    watcher = kubectl.popen("attach", "ticker")
    assert watcher.stdout is not None
    lines = []
    try:
        while len(lines) < 3:
            ready, _, _ = select.select([watcher.stdout], [], [], 30)
            assert ready, "kubectl attach printed nothing for 30 s"
            lines.append(watcher.stdout.readline())
    finally:
        watcher.kill()
        watcher.wait()
        kubectl("delete", "pod", "ticker", "--grace-period=0", "--wait=false")
    assert [line.split()[0] for line in lines] == ["tick"] * 3


@pytest.mark.parametrize("headers", [
    {"Upgrade": "websocket", "Connection": "Upgrade"},  # no Sec-WebSocket-Key or version
    {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
     "Sec-WebSocket-Key": "not base64"},
], ids=["no-key", "bad-key"])
def test_bad_websocket_handshake_gets_a_status(kubectl: Kubectl, headers: dict[str, str]) -> None:
    """Refused before the kubelet is dialled (which would start the command) with a Status,
    not aiohttp's plain-text 400."""
    url = kubectl("config", "view", "-o", "jsonpath={.clusters[0].cluster.server}")
    conn = Server(url, kubectl.kubeconfig.parent).connect()
    try:
        reply = conn.request("GET", "/api/v1/namespaces/default/pods/shell/exec?command=true"
                             "&stdout=1", headers=headers)
    finally:
        conn.close()
    assert (reply.status, reply.headers["Content-Type"]) == (400, "application/json")
    assert reply.json()["message"].startswith("invalid WebSocket upgrade request: ")
