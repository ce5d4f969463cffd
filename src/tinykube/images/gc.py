"""Image garbage collection, as the kubelet's image GC manager runs it.

Every `PERIOD` (5 minutes, the kubelet's ImageGCPeriod) the node agent compares the cache's
usage with its capacity. The kubelet's thresholds are percentages of the image filesystem;
here the capacity is `--image-cache-size` (bytes the cache may take: its blobs and unpacked
layers as `Store.usage` counts them) or, without that flag, the filesystem of the data
directory (its size and used bytes, as the kubelet reads them), so the kubelet's defaults mean
what they mean there:

- usage >= `--image-gc-high-threshold` percent (85) of the capacity starts a collection, which
  tries to free `usage - capacity * low / 100` bytes (`--image-gc-low-threshold`, 80);
- candidates (`candidates`, a pure function) are the images no container uses (a container's
  root filesystem names its image; images of this agent's pods count too), pulled at least
  `--minimum-image-ttl-duration` (2 minutes) ago, least recently used first (ties: oldest pull,
  then digest); they are removed one at a time until enough is freed (a blob or layer goes when
  no remaining image references it, so the bytes freed are measured, not summed);
- freeing less than wanted is a `FreeDiskSpaceFailed` Warning event on the Node with the
  kubelet's text, and the collection fails; a failure that follows a failure is also an
  `ImageGCFailed` event (the kubelet's first failure is only logged), and each collection that
  removed something logs the bytes freed and refreshes the Node's `status.images`.

Pulls commit blobs and layers before their image is recorded, so a collection waits for no
pull but skips its turn while one is in flight in this process (`Store.pulling`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Iterable

from tinykube.images.store import Image, Store

log = logging.getLogger(__name__)
PERIOD = 300.0
Event = Callable[[str, str, str], Awaitable[None]]  # (type, reason, message)


@dataclasses.dataclass(frozen=True)
class Policy:
    high: int = 85  # percent of the capacity that starts a collection
    low: int = 80  # percent it frees down to
    min_age: float = 120.0  # seconds since the pull before an image may go
    capacity: int | None = None  # bytes; None: the data directory's filesystem

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high <= 100:
            raise ValueError(f"image GC thresholds must be 0 <= low ({self.low}) <= high "
                             f"({self.high}) <= 100")


class GCError(Exception):
    """A collection freed less than it had to."""


def amount_to_free(usage: int, capacity: int, policy: Policy) -> int:
    """Bytes a collection must free (0: usage is below the high threshold)."""
    if capacity <= 0 or usage * 100 < policy.high * capacity:
        return 0
    return max(0, usage - capacity * policy.low // 100)


def candidates(images: Iterable[Image], in_use: Collection[str], *, now: float,
               min_age: float) -> list[Image]:
    """The images a collection may remove, in the order it removes them."""
    free = [i for i in images if i.digest not in in_use and now - i.pulled >= min_age]
    return sorted(free, key=lambda i: (i.last_used, i.pulled, i.digest))


class ImageGC:
    """The periodic collection of one node agent over the (shared) `store`."""

    def __init__(self, store: Store, policy: Policy, *, clock: Callable[[], float],
                 in_use: Callable[[], Collection[str]], event: Event,
                 on_change: Callable[[], None]) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.in_use = in_use
        self.event = event
        self.on_change = on_change
        self.failed = False  # the last collection failed

    def __repr__(self) -> str:
        return f"ImageGC({self.store.root}, {self.policy})"

    def _usage(self) -> tuple[int, int]:
        """(usage, capacity) as the policy measures them."""
        if self.policy.capacity is not None:
            return self.store.usage(), self.policy.capacity
        st = os.statvfs(self.store.root)
        total = st.f_blocks * st.f_frsize
        return total - st.f_bavail * st.f_frsize, total

    async def collect(self) -> int:
        """One collection; the bytes freed. GCError when it freed less than it had to."""
        if self.store.pulling:
            return 0
        usage, capacity = self._usage()
        amount = amount_to_free(usage, capacity, self.policy)
        if amount == 0:
            return 0
        log.info("image cache usage %d of %d bytes is over the high threshold (%d%%): trying "
                 "to free %d bytes down to the low threshold (%d%%)", usage, capacity,
                 self.policy.high, amount, self.policy.low)
        chosen = candidates(self.store.images.values(), {*self.in_use(),
                                                         *self.store.used_by_containers()},
                            now=self.clock(), min_age=self.policy.min_age)
        removed, freed = await asyncio.to_thread(self.store.free, chosen, amount)
        if removed:
            log.info("image garbage collection removed %s: %d bytes freed",
                     ", ".join(i.names[0] if i.names else i.digest for i in removed), freed)
            self.on_change()
        if freed < amount:
            message = (f"Failed to garbage collect required amount of images. Attempted to "
                       f"free {amount} bytes, but only found {freed} bytes eligible to free.")
            await self.event("Warning", "FreeDiskSpaceFailed", message)
            raise GCError(message)
        return freed

    async def run_once(self) -> None:
        """A collection as the kubelet's loop runs it: failures logged, repeated ones an
        `ImageGCFailed` event."""
        try:
            await self.collect()
        except (GCError, OSError) as exc:
            if self.failed:
                log.error("image garbage collection failed multiple times in a row: %s", exc)
                await self.event("Warning", "ImageGCFailed", str(exc))
            else:
                log.warning("image garbage collection failed once: %s", exc)
            self.failed = True
            return
        self.failed = False

    async def run_forever(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                          period: float = PERIOD) -> None:
        while True:
            await sleep(period)
            await self.run_once()
