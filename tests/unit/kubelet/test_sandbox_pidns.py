"""The helper's PID and IPC namespaces: the pod's init, what `ps` sees, exec joining them.

Real processes (the helper run as the node agent runs it), as root and in a user namespace of
this user's own; each case skips when the kernel refuses that mode's namespaces.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinykube.kubelet import sandbox

MODES = [
    pytest.param("root", marks=pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
                 id="root"),
    pytest.param("userns", id="userns"),
]


@pytest.fixture(params=MODES)
def box(request: pytest.FixtureRequest, tmp_path: Path) -> sandbox.Sandbox:
    mode = str(request.param)
    if not sandbox.detect_pidns(mode):
        pytest.skip(f"this kernel gives no PID namespace with a /proc in mode {mode}")
    return sandbox.Sandbox(mode, tmp_path / "pod", hostname="p", hosts="h\n", resolv=None,
                           pidns=True)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                          start_new_session=True)


def host_processes_with(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(proc.name)
            except OSError:
                continue
    return found


def test_ps_sees_only_the_container_under_its_init(box: sandbox.Sandbox) -> None:
    # the shell's own glob counts the PIDs (a pipeline's processes may or may not exist yet)
    result = run(box.wrap(["sh", "-c", "echo $$; set -- /proc/[0-9]*; echo $#; "
                           "cat /proc/1/cmdline | tr '\\0' ' '"]))
    assert result.returncode == 0, result.stderr
    pid, count, init = result.stdout.split("\n", 2)
    assert pid == "2"  # the command; PID 1 is the init
    assert count == "2"  # init and sh: nothing of the host's
    assert "sandbox.py" in init


@pytest.mark.parametrize(("script", "code"), [
    pytest.param("exit 7", 7, id="exit-code"),
    pytest.param("kill -TERM $$", -signal.SIGTERM, id="killed-by-a-signal"),
])
def test_the_helper_ends_as_the_command_ended(box: sandbox.Sandbox, script: str,
                                              code: int) -> None:
    assert run(box.wrap(["sh", "-c", script])).returncode == code


def test_a_daemon_that_left_the_session_ends_with_the_container(box: sandbox.Sandbox) -> None:
    marker = f"{os.getpid()}{len(box.hostname)}77"
    result = run(box.wrap(["sh", "-c", f"setsid sleep {marker} & sleep 0.2; exit 0"]))
    assert result.returncode == 0, result.stderr
    assert host_processes_with(f"sleep\0{marker}") == []


@pytest.fixture
def running(box: sandbox.Sandbox) -> Iterator[subprocess.Popen[bytes]]:
    """A container that made a SysV shared memory segment and waits."""
    proc = subprocess.Popen(box.wrap(["sh", "-c", "ipcmk -M 4096 >/dev/null; echo up; "
                                      "exec sleep 300"]),
                            stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_exec_joins_the_pid_and_ipc_namespaces(box: sandbox.Sandbox,
                                               running: subprocess.Popen[bytes]) -> None:
    joined = run(box.wrap(["sh", "-c", "ps -e -o pid=,args=; ipcs -m | grep -c 4096"],
                          join=running.pid))
    assert joined.returncode == 0, joined.stderr
    lines = [line.split(None, 1) for line in joined.stdout.strip().splitlines()]
    assert ["2", "sleep 300"] in lines  # the container's command, seen with its own pids
    assert lines[-1] == ["1"]  # and its shared memory segment
    assert int(max(pid for pid, *_ in lines[:-1])) < 10  # nothing of the host's


def test_another_container_does_not_see_the_segment(box: sandbox.Sandbox,
                                                    running: subprocess.Popen[bytes]) -> None:
    other = run(box.wrap(["sh", "-c", "ipcs -m | grep -c 4096 || true"]))
    assert other.stdout.strip() == "0"
    host = run(["sh", "-c", "ipcs -m | grep -c 4096 || true"])
    assert host.stdout.strip() == "0"
