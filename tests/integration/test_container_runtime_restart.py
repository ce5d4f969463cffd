"""Containers outlive their node agent, as with containerd: the agent (`container_agent`, a
`ContainerRuntime` in a process of its own) is killed with SIGKILL and started again. A
container that exited with code 3 meanwhile reports 3, its reason and finishedAt; a running
one is the same process afterwards (same PID) and is followed again (its later output reaches
the log, its later exit is seen); restartCount goes on from where it was (the exited one is
restarted by its policy: lastState has the code). Containers with stdin or a terminal outlive
it too: the new agent's attach sessions write into the same stdin and read the same terminal,
and its stdinOnce close ends the container's stdin.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until
from tests.integration import oci_registry
from tests.integration.test_container_runtime import pytestmark as _marks
from tinykube.api.remotecommand import CLOSE, ERROR, STDIN, STDOUT, frame, parse
from tinykube.kubelet.cgroups import Cgroups

pytestmark = [m for m in _marks if m.name == "skipif"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("restart")
    layout = oci_registry.build_busybox(work, "1")
    with oci_registry.registry(work, work / "registry-data") as plain:
        oci_registry.push(layout, "1", f"{plain.host}/demo/busybox:1")
        yield f"{plain.host}/demo/busybox:1"


class Agent:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}"}
        with (self.directory / "agent.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.container_agent",
                 str(self.directory), str(self.directory / "pod.json")], env=env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def status(self) -> dict[str, Any]:
        """The pod status the running agent last wrote (empty before it wrote one)."""
        try:
            doc = json.loads((self.directory / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        if self.proc is None or doc["agent"] != self.proc.pid:
            return {}
        return doc["status"]  # type: ignore[no-any-return]

    def container(self, name: str) -> dict[str, Any]:
        for c in self.status().get("containerStatuses") or []:
            if c["name"] == name:
                return c  # type: ignore[no-any-return]
        return {}


def _runc_pid(directory: Path, cid: str) -> int:
    """The pid of the container's init once runc says it runs (`runc run` creates, then
    starts it)."""
    def state() -> dict[str, Any] | None:
        done = subprocess.run(["runc", "--root", str(directory / "node" / "runc"), "state",
                               cid], capture_output=True, text=True, check=False)
        doc = json.loads(done.stdout) if done.returncode == 0 else {}
        return doc if doc.get("status") == "running" else None
    return int(until(state, 30, f"runc container {cid} running")["pid"])


def _clean_up(directory: Path) -> None:
    """What a killed agent left: runc containers, root filesystem mounts, cgroups."""
    root = directory / "node" / "runc"
    for cid in subprocess.run(["runc", "--root", str(root), "list", "-q"],
                              capture_output=True, text=True, check=False).stdout.split():
        subprocess.run(["runc", "--root", str(root), "delete", "--force", cid],
                       capture_output=True, check=False)
    for mount in (directory / "images" / "containers").glob("*/rootfs"):
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)
    Cgroups("agent-" + directory.name[-8:]).clear()


def _cid(container: dict[str, Any]) -> str:
    return str(container["containerID"]).removeprefix("runc://")


def test_exit_codes_and_running_containers_survive_the_agent(image: str, tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    wait_then_exit = ("test -e /data/once || { touch /data/once; exit 1; }; "
                      "test -e /data/three && exec sleep 3600; "
                      "echo waiting; while [ ! -e /data/go ]; do sleep 0.05; done; "
                      "touch /data/three; exit 3")
    long_running = ("echo before; while [ ! -e /data/speak ]; do sleep 0.05; done; "
                    "echo after; while [ ! -e /data/stop ]; do sleep 0.05; done; exit 7")
    uid = str(uuid.uuid4())
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": uid},
           "spec": {"restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 1,
                    "volumes": [{"name": "d", "hostPath": {"path": str(data)}}],
                    "containers": [
                        {"name": "quitter", "image": image, "command": ["sh", "-c", wait_then_exit],
                         "volumeMounts": [{"name": "d", "mountPath": "/data"}]},
                        {"name": "stayer", "image": image, "command": ["sh", "-c", long_running],
                         "volumeMounts": [{"name": "d", "mountPath": "/data"}]}]}}
    (tmp_path / "pod.json").write_text(json.dumps(pod))
    agent = Agent(tmp_path)
    agent.start()
    try:
        # the quitter failed once (exit 1) and runs again: restartCount 1
        until(lambda: agent.container("quitter").get("restartCount") == 1
              and "running" in agent.container("quitter").get("state", {})
              and "running" in agent.container("stayer").get("state", {}), 60,
              "both containers running, the quitter restarted once")
        stayer_id = _cid(agent.container("stayer"))
        stayer_pid = _runc_pid(tmp_path, stayer_id)
        started = agent.container("stayer")["state"]["running"]["startedAt"]
        agent.kill()

        quitter_id = _cid(json.loads((tmp_path / "status.json").read_text())["status"]
                          ["containerStatuses"][0])
        exit_file = tmp_path / "node" / "containers" / uid / "shims" / quitter_id / "exit.json"
        (data / "go").touch()  # the quitter exits 3 while no agent is there
        until(exit_file.exists, 30, "the quitter's shim to record its exit")
        recorded = json.loads(exit_file.read_text())
        assert os.waitstatus_to_exitcode(recorded["status"]) == 3
        agent.start()
        # the new agent reports the exit code 3, then OnFailure restarts it (restartCount 2)
        until(lambda: agent.container("quitter").get("restartCount") == 2
              and "running" in agent.container("quitter").get("state", {}), 30,
              "the new agent to report the quitter's exit and restart it")
        ended = agent.container("quitter")["lastState"]["terminated"]
        assert (ended["exitCode"], ended["reason"]) == (3, "Error")
        assert ended["finishedAt"] == recorded["finishedAt"]  # when it exited, not "now"

        stayer = agent.container("stayer")
        assert "running" in stayer["state"], stayer
        assert stayer["state"]["running"]["startedAt"] == started
        assert (_cid(stayer), _runc_pid(tmp_path, stayer_id)) == (stayer_id, stayer_pid)
        assert stayer["restartCount"] == 0

        # the adopted container is followed: its output reaches the log, its exit is seen
        (data / "speak").touch()
        log = tmp_path / "node" / "containers" / uid / "logs" / "stayer" / "current.log"
        until(lambda: b" after\n" in log.read_bytes(), 30, "output after the restart")
        assert b" before\n" in log.read_bytes()
        # read while the stayer still runs: once it exits (7, OnFailure) the agent's 0.2-1 s
        # test back-off restarts it, as often as a loaded machine lets pass before we look
        events = [json.loads(line) for line in (tmp_path / "events.log").read_text().splitlines()]
        second = [(reason, message) for pid, reason, message in events
                  if pid == agent.proc.pid]  # type: ignore[union-attr]
        # the new agent started the quitter again (its policy), not the adopted stayer
        assert [m for r, m in second if r == "Started"] == ["Started container quitter"]
        (data / "stop").touch()

        def exited() -> dict[str, Any] | None:  # as it is, or as it was before a restart
            stayer = agent.container("stayer")
            return (stayer.get("state", {}).get("terminated")
                    or stayer.get("lastState", {}).get("terminated"))
        assert until(exited, 30, "the adopted container's exit")["exitCode"] == 7
    finally:
        agent.kill()
        _clean_up(tmp_path)


def test_pods_deleted_while_no_agent_ran_are_removed(image: str, tmp_path: Path) -> None:
    uid = str(uuid.uuid4())
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": uid},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": image,
                                    "command": ["sh", "-c", "while true; do sleep 1; done"]}]}}
    (tmp_path / "pod.json").write_text(json.dumps(pod))
    agent = Agent(tmp_path)
    agent.start()
    try:
        until(lambda: "running" in agent.container("c").get("state", {}), 60, "running")
        cid = _cid(agent.container("c"))
        pid = _runc_pid(tmp_path, cid)
        agent.kill()
        (tmp_path / "pod.json").write_text("null")  # the pod was deleted meanwhile
        agent.start()
        until(lambda: (tmp_path / "started").exists()
              and (tmp_path / "started").read_text() == str(agent.proc.pid), 30,  # type: ignore[union-attr]
              "the new agent's startup")
        until(lambda: not Path(f"/proc/{pid}").exists(), 30, "the container gone")
        runc = subprocess.run(["runc", "--root", str(tmp_path / "node" / "runc"), "list", "-q"],
                              capture_output=True, text=True, check=False).stdout.split()
        assert runc == []
        assert not (tmp_path / "node" / "containers" / uid).exists()
    finally:
        agent.kill()
        _clean_up(tmp_path)


class Attach:
    """One attach session through the agent's attach.sock (see `container_agent`)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conn.settimeout(30)
        self.conn.connect(str(directory / "attach.sock"))
        self.conn.sendall(name.encode() + b"\n")
        self.output = b""
        self.status: dict[str, Any] | None = None

    def send(self, stream: int, data: bytes) -> None:
        message = frame(stream, data)
        self.conn.sendall(len(message).to_bytes(4, "big") + message)

    def _receive(self) -> bool:
        size = self._exactly(4)
        if size is None:
            return False
        message = self._exactly(int.from_bytes(size, "big"))
        if message is None:
            return False
        stream, data = parse(message)
        if stream == STDOUT:
            self.output += data
        elif stream == ERROR:
            self.status = json.loads(data)
        return True

    def _exactly(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.conn.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def read_until(self, wanted: bytes) -> bytes:
        """The output so far once it holds `wanted` (the session's 30 s timeout bounds it)."""
        while wanted not in self.output:
            assert self._receive(), f"the session ended before {wanted!r}: {self.output!r}"
        return self.output

    def read_to_end(self) -> bytes:
        while self._receive():
            pass
        return self.output

    def close(self) -> None:
        self.conn.close()


def _attached(directory: Path, name: str) -> Attach:
    """A session once the agent serves the container (its worker may still be adopting)."""
    def session() -> Attach | None:
        attach = Attach(directory, name)
        attach.conn.settimeout(0.5)
        try:
            attach._receive()  # the replay, if anything was printed in this run
        except TimeoutError:
            pass
        except OSError:
            attach.close()
            return None
        if attach.output == b"" and attach.status is None and _ended(attach):
            return None
        attach.conn.settimeout(30)
        return attach
    return until(session, 30, f"an attach session to {name}")


def _ended(attach: Attach) -> bool:
    """Whether the agent closed the session at once (no such container yet)."""
    try:
        attach.conn.setblocking(False)
        ended = attach.conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        ended = False
    attach.conn.setblocking(True)
    if ended:
        attach.close()
    return ended


def test_stdin_and_terminals_survive_the_agent(image: str, tmp_path: Path) -> None:
    echo = 'echo ready; while read line; do [ "$line" = quit ] && exit 5; echo "got $line"; done'
    uid = str(uuid.uuid4())
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": uid},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "keeper", "image": image, "stdin": True,
                         "command": ["sh", "-c", echo]},
                        {"name": "once", "image": image, "stdin": True, "stdinOnce": True,
                         "command": ["sh", "-c", f"{echo}; echo eof; exit 4"]},
                        {"name": "first", "image": image, "stdin": True, "stdinOnce": True,
                         "command": ["sh", "-c", f"{echo}; echo eof; exit 4"]},
                        {"name": "term", "image": image, "stdin": True, "tty": True,
                         "command": ["sh", "-c", "tty; read line; echo \"term $line\"; exit 6"]}]}}
    (tmp_path / "pod.json").write_text(json.dumps(pod))
    agent = Agent(tmp_path)
    agent.start()
    try:
        until(lambda: all("running" in agent.container(name).get("state", {})
                          for name in ("keeper", "once", "first", "term")), 60,
              "the four containers running")
        pids = {name: _runc_pid(tmp_path, _cid(agent.container(name)))
                for name in ("keeper", "once", "term")}
        keeper = _attached(tmp_path, "keeper")
        keeper.send(STDIN, b"zero\n")
        assert b"got zero" in keeper.read_until(b"got zero")
        keeper.close()
        first = _attached(tmp_path, "first")  # stdinOnce through the shim that holds it
        first.send(STDIN, b"x\n")
        first.read_until(b"got x")
        first.send(CLOSE, bytes((STDIN,)))
        assert b"eof" in first.read_to_end()
        until(lambda: agent.container("first").get("state", {}).get("terminated"), 30,
              "the first stdinOnce container's end")
        agent.kill()

        agent.start()
        until(lambda: all("running" in agent.container(name).get("state", {})
                          for name in pids), 30, "the new agent to adopt the three")
        assert {name: _runc_pid(tmp_path, _cid(agent.container(name))) for name in pids} == pids
        keeper = _attached(tmp_path, "keeper")  # the same stdin: nothing ended it meanwhile
        keeper.send(STDIN, b"one\n")
        keeper.read_until(b"got one")
        keeper.send(STDIN, b"quit\n")
        keeper.read_to_end()
        once = _attached(tmp_path, "once")
        once.send(STDIN, b"y\n")
        once.read_until(b"got y")
        once.send(CLOSE, bytes((STDIN,)))  # the new agent's close is the last: stdin ends
        assert b"eof" in once.read_to_end()
        term = _attached(tmp_path, "term")
        term.send(STDIN, b"hello\r")
        assert b"term hello" in term.read_to_end()
        log = tmp_path / "node" / "containers" / uid / "logs" / "term" / "current.log"
        assert b" /dev/pts/0" in log.read_bytes()  # runc's terminal in the container

        def codes() -> dict[str, int] | None:
            ended = {name: agent.container(name).get("state", {}).get("terminated")
                     for name in ("keeper", "once", "term")}
            return {n: t["exitCode"] for n, t in ended.items() if t} \
                if all(ended.values()) else None
        assert until(codes, 30, "the adopted containers' ends") == {
            "keeper": 5, "once": 4, "term": 6}
    finally:
        agent.kill()
        _clean_up(tmp_path)
