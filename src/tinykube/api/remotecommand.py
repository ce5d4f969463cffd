"""The remote command protocol: how exec streams travel over a WebSocket.

kubectl (1.30 and later) streams `kubectl exec` over a WebSocket whose subprotocol is
`v5.channel.k8s.io` (or `v4.channel.k8s.io`). Every message starts with one byte naming the
stream, then the data; a TEXT message counts as its UTF-8 bytes (the official Python client
sends `write_stdin(str)` so), as in upstream's `wsstream`:

    0 stdin (client -> server)      3 error: a `Status` when the command has ended
    1 stdout                        4 resize: {"Width": w, "Height": h} (client -> server)
    2 stderr                      255 close (v5): the next byte names a stream the client closed

The session ends with a `Status` on stream 3: `Success`, or `NonZeroExitCode` with the exit code
in `details.causes` (kubectl exits with that code), or another failure (the command could not
start). The API server relays these messages between kubectl and the kubelet endpoint; the
kubelet (`kubelet.streams`) produces them. Everything here is pure.
"""

from __future__ import annotations

from typing import Any

import orjson

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def frame(stream: int, data: bytes = b"") -> bytes:
    return bytes((stream,)) + data


def parse(message: bytes) -> tuple[int, bytes]:
    """(stream, data) of a message; an empty message is stream -1 (nothing)."""
    return (message[0], message[1:]) if message else (-1, b"")


def exit_status(code: int) -> dict[str, Any]:
    """The `Status` kubelet sends on the error stream when the command ended with `code`."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure(message: str) -> dict[str, Any]:
    """The `Status` for a command that could not run at all."""
    return {"metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500}


def window_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a resize message, or None when it is not one."""
    try:  # orjson: nesting is bounded, where json.loads of a hostile message recurses away
        size = orjson.loads(data)
        return int(size["Height"]), int(size["Width"])
    except (ValueError, KeyError, TypeError):
        return None
