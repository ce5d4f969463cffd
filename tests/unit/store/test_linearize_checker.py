"""The register linearizability checker accepts linearizable histories and finds the others."""

from __future__ import annotations

import math
import random

import pytest

from tinykube.testing_linearize import ABSENT, CONFLICT, OK, Operation, check, step

INF = math.inf


def op(client: int, call: float, ret: float, kind: str, arg: str | None = None,
       expect: str | None = None, output: str | None = None) -> Operation:
    return Operation(client, call, ret, kind, arg, expect, output)


LINEARIZABLE = {  # name -> history
    "sequential": [op(0, 0, 1, "put", "a", output=OK), op(1, 2, 3, "get", output="a")],
    "concurrent read sees either": [op(0, 0, 4, "put", "a", output=OK),
                                    op(1, 1, 2, "get", output=ABSENT),
                                    op(2, 1, 3, "get", output="a")],
    "cas wins, the other conflicts": [op(0, 0, 1, "put", "a", output=OK),
                                      op(1, 2, 5, "cas", "b", "a", OK),
                                      op(2, 2, 5, "cas", "c", "a", CONFLICT),
                                      op(0, 6, 7, "get", output="b")],
    "unanswered write took effect": [op(0, 0, INF, "put", "a"),
                                     op(1, 5, 6, "get", output="a")],
    "unanswered write never did": [op(0, 0, INF, "put", "a"),
                                   op(1, 5, 6, "get", output=ABSENT)],
    "reads order overlapping writes": [op(0, 0, 10, "put", "a", output=OK),
                                       op(1, 0, 10, "put", "b", output=OK),
                                       op(2, 1, 2, "get", output="b"),
                                       op(2, 3, 4, "get", output="a")],
}

NOT_LINEARIZABLE = {
    "stale read": [op(0, 0, 1, "put", "a", output=OK), op(0, 2, 3, "put", "b", output=OK),
                   op(1, 4, 5, "get", output="a")],
    "lost update: both cas win": [op(0, 0, 1, "put", "a", output=OK),
                                  op(1, 2, 5, "cas", "b", "a", OK),
                                  op(2, 2, 5, "cas", "c", "a", OK)],
    "read goes back": [op(0, 0, 10, "put", "a", output=OK), op(1, 0, 10, "put", "b", output=OK),
                       op(2, 1, 2, "get", output="a"), op(2, 3, 4, "get", output="b"),
                       op(2, 5, 6, "get", output="a")],
    "conflict without a rival": [op(0, 0, 1, "put", "a", output=OK),
                                 op(1, 2, 3, "cas", "b", "a", CONFLICT)],
    "read of a value never written": [op(0, 0, 1, "get", output="z")],
}


@pytest.mark.parametrize("history", LINEARIZABLE.values(), ids=LINEARIZABLE.keys())
def test_linearizable(history: list[Operation]) -> None:
    assert check(history) == []


@pytest.mark.parametrize("history", NOT_LINEARIZABLE.values(), ids=NOT_LINEARIZABLE.keys())
def test_not_linearizable(history: list[Operation]) -> None:
    problems = check(history)
    assert len(problems) == 1 and problems[0].startswith("not linearizable: ")


def test_the_report_names_the_operation_no_order_could_place() -> None:
    assert check(NOT_LINEARIZABLE["stale read"]) == [
        "not linearizable: at most 2 of 3 answered operations can be ordered; next due: "
        "client 1 get(->) = a [4, 5]"]


def test_the_budget_bounds_the_search() -> None:
    assert check(LINEARIZABLE["concurrent read sees either"], budget=1) == [
        "undecided: no answer within 1 search steps"]


def test_step_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown operation kind"):
        step(ABSENT, op(0, 0, 1, "delete", output=OK))


def _simulated(seed: int, clients: int = 5, per_client: int = 60) -> list[Operation]:
    """A history of an atomic register: each client's operations one after another, each
    taking effect at one instant inside its interval; 5% of the answers are lost."""
    rng = random.Random(seed)
    timed = []  # (instant, client, call, ret, kind)
    for c in range(clients):
        now = 0.0
        for _ in range(per_client):
            call, ret = now + rng.random(), now + 1 + rng.random() * 3
            timed.append((rng.uniform(call, ret), c, call, ret,
                          rng.choice(["get", "put", "cas"])))
            now = ret
    value, seen, history = ABSENT, [ABSENT] * clients, []
    for n, (_, c, call, ret, kind) in enumerate(sorted(timed)):
        arg: str | None = None if kind == "get" else f"v{n}"
        expect: str | None = None
        if kind == "get":
            output = seen[c] = value
        elif kind == "put":
            value, output = f"v{n}", OK
        else:
            expect, output = seen[c], OK if value == seen[c] else CONFLICT
            value = f"v{n}" if output == OK else value
        lost = rng.random() < 0.05
        history.append(op(c, call, INF if lost else ret, kind, arg, expect,
                          None if lost else output))
    return history


@pytest.mark.parametrize("seed", range(3))
def test_a_few_hundred_operations_of_an_atomic_register_pass(seed: int) -> None:
    history = _simulated(seed)
    assert len(history) >= 200
    assert check(history) == []
