"""Linearizability of a single-key register history (fault tests), a Wing-Gong search.

A history is the operations several clients did on one key, each with the times it was called
and returned (one clock) and what it returned. It is linearizable when the operations can be
put in one order that respects real time (an operation that returned before another was called
comes first) and in which each operation's result is what a register would give.

The search (Wing & Gong 1993, with the memoization Lowe 2017 and porcupine add) builds that order
one operation at a time: a candidate is an operation not yet placed that was called before every
unplaced operation returned; it is placed if the register's step accepts its result; on a dead
end the search backs up. A (placed set, register value) pair already explored is not explored
again, which keeps a few hundred operations of 3-5 clients small.

An operation whose client got no answer (a timeout, a dropped connection) has `output=None`: it
returns at infinity, its result is unconstrained, and it may or may not have taken effect.
Once every answered operation is placed the unanswered ones can go last, so they never need
placing.

The register is a ConfigMap's value; writes put unique values, so a value names the version it
was written at, and CAS (an update with the resourceVersion read before) compares values:

- `get`: `output` is the value read (`ABSENT` if there was none);
- `put` of `arg`: `output` is `OK`;
- `cas` of `expect` -> `arg`: `output` is `OK` (it was `expect`, now `arg`) or `CONFLICT` (409).

`check` returns what is wrong, as sentences; an empty list means the history is linearizable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

ABSENT = "<absent>"
OK = "ok"
CONFLICT = "conflict"


@dataclasses.dataclass(frozen=True)
class Operation:
    client: int
    call: float
    ret: float  # math.inf when the client got no answer
    kind: str  # get, put, cas
    arg: str | None = None  # the value written
    expect: str | None = None  # cas: the value it must replace
    output: str | None = None  # None when the client got no answer


def step(state: str, op: Operation) -> str | None:
    """The register's value after `op` from `state`, or None if `op`'s result is impossible."""
    unknown = op.output is None
    if op.kind == "get":
        return state if unknown or op.output == state else None
    if op.kind == "put":
        assert op.arg is not None
        return op.arg if unknown or op.output == OK else None
    if op.kind == "cas":
        assert op.arg is not None
        matches = state == op.expect
        if unknown:
            return op.arg if matches else state
        if op.output == OK:
            return op.arg if matches else None
        return state if op.output == CONFLICT and not matches else None
    raise ValueError(f"unknown operation kind {op.kind!r}")


def check(history: Sequence[Operation], initial: str = ABSENT,
          budget: int = 1_000_000) -> list[str]:
    """Problems of `history` (empty: linearizable); gives up after `budget` search steps."""
    ops = sorted(history, key=lambda o: o.call)
    answered = sum(1 << i for i, o in enumerate(ops) if o.ret != math.inf)
    seen: set[tuple[int, str]] = set()
    stack: list[tuple[int, str]] = [(0, initial)]
    deepest = 0  # the most answered operations placed, and the placed set
    deepest_placed = 0
    steps = 0
    while stack:
        placed, state = stack.pop()
        if placed & answered == answered:
            return []
        if (placed, state) in seen:
            continue
        seen.add((placed, state))
        steps += 1
        if steps > budget:
            return [f"undecided: no answer within {budget} search steps"]
        if (count := bin(placed & answered).count("1")) > deepest:
            deepest, deepest_placed = count, placed
        stack.extend(_successors(ops, placed, state))
    return [f"not linearizable: at most {deepest} of {bin(answered).count('1')} answered "
            f"operations can be ordered; next due: {_due(ops, answered & ~deepest_placed)}"]


def _successors(ops: Sequence[Operation], placed: int,
                state: str) -> list[tuple[int, str]]:
    """The (placed, state) pairs reachable by placing one more operation."""
    horizon = min((o.ret for i, o in enumerate(ops) if not placed >> i & 1), default=math.inf)
    found = []
    for i, op in enumerate(ops):
        if op.call > horizon:
            break
        if placed >> i & 1:
            continue
        after = step(state, op)
        if after is not None:
            found.append((placed | 1 << i, after))
    return found


def _due(ops: Sequence[Operation], unplaced: int) -> str:
    """The unplaced answered operation that returned first (the one no order could place)."""
    op = min((o for i, o in enumerate(ops) if unplaced >> i & 1), key=lambda o: o.ret)
    return (f"client {op.client} {op.kind}({op.expect or ''}->{op.arg or ''}) = {op.output} "
            f"[{op.call}, {op.ret}]")
