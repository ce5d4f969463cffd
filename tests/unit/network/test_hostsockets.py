"""Sockets made by another process and passed back (`network.hostsockets`), and what the
rootless netns mode says is missing (`network.userns.missing`)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tinykube.network import hostsockets, userns


def test_a_socket_made_on_the_other_end_binds_listens_and_accepts() -> None:
    server, child = hostsockets.pair()
    thread = hostsockets.serve(server)
    sockets = hostsockets.HostSockets(os.dup(child.fileno()))
    child.close()
    try:
        listener = sockets.bound(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0))
        outgoing = sockets(socket.AF_INET, socket.SOCK_STREAM)
        with listener, outgoing:
            listener.setblocking(True)
            outgoing.connect(listener.getsockname())
            accepted, _ = listener.accept()
            with accepted:
                outgoing.sendall(b"ping")
                assert accepted.recv(4) == b"ping"
        with pytest.raises(OSError, match="could not make a socket"):
            sockets(4321, socket.SOCK_STREAM)  # an unknown family: the error, not a hang
    finally:
        sockets.close()
    thread.join(5)
    assert not thread.is_alive()  # the server ends with its peer
    with pytest.raises(OSError):
        sockets(socket.AF_INET, socket.SOCK_STREAM)


@pytest.mark.parametrize(("files", "words"), [
    pytest.param({"/proc/sys/user/max_user_namespaces": "0"},
                 "user.max_user_namespaces is 0", id="user-namespaces-off"),
    pytest.param({"/proc/sys/kernel/unprivileged_userns_clone": "0"},
                 "kernel.unprivileged_userns_clone is 0", id="debian-switch-off"),
    pytest.param({"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"},
                 "AppArmor refuses", id="apparmor"),
])
def test_what_is_missing_is_named(monkeypatch: pytest.MonkeyPatch, files: dict[str, str],
                                  words: str) -> None:
    monkeypatch.setattr(userns, "_read", files.get)
    missing = userns.missing()
    assert missing is not None and words in missing


def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(userns, "_read", lambda _path: None)
    monkeypatch.setattr(userns, "SBIN", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert userns.missing() == "`ip` is not installed: install the iproute2 package"


def test_tool_path_adds_the_sbin_directories_once() -> None:
    assert userns.tool_path("/usr/bin:/usr/sbin").split(":") == [
        "/usr/bin", "/usr/sbin", "/usr/local/sbin", "/sbin"]
