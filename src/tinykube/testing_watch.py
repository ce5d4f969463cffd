"""Checks of a watch stream against the writes that were acknowledged (fault tests).

etcd's robustness tests check these properties of every watch; here they are checked for one
watcher of one resource, from the resourceVersion it started at:

- ordered: resourceVersions never go down along the stream;
- unique: no (object, resourceVersion) is delivered twice;
- no gap: every acknowledged write after the start is delivered (a write whose client got no
  answer may or may not have happened: it is allowed either way);
- final: each object's last event agrees with the final state (its resourceVersion, or
  absence after a DELETED).

`check` returns what is wrong, as sentences; an empty list means the stream is right.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True)
class Delivered:
    type: str  # ADDED, MODIFIED, DELETED
    name: str
    rv: int


def check(events: Iterable[Delivered], acknowledged: Iterable[tuple[str, int]],
          final: dict[str, int], start: int = 0) -> list[str]:
    """Problems of `events` (as received) given the acknowledged (name, rv) writes and the
    final state (name -> rv) of the watched objects."""
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    last: dict[str, Delivered] = {}
    previous = start
    for event in events:
        if event.rv < previous:
            problems.append(f"out of order: {event.name} at {event.rv} after {previous}")
        if (event.name, event.rv) in seen:
            problems.append(f"duplicate: {event.name} at {event.rv}")
        seen.add((event.name, event.rv))
        previous = max(previous, event.rv)
        last[event.name] = event
    for name, rv in acknowledged:
        if rv > start and (name, rv) not in seen:
            problems.append(f"gap: {name} at {rv} was acknowledged, never delivered")
    for name, event in last.items():
        if event.type == "DELETED" and name in final:
            problems.append(f"final: {name} was deleted at {event.rv}, exists at "
                            f"{final[name]}")
        elif event.type != "DELETED" and final.get(name) != event.rv:
            problems.append(f"final: {name} last delivered at {event.rv}, stored at "
                            f"{final.get(name)}")
    for name, rv in final.items():
        if rv > start and name not in last:
            problems.append(f"final: {name} (at {rv}) was never delivered")
    return problems
