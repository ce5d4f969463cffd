"""The watch-stream checker of the fault tests finds each kind of fault."""

from __future__ import annotations

import pytest

from tinykube.testing_watch import Delivered, check

A1, A2, B3 = Delivered("ADDED", "a", 1), Delivered("MODIFIED", "a", 2), Delivered("ADDED", "b", 3)

CASES = [  # (events, acknowledged, final, start, problems)
    ([A1, A2, B3], [("a", 1), ("a", 2), ("b", 3)], {"a": 2, "b": 3}, 0, []),
    ([A1, B3], [("a", 1), ("b", 3)], {"a": 1, "b": 3}, 0, []),
    # a write whose client got no answer, done after all: fine
    ([A1, A2], [("a", 1)], {"a": 2}, 0, []),
    ([A2, A1], [], {"a": 1}, 0, ["out of order: a at 1 after 2"]),
    ([A1, A1], [], {"a": 1}, 0, ["duplicate: a at 1"]),
    ([A1], [("a", 1), ("a", 2)], {"a": 1}, 0, ["gap: a at 2 was acknowledged, never delivered"]),
    ([A1], [("a", 1)], {"a": 2}, 0, ["final: a last delivered at 1, stored at 2"]),
    ([A1, Delivered("DELETED", "a", 4)], [], {"a": 1}, 0,
     ["final: a was deleted at 4, exists at 1"]),
    ([A2], [("a", 1), ("a", 2)], {"a": 2, "b": 3}, 1, ["final: b (at 3) was never delivered"]),
]


@pytest.mark.parametrize(("events", "acked", "final", "start", "problems"), CASES)
def test_check(events: list[Delivered], acked: list[tuple[str, int]], final: dict[str, int],
               start: int, problems: list[str]) -> None:
    assert check(events, acked, final, start) == problems
