"""`netns.SocketsIn`: sockets made on a thread that stays in another network namespace (root).

The other namespace is a child's (`unshare --net sleep`), not a named one, so nothing appears
in `ip netns list` while the test runs. A listener on the host's 127.0.0.1 is out of reach of
a socket in a fresh namespace (its own `lo`, down): that tells where a socket is.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tinykube.network.netns import SocketsIn

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")]


@pytest.fixture
def other_netns() -> Iterator[str]:
    child = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    path = f"/proc/{child.pid}/ns/net"
    deadline = time.monotonic() + 5
    try:
        while os.readlink(path) == os.readlink("/proc/self/ns/net"):  # not unshared yet
            assert time.monotonic() < deadline, "unshare --net did not take effect"
            time.sleep(0.005)
        yield path
    finally:
        child.kill()
        child.wait()


def test_sockets_are_made_in_the_namespace(other_netns: str) -> None:
    sockets = SocketsIn(other_netns)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        try:
            for _ in range(3):  # every socket, not only the first
                with sockets(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.settimeout(2)
                    code = sock.connect_ex(listener.getsockname())
                assert code in (errno.ENETUNREACH, errno.ECONNREFUSED), os.strerror(code)
            with socket.socket() as here:  # the caller's thread never left the host's
                here.settimeout(2)
                assert here.connect_ex(listener.getsockname()) == 0
        finally:
            sockets.close()


def test_a_namespace_that_cannot_be_entered_is_an_oserror() -> None:
    sockets = SocketsIn("/run/netns/tinykube-test-no-such-namespace")
    try:
        with pytest.raises(OSError, match="cannot enter the network namespace"):
            sockets(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        sockets.close()
