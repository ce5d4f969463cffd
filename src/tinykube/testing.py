"""Helpers for tests and benchmarks that start tinykube processes.

`until` waits (polling, with a deadline) for something another process does, where there is no
event to wait on.

`free_port` picks a port for a listener that is named on a command line (such as `--dns-listen`).
It draws from below the kernel's ephemeral range on purpose: a port taken from that range and
released at once is exactly what the kernel hands out next to any `port 0` bind, and `tinykube up`
binds several such sockets (API server, node log endpoints) before its DNS listener, so a port
from the ephemeral range could be taken between the check and the bind.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

_LOW, _HIGH = 20000, 32000  # below Linux's default ephemeral range (32768-60999)


def _bindable(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", *, udp: bool = True) -> int:
    """A port free on `host` for TCP (and UDP, unless `udp=False`) right now."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(_LOW, _HIGH)
        if _bindable(host, port, socket.SOCK_STREAM) and (
                not udp or _bindable(host, port, socket.SOCK_DGRAM)):
            return port
    raise RuntimeError(f"no free port in {_LOW}-{_HIGH} on {host}")


async def until(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    """Return once `condition()` holds; fail with "timed out waiting for <what>" after
    `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
