"""Start `tinykube up` as a background process and wait until it is ready.

The process writes everything it prints to a log file (`up.log` in its data directory), so no
pipe ties it to the caller: the caller may exit (`tinykube up --detach`) or keep it for a test
session (the pytest plugin) without ever draining output. Readiness is the line `tinykube up`
prints last, `export KUBECONFIG=...`, which it prints only once every component runs; the lines
before it give the API server's URL and the cluster DNS address. The log is read from where it
was last read, with a deadline; a process that exits before it is ready is reported with the
log's tail.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

LOG_FILE = "up.log"
READY_PREFIX = "export KUBECONFIG="
DNS_PREFIX = "cluster DNS listening on "
URL_MARKER = "ready at "


@dataclasses.dataclass
class Started:
    """A `tinykube up` that said it is ready."""

    pid: int
    data_dir: Path
    kubeconfig: Path
    api_url: str
    dns_address: tuple[str, int] | None
    log: Path


class NotReady(RuntimeError):
    """`tinykube up` exited, or did not become ready in time."""


def parse_ready(lines: list[str]) -> tuple[Path, str, tuple[str, int] | None] | None:
    """(kubeconfig, API URL, DNS address) once the output holds the ready line, else None."""
    url, dns = "", None
    for line in lines:
        if line.startswith(DNS_PREFIX):
            host, _, port = line.split()[4].rpartition(":")
            dns = (host, int(port))
        elif URL_MARKER in line and not url:
            url = line.split(URL_MARKER, 1)[1].split()[0]
        elif line.startswith(READY_PREFIX):
            return Path(line.strip().split("=", 1)[1]), url, dns
    return None


def start(data_dir: Path, args: list[str], *, timeout: float = 60,
          new_session: bool = False) -> Started:
    """Run `tinykube up --data-dir DATA_DIR ARGS...` with its output in DATA_DIR/up.log; return
    once it is ready. `new_session` detaches it from the caller's terminal and process group."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = data_dir / LOG_FILE
    cmd = [sys.executable, "-m", "tinykube", "up", "--data-dir", str(data_dir), *args]
    with open(log, "ab") as out:
        offset = out.tell()
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=new_session)
    deadline = time.monotonic() + timeout
    while True:
        lines = read_from(log, offset)
        ready = parse_ready(lines)
        if ready is not None:
            return Started(process.pid, data_dir, *ready, log)
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                stop_pid(process.pid, timeout=5)
            tail = "\n".join(lines[-30:])
            raise NotReady(f"tinykube up did not become ready (exit {process.returncode}):\n"
                           f"{tail}")
        time.sleep(0.02)


def read_from(log: Path, offset: int) -> list[str]:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace").splitlines()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def stop_pid(pid: int, timeout: float = 30) -> bool:
    """SIGTERM `pid` and wait (polling) until it is gone; SIGKILL after `timeout` s. True if it
    stopped on SIGTERM."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid):
            return True
        time.sleep(0.02)
    with_kill = True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        with_kill = False
    for _ in range(500):
        _reap(pid)
        if not alive(pid):
            break
        time.sleep(0.01)
    return not with_kill


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)


class AdminAPI:
    """Just enough of a client for a few JSON requests with a kubeconfig's admin token
    (the pytest plugin's namespaces, `tinykube status`'s counts)."""

    def __init__(self, server: str, token: str, context: ssl.SSLContext | None) -> None:
        self.server, self.token, self.context = server, token, context

    @classmethod
    def from_kubeconfig(cls, path: Path) -> AdminAPI:
        import yaml

        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        context = None
        if cluster["server"].startswith("https:"):
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            context = ssl.create_default_context(cadata=ca)
        return cls(cluster["server"], user["token"], context)

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json", timeout: float = 30
                ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type,
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
