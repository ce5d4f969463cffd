"""How many listening sockets the userspace proxy may open, and which Service ports it leaves out.

The same bounds serve the host's NodePort relay of `--network netns` (`noderelay`), which is
the userspace backend listening on 127.0.0.1; `Limits.owner` names which one a message is about.

The userspace backend holds a socket per listen address (and two per proxied connection, one per
UDP flow) in a process that, under `tinykube up`, also runs the node agents and their pods' pipes,
the cluster DNS and its TCP clients, and the connections to the API server. Every one of those
needs a file descriptor under the same `RLIMIT_NOFILE`; a Service with thousands of ports must not
take them all (kube's validation has no limit on a Service's ports, only the object size bounds
them). So the proxy takes at most:

- `per_service` listen addresses (256) for one Service: more ports than any ordinary Service has,
  even as NodePorts (two addresses a port);
- `total` listening sockets in all: the soft `RLIMIT_NOFILE` less a reserve of a quarter of it,
  at least `RESERVE` (512), kept for everything else (`for_open_files`).

`limit(desired, applied, limits)` is pure. The listeners already applied are kept first, so a new
Service never takes sockets from running ones; the others are taken in Service and address order
until a bound is reached. Each Service that loses addresses gets a `Refusal` per bound, whose
message is the Warning Event recorded on it and the line logged.
"""

from __future__ import annotations

import resource
from collections.abc import Collection
from dataclasses import dataclass

from tinykube.proxy.model import ListenKey, ServicePortRule

PER_SERVICE = 256
RESERVE = 512  # descriptors at least kept for pods, DNS and connections
PER_SERVICE_REASON = "TooManyServicePorts"
TOTAL_REASON = "ProxyOpenFileLimit"
Rules = dict[ListenKey, ServicePortRule]


@dataclass(frozen=True)
class Limits:
    per_service: int = PER_SERVICE
    total: int | None = None  # listening sockets in all; None: no bound
    open_files: int | None = None  # the RLIMIT_NOFILE `total` was derived from, for messages
    owner: str = "the userspace proxy"  # who listens, for messages

    @classmethod
    def for_open_files(cls, open_files: int | None = None,
                       owner: str = "the userspace proxy") -> Limits:
        """Bounds for this process's soft RLIMIT_NOFILE (or `open_files`)."""
        if open_files is None:
            open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if open_files == resource.RLIM_INFINITY:
            return cls(owner=owner)
        return cls(total=max(0, open_files - reserve(open_files)), open_files=open_files,
                   owner=owner)


def reserve(open_files: int) -> int:
    return max(RESERVE, open_files // 4)


@dataclass(frozen=True)
class Refusal:
    """Addresses of one Service the proxy does not listen on, and why."""

    service: str  # namespace/name
    reason: str
    wanted: int  # listen addresses the Service asks for
    refused: tuple[ListenKey, ...]
    message: str


def limit(desired: Rules, applied: Collection[ListenKey],
          limits: Limits) -> tuple[Rules, list[Refusal]]:
    """The rules to apply within `limits`, and what each Service lost (see the docstring)."""
    by_service: dict[str, list[ListenKey]] = {}
    for key in sorted(desired, key=lambda k: (k not in applied, k)):
        by_service.setdefault(desired[key].service, []).append(key)
    over_service = {name: keys[limits.per_service:] for name, keys in by_service.items()}
    candidates = sorted((key for keys in by_service.values() for key in keys[:limits.per_service]),
                        key=lambda k: (k not in applied, desired[k].service, k))
    total = len(candidates) if limits.total is None else limits.total
    kept = {key: desired[key] for key in candidates[:total]}
    over_total: dict[str, list[ListenKey]] = {}
    for key in candidates[total:]:
        over_total.setdefault(desired[key].service, []).append(key)
    refusals = []
    for name in sorted(by_service):
        wanted = len(by_service[name])
        if over_service[name]:
            refusals.append(_refusal(name, PER_SERVICE_REASON, wanted, over_service[name],
                                     limits))
        if name in over_total:
            refusals.append(_refusal(name, TOTAL_REASON, wanted, over_total[name], limits))
    return kept, refusals


def _refusal(service: str, reason: str, wanted: int, refused: list[ListenKey],
             limits: Limits) -> Refusal:
    ip, port, protocol = min(refused)
    first = f"{ip}:{port}/{protocol}"
    left_out = (f"{len(refused)} of its {wanted} listen addresses are not proxied (the lowest: "
                f"{first})")
    if reason == PER_SERVICE_REASON:
        message = (f"{limits.owner} listens on at most {limits.per_service} addresses of "
                   f"one Service: {left_out}")
    else:
        message = (f"{limits.owner}'s listeners may use {limits.total} of the "
                   f"{limits.open_files} files this process may open (ulimit -n), the rest is "
                   f"kept for pods, DNS and connections, and they are all in use: {left_out}. "
                   "Raise the limit and restart the proxy")
    return Refusal(service, reason, wanted, tuple(sorted(refused)), message)
