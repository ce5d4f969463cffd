"""Choosing an endpoint for a new connection: round robin, optionally sticky per client IP.

One `EndpointPicker` per listener. `update()` swaps the endpoint list in place (the listener
keeps its picker, so the round-robin position and the affinity table survive an EndpointSlice
change); affinity entries whose endpoint is gone are dropped. With `sessionAffinity: ClientIP` a
client IP keeps its endpoint until it has been idle for `affinity_timeout` seconds, measured by
the injected `clock` (kube-proxy's userspace proxier keeps the same table, keyed by client IP,
refreshed on every use).

`exclude` lets the caller retry after a failed connect without picking the same endpoint again;
a sticky endpoint that is excluded is replaced, and the replacement becomes sticky.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from tinykube.proxy.model import Endpoint

Clock = Callable[[], float]
PRUNE_ABOVE = 4096  # affinity entries before expired ones are swept


@dataclass
class _Sticky:
    endpoint: Endpoint
    last_used: float


class EndpointPicker:
    def __init__(self, endpoints: Sequence[Endpoint] = (), affinity_timeout: float | None = None,
                 *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._endpoints: tuple[Endpoint, ...] = ()
        self._affinity_timeout: float | None = None
        self._next = 0
        self._sticky: dict[str, _Sticky] = {}
        self.update(endpoints, affinity_timeout)

    def __repr__(self) -> str:
        return (f"EndpointPicker(endpoints={len(self._endpoints)}, "
                f"affinity={self._affinity_timeout}, sticky={len(self._sticky)})")

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    def update(self, endpoints: Sequence[Endpoint], affinity_timeout: float | None) -> None:
        """New endpoints for new connections; stickiness to surviving endpoints is kept."""
        self._endpoints = tuple(endpoints)
        self._affinity_timeout = affinity_timeout
        if affinity_timeout is None:
            self._sticky.clear()
        else:
            alive = set(self._endpoints)
            self._sticky = {ip: s for ip, s in self._sticky.items() if s.endpoint in alive}

    def pick(self, client_ip: str, exclude: Collection[Endpoint] = ()) -> Endpoint | None:
        """The endpoint for a new connection from `client_ip`, or None if there is none."""
        if self._affinity_timeout is None:
            return self._round_robin(exclude)
        now = self._clock()
        sticky = self._sticky.get(client_ip)
        if sticky is not None and sticky.endpoint not in exclude \
                and now - sticky.last_used <= self._affinity_timeout:
            sticky.last_used = now
            return sticky.endpoint
        endpoint = self._round_robin(exclude)
        if endpoint is not None:
            self._remember(client_ip, endpoint, now)
        return endpoint

    def _round_robin(self, exclude: Collection[Endpoint]) -> Endpoint | None:
        count = len(self._endpoints)
        for _ in range(count):
            endpoint = self._endpoints[self._next % count]
            self._next = (self._next + 1) % count
            if endpoint not in exclude:
                return endpoint
        return None

    def _remember(self, client_ip: str, endpoint: Endpoint, now: float) -> None:
        if len(self._sticky) >= PRUNE_ABOVE:
            timeout = self._affinity_timeout or 0.0
            self._sticky = {ip: s for ip, s in self._sticky.items()
                            if now - s.last_used <= timeout}
        self._sticky[client_ip] = _Sticky(endpoint, now)
