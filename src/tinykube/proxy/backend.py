"""The seam between the syncer (what to forward) and a forwarder (how to forward it).

The syncer calls three methods with the result of its diff; a backend never sees Services or
EndpointSlices, only listen keys and rules:

* `add(key, rule)`: start listening on `key`; raise `BindError` when the address cannot be bound
  (privileged port, address in use, address not local). The syncer records the failure and
  retries on later syncs; a backend must leave nothing behind after raising.
* `update(key, rule)`: new endpoints / affinity for an existing listener. Only new connections
  and flows see them; established ones are left alone.
* `remove(key)`: stop listening on `key`. Established connections may finish on their own.
* `close()`: stop everything, established connections included, and release every socket.

`FakeBackend` records the calls (for syncer tests) and can be told which keys fail to bind.
"""

from __future__ import annotations

import errno
import os
from typing import Protocol

from tinykube.proxy.model import ListenKey, ServicePortRule


class BindError(OSError):
    """A listener could not be bound; `.key` says which and `.errno`/`.strerror` why."""

    def __init__(self, key: ListenKey, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason or os.strerror(code))
        self.key = key

    def __str__(self) -> str:
        ip, port, protocol = self.key
        return f"cannot listen on {ip}:{port}/{protocol}: {self.strerror}" \
            f"{_HINTS.get(self.errno or 0, '')}"


_HINTS = {
    errno.EACCES: " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EPERM: " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EMFILE: " (the process's open-file limit is reached: raise `ulimit -n`)",
    errno.ENFILE: " (the system's open-file limit is reached: see fs.file-max)",
}


class Backend(Protocol):
    async def add(self, key: ListenKey, rule: ServicePortRule) -> None: ...

    async def update(self, key: ListenKey, rule: ServicePortRule) -> None: ...

    async def remove(self, key: ListenKey) -> None: ...

    async def close(self) -> None: ...


class FakeBackend:
    """Keeps the listeners it was told about in `rules` and every call in `calls`."""

    def __init__(self, failing: dict[ListenKey, int] | None = None) -> None:
        self.failing = dict(failing or {})  # key -> errno raised by add()
        self.rules: dict[ListenKey, ServicePortRule] = {}
        self.calls: list[tuple[str, ListenKey]] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"FakeBackend(listeners={len(self.rules)}, calls={len(self.calls)})"

    async def add(self, key: ListenKey, rule: ServicePortRule) -> None:
        self.calls.append(("add", key))
        if key in self.failing:
            raise BindError(key, self.failing[key])
        assert key not in self.rules, f"add of an existing listener {key}"
        self.rules[key] = rule

    async def update(self, key: ListenKey, rule: ServicePortRule) -> None:
        self.calls.append(("update", key))
        assert key in self.rules, f"update of a missing listener {key}"
        self.rules[key] = rule

    async def remove(self, key: ListenKey) -> None:
        self.calls.append(("remove", key))
        assert key in self.rules, f"remove of a missing listener {key}"
        del self.rules[key]

    async def close(self) -> None:
        self.calls.append(("close", ("", 0, "")))
        self.rules.clear()
        self.closed = True
