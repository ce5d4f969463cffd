"""When a stopped container is started again: restart policy and CrashLoopBackOff (pure).

`should_restart` is the pod's `restartPolicy` applied to one exit code. `CrashBackoff` keeps the
kubelet's per-container back-off: the first restart is immediate and arms a 10 s back-off; a
container that stops again before its back-off ran out waits for the rest of it, and every
restart doubles the back-off up to 300 s. A container that has not been restarted for twice
the maximum (10 minutes) starts over at 10 s. Time comes from a `Clock`, so tests drive it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Protocol

INITIAL_BACKOFF = 10.0
MAX_BACKOFF = 300.0


class Clock(Protocol):
    """Monotonic seconds and a way to wait for them."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The event loop's clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def should_restart(policy: str, exit_code: int) -> bool:
    """Whether `restartPolicy` restarts a container that exited with `exit_code`."""
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


@dataclasses.dataclass
class _Entry:
    backoff: float
    last_restart: float


class CrashBackoff:
    """Per-container restart back-off keyed by a stable container key (pod uid + name)."""

    def __init__(self, initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def __repr__(self) -> str:
        return f"CrashBackoff({self.initial}..{self.maximum}s, keys={len(self._entries)})"

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and now - entry.last_restart > 2 * self.maximum:
            del self._entries[key]
            return None
        return entry

    def remaining(self, key: str, now: float) -> float:
        """Seconds to wait before the container may be started again (0 = at once)."""
        entry = self._live(key, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.last_restart + entry.backoff - now)

    def current(self, key: str, now: float) -> float:
        """The back-off that the next stop will be held to (for messages)."""
        entry = self._live(key, now)
        return entry.backoff if entry is not None else 0.0

    def restarted(self, key: str, now: float) -> None:
        """Record a restart: arm the initial back-off, or double the armed one."""
        entry = self._live(key, now)
        if entry is None:
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.backoff = min(entry.backoff * 2, self.maximum)
            entry.last_restart = now

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
