"""Sockets of the host's network namespace, for a process that lives in another one.

Rootless `--network netns` runs the node agents, DNS and proxy in a network namespace of a
user namespace (`network.userns`), from which the host's namespace cannot be entered (setns(2)
into it needs CAP_SYS_ADMIN in the host's user namespace). Yet a few of their sockets must be
the host's: the kubelet endpoints the API server connects to, the NodePort relay's listeners on
`127.0.0.1:<nodePort>`, and the API relay's connections to the API server. A socket keeps the
namespace it was made in (bind, listen, connect and accept all happen there), so `tinykube up`,
which stays in the host's namespace, makes them: `serve` answers each request on one end of a
unix socket pair with a new socket (family and type as asked) passed back as a file descriptor
(SCM_RIGHTS); `HostSockets` on the other end is a `(family, kind) -> socket` factory, the
signature `netns.SocketsIn` has. Nothing else crosses: the caller binds, listens or connects
the socket itself. Requests are serialized by a lock (each is a few microseconds).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading

from tinykube.network import netns

log = logging.getLogger(__name__)
REQUEST = struct.Struct("!ii")  # family, kind


def pair() -> tuple[socket.socket, socket.socket]:
    """(the server's end, the child's end): the child's is inheritable."""
    server, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child.set_inheritable(True)
    return server, child


def serve(end: socket.socket) -> threading.Thread:
    """Answer requests on `end` (in a daemon thread) until the other end is closed."""
    def run() -> None:
        with end:
            while request := end.recv(REQUEST.size):
                family, kind = REQUEST.unpack(request)
                try:
                    made = socket.socket(family, kind)
                except OSError as error:
                    end.sendmsg([str(error).encode() or b"?"])
                    continue
                with made:
                    socket.send_fds(end, [b"k"], [made.fileno()])
    thread = threading.Thread(target=run, name="host sockets", daemon=True)
    thread.start()
    return thread


class HostSockets:
    """Makes sockets in the host's namespace through `serve` on the other end of `fd`."""

    def __init__(self, fd: int) -> None:
        self._end = socket.socket(fileno=fd)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HostSockets(fd={self._end.fileno()})"

    def __call__(self, family: int, kind: int) -> socket.socket:
        with self._lock:
            self._end.sendall(REQUEST.pack(family, kind))
            message, fds, _flags, _address = socket.recv_fds(self._end, 1024, 1)
        if not fds:
            raise OSError(f"the host could not make a socket: {message.decode(errors='replace')}"
                          if message else "the host's socket maker is gone")
        return socket.socket(fileno=fds[0])

    def bound(self, family: int, kind: int, address: tuple[str, int]) -> socket.socket:
        """A host socket bound at `address` (and for TCP listening), non-blocking."""
        return netns.bind_serving(self(family, kind), kind, address)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._end.close()
