"""`limits.limit`: which listen addresses the userspace proxy takes within its bounds, as a table.

Services are written `name:count` (that many TCP ports on one cluster IP each); the outcome is
how many addresses each Service keeps and the refusals as (service, reason, refused count).
"""

from __future__ import annotations

import pytest

from tinykube.proxy.limits import (
    PER_SERVICE_REASON,
    RESERVE,
    TOTAL_REASON,
    Limits,
    limit,
)
from tinykube.proxy.model import ListenKey, ServicePortRule

Rules = dict[ListenKey, ServicePortRule]


def rules(spec: str) -> Rules:
    table: Rules = {}
    for index, item in enumerate(spec.split()):
        name, count = item.split(":")
        for n in range(int(count)):
            table[(f"127.96.0.{index + 1}", 1000 + n, "TCP")] = \
                ServicePortRule(f"default/{name}", f"p{n}", "TCP")
    return table


CASES = [  # (services, applied services, per service, total, kept per service, refusals)
    pytest.param("a:3 b:2", "", 256, None, {"a": 3, "b": 2}, [], id="within-bounds"),
    pytest.param("a:2000 b:2", "", 256, None, {"a": 256, "b": 2},
                 [("a", PER_SERVICE_REASON, 1744)], id="one-wide-service"),
    pytest.param("a:3 b:3", "", 256, 4, {"a": 3, "b": 1}, [("b", TOTAL_REASON, 2)],
                 id="budget-in-service-order"),
    pytest.param("a:3 b:3", "b", 256, 4, {"a": 1, "b": 3}, [("a", TOTAL_REASON, 2)],
                 id="applied-listeners-keep-their-place"),
    pytest.param("a:10 b:3", "", 5, 7, {"a": 5, "b": 2},
                 [("a", PER_SERVICE_REASON, 5), ("b", TOTAL_REASON, 1)], id="both-bounds"),
    pytest.param("a:3", "", 256, 0, {}, [("a", TOTAL_REASON, 3)], id="no-budget"),
]


@pytest.mark.parametrize(("spec", "applied", "per_service", "total", "kept", "refused"), CASES)
def test_limit(spec: str, applied: str, per_service: int, total: int | None,
               kept: dict[str, int], refused: list[tuple[str, str, int]]) -> None:
    desired = rules(spec)
    applied_keys = {k for k, r in desired.items() if r.service.split("/")[1] in applied.split()}
    result, refusals = limit(desired, applied_keys, Limits(per_service, total, 1024))
    counts: dict[str, int] = {}
    for rule in result.values():
        name = rule.service.split("/")[1]
        counts[name] = counts.get(name, 0) + 1
    assert counts == kept
    assert [(r.service.split("/")[1], r.reason, len(r.refused)) for r in refusals] == refused
    assert all(result[k] == desired[k] for k in result)


def test_refusal_messages_say_what_is_left_out_and_why() -> None:
    _, refusals = limit(rules("a:300 b:1"), set(), Limits(256, 256, 1024))
    assert [r.message for r in refusals] == [
        "the userspace proxy listens on at most 256 addresses of one Service: 44 of its 300 "
        "listen addresses are not proxied (the lowest: 127.96.0.1:1256/TCP)",
        "the userspace proxy's listeners may use 256 of the 1024 files this process may open "
        "(ulimit -n), the rest is kept for pods, DNS and connections, and they are all in use: "
        "1 of its 1 listen addresses are not proxied (the lowest: 127.96.0.2:1000/TCP). Raise "
        "the limit and restart the proxy"]


@pytest.mark.parametrize(("open_files", "total"), [
    pytest.param(1024, 1024 - RESERVE, id="shell-default"),
    pytest.param(20000, 15000, id="a-quarter-kept"),
    pytest.param(400, 0, id="below-the-reserve"),
])
def test_budget_keeps_a_reserve(open_files: int, total: int) -> None:
    assert Limits.for_open_files(open_files).total == total
